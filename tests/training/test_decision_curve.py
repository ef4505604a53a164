"""Decision-curve net benefit against its closed form on small hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.util import Surv

from cnslrisk.training.decision_curve import decision_curve, km_risk, net_benefit, plot_decision_curve


def test_without_censoring_net_benefit_is_the_binary_formula():
    # 8 patients followed past h = 6; events by 6 at rows 0, 1, 2, 5
    time = np.array([1, 2, 3, 10, 12, 4, 15, 20], dtype=float)
    event = np.array([1, 1, 1, 0, 0, 1, 0, 0], dtype=bool)
    risk = np.array([0.9, 0.7, 0.4, 0.6, 0.2, 0.1, 0.35, 0.05])
    table = net_benefit(Surv.from_arrays(event, time), risk, 6.0, [0.3, 0.5]).set_index("threshold")
    # p_t = 0.3: treated rows 0, 1, 2, 3, 6 -> TP = 3, FP = 2; NB = 3/8 - 2/8 * 0.3/0.7
    assert table.loc[0.3, "model"] == pytest.approx(3 / 8 - 2 / 8 * 0.3 / 0.7, abs=1e-15)
    assert table.loc[0.3, "n_treated"] == 5
    # p_t = 0.5: treated rows 0, 1, 3 -> TP = 2, FP = 1; NB = 2/8 - 1/8 * 1
    assert table.loc[0.5, "model"] == pytest.approx(2 / 8 - 1 / 8, abs=1e-15)
    # treat all: prevalence 4/8; NB = 0.5 - 0.5 * odds
    assert table.loc[0.3, "treat_all"] == pytest.approx(0.5 - 0.5 * 0.3 / 0.7, abs=1e-15)
    assert (table["treat_none"] == 0).all()


def test_censoring_enters_through_the_kaplan_meier_risk_of_the_treated():
    # treated at p_t = 0.5: rows 0-3 with times 1 (event), 2 (censored), 3 (event), 8 (censored); h = 5
    # KM among the treated: S(1) = 3/4, S(3) = 3/4 * (1 - 1/2) = 3/8 -> F = 5/8 (nobody else at risk before 5)
    time = np.array([1, 2, 3, 8, 2.5, 9], dtype=float)
    event = np.array([1, 0, 1, 0, 1, 0], dtype=bool)
    risk = np.array([0.8, 0.7, 0.6, 0.55, 0.2, 0.1])
    y = Surv.from_arrays(event, time)
    row = net_benefit(y, risk, 5.0, [0.5]).iloc[0]
    f = 5 / 8
    assert row["observed_risk_treated"] == pytest.approx(f, abs=1e-15)
    assert row["model"] == pytest.approx(f * 4 / 6 - (1 - f) * 4 / 6 * 1.0, abs=1e-15)
    # all six: S(1) = 5/6, S(2.5) = 5/6 * 3/4 (4 at risk after the censoring at 2), S(3) = that * 2/3
    overall = 1 - (5 / 6) * (3 / 4) * (2 / 3)
    assert km_risk(event, time, 5.0) == pytest.approx(overall, abs=1e-15)


def test_nobody_treated_gives_zero_and_horizons_stack():
    y = Surv.from_arrays(np.array([True, False, True]), np.array([1.0, 2.0, 3.0]))
    risk = np.array([[0.1, 0.2], [0.2, 0.3], [0.15, 0.25]])
    table = decision_curve(y, risk, [1.0, 2.0], thresholds=[0.5, 0.9])
    assert len(table) == 4 and (table["model"] == 0).all() and (table["n_treated"] == 0).all()
    assert plot_decision_curve(table).axes[0].get_xlabel() == "threshold risk"


@pytest.mark.parametrize("thresholds", [[0.0, 0.5], [1.0], []])
def test_thresholds_must_lie_in_the_open_unit_interval(thresholds):
    y = Surv.from_arrays(np.array([True]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"parameter thresholds of net_benefit must lie in \(0, 1\); got"):
        net_benefit(y, np.array([0.5]), 1.0, thresholds)
