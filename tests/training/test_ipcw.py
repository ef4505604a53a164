"""The once-fitted IPCW metrics give scikit-survival's numbers bit for bit."""

import numpy as np
import pytest
from sksurv.metrics import brier_score, cumulative_dynamic_auc, integrated_brier_score
from sksurv.nonparametric import CensoringDistributionEstimator, kaplan_meier_estimator
from sksurv.util import Surv

from cnslrisk.training.ipcw import CensoringSurvival, brier_scores, dynamic_auc, kaplan_meier


def _fold(seed: int, n: int, levels: int | None, *, all_events: bool = False):
    """Train and test outcomes with tied times, risks on a few levels (or continuous) and survival on a grid."""
    rng = np.random.default_rng(seed)

    def outcome(size):
        time = np.round(rng.exponential(8.0, size), 1) + 0.1
        return (np.ones(size, bool) if all_events else rng.random(size) < 0.6), time

    train, test = outcome(3 * n), outcome(n)
    train[1][0] = test[1].max() + 1  # training follow-up beyond every test time
    risk = rng.normal(size=n) if levels is None else rng.integers(0, levels, n) * 0.5
    times = np.unique(np.r_[np.quantile(test[1], [0.2, 0.5, 0.7]), np.linspace(2.0, 6.0, 5)])
    survival = np.exp(-np.outer(np.exp(risk), times) / 10)
    return train, test, risk, times, survival


CASES = [(0, 40, 2), (1, 60, None), (2, 300, 4), (3, 1000, 3), (4, 1000, None)]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("seed, n, levels", CASES)
def test_kaplan_meier_equals_sksurv(seed, n, levels, reverse):
    (event, time), *_ = _fold(seed, n, levels)
    expected = kaplan_meier_estimator(event, time, reverse=reverse)
    for got, want in zip(kaplan_meier(event, time, reverse=reverse), expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("all_events", [False, True])
@pytest.mark.parametrize("seed, n, levels", CASES)
def test_censoring_survival_equals_sksurv(seed, n, levels, all_events):
    (event, time), (_, test_time), *_ = _fold(seed, n, levels, all_events=all_events)
    expected = CensoringDistributionEstimator().fit(Surv.from_arrays(event, time))
    got = CensoringSurvival(event, time)
    np.testing.assert_array_equal(got.at(test_time), expected.predict_proba(test_time))
    np.testing.assert_array_equal(got.at(time), expected.predict_proba(time))


@pytest.mark.parametrize("seed, n, levels", CASES)
def test_brier_and_integrated_brier_equal_sksurv(seed, n, levels):
    (event, time), (test_event, test_time), _, times, survival = _fold(seed, n, levels)
    y_train, y_test = Surv.from_arrays(event, time), Surv.from_arrays(test_event, test_time)
    got = brier_scores(CensoringSurvival(event, time), test_event, test_time, survival, times)
    np.testing.assert_array_equal(got, brier_score(y_train, y_test, survival, times)[1])
    for j, t in enumerate(times):  # one horizon at a time, as the metrics were computed before
        assert got[j] == brier_score(y_train, y_test, survival[:, j], [t])[1][0]
    assert np.trapezoid(got, times) / (times[-1] - times[0]) == integrated_brier_score(y_train, y_test, survival,
                                                                                       times)


@pytest.mark.parametrize("seed, n, levels", CASES)
def test_dynamic_auc_equals_sksurv(seed, n, levels):
    (event, time), (test_event, test_time), risk, times, _ = _fold(seed, n, levels)
    y_train, y_test = Surv.from_arrays(event, time), Surv.from_arrays(test_event, test_time)
    got = dynamic_auc(CensoringSurvival(event, time), test_event, test_time, risk, times)
    for j, t in enumerate(times):
        assert got[j] == cumulative_dynamic_auc(y_train, y_test, risk, [t])[0][0]


def test_censoring_survival_refuses_times_beyond_follow_up():
    g = CensoringSurvival(np.array([True, False, True]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="time must be smaller than largest observed time point: 3.0"):
        g.at(np.array([4.0]))
