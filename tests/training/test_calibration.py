"""Tests of calibration.py and of the figures in plots.py (no test_plots.py is in this change's file list)."""

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from matplotlib.collections import LineCollection
from sksurv.util import Surv

from cnslrisk.training.calibration import (
    calibration_in_the_large,
    calibration_slope_at,
    calibration_table,
    risk_groups,
)
from cnslrisk.training.metrics import calibration_slope
from cnslrisk.training.plots import numbers_at_risk, plot_calibration, plot_forest, plot_km_by

HORIZONS = [3, 6, 12]


def test_risk_groups_quantiles_and_ties():
    g = risk_groups(np.arange(60.0), 4)
    assert np.bincount(g).tolist() == [0, 15, 15, 15, 15] and g[0] == 1 and g[-1] == 4
    tied = np.repeat([0.1, 0.5, 0.9], [30, 20, 10])
    gt = risk_groups(tied, 4)
    assert gt.max() <= 3 and all(np.unique(gt[tied == v]).size == 1 for v in (0.1, 0.5, 0.9))
    assert risk_groups(np.ones(5), 4).tolist() == [1] * 5


def test_calibration_table_matches_lifelines_kaplan_meier(cohort):
    y = cohort.y
    surv = np.column_stack([np.exp(-0.08 * h) * np.ones(60) + 0.001 * np.arange(60) / 60 for h in HORIZONS])
    table = calibration_table(y, surv, HORIZONS)
    assert list(table.columns[:8]) == [
        "horizon",
        "group",
        "n",
        "events",
        "predicted",
        "observed",
        "observed_lower",
        "observed_upper",
    ]
    for h in HORIZONS:
        assert table.loc[table["horizon"] == h, "group"].tolist() == ["1", "2", "3", "4", "all"]
    for _, row in table.iterrows():
        m = (
            np.ones(60, bool)
            if row["group"] == "all"
            else risk_groups(1 - surv[:, HORIZONS.index(row["horizon"])], 4) == int(row["group"])
        )
        km = KaplanMeierFitter().fit(y["time"][m], y["event"][m])  # lifelines: log(-log) interval by default
        if np.isnan(row["observed"]):
            assert row["reason"].startswith("no patient of the group is followed")
            continue
        assert row["observed"] == pytest.approx(km.survival_function_at_times(row["horizon"]).iloc[0])
        ci = km.confidence_interval_survival_function_
        at = ci[ci.index <= row["horizon"]].iloc[-1]
        if not np.isnan(row["observed_lower"]):
            assert (row["observed_lower"], row["observed_upper"]) == pytest.approx(tuple(at), rel=1e-6)
        assert row["predicted"] == pytest.approx(surv[m, HORIZONS.index(row["horizon"])].mean())
        assert row["difference"] == pytest.approx(row["observed"] - row["predicted"])


def test_true_model_is_calibrated_in_the_large(make_cohort):
    # with the true survival S(h|x) = exp(-0.05 exp(lp) h) as prediction, observed KM - mean predicted has
    # expectation ~0 (censoring is independent); its SE is about (upper - lower) / (2 * 1.96) from the KM
    # interval, so |difference| < 4 SE fails with probability ~6e-5 per horizon
    X, y = make_cohort(n=2000, seed=42)
    lp = (X["pce"] + X["lmd"] + 0.02 * (X["age"] - 60)).to_numpy()
    surv = np.column_stack([np.exp(-0.05 * np.exp(lp) * h) for h in HORIZONS])
    table = calibration_table(y, surv, HORIZONS, groups=5)
    overall = table[table["group"] == "all"]
    se = (overall["observed_upper"] - overall["observed_lower"]) / (2 * 1.96)
    assert (overall["difference"].abs() < 4 * se).all()
    # tied risks stay together, so groups are only roughly 2000 / 5 each, but cover everyone once
    assert (table[table["group"] != "all"].groupby("horizon")["n"].sum() == 2000).all()


def test_horizon_beyond_follow_up_is_reported():
    y = Surv.from_arrays([True, False, True, False], [1.0, 2.0, 3.0, 4.0])
    table = calibration_table(y, np.full((4, 1), 0.5), [10.0], groups=1)
    assert table["observed"].isna().all()
    assert (table["reason"] == "no patient of the group is followed to horizon 10").all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": 0}, r"parameter groups of calibration_table must be an int >= 1; got 0"),
        (
            {"survival": np.ones((60, 2))},
            r"survival must have shape \(n_samples, n_horizons\) = \(60, 3\); got \(60, 2\)",
        ),
    ],
)
def test_calibration_table_bad_arguments(cohort, kwargs, message):
    args = {"y": cohort.y, "survival": np.ones((60, 3)), "horizons": HORIZONS, **kwargs}
    with pytest.raises(ValueError, match=message):
        calibration_table(**args)


def test_slope_at_a_reference_time_is_the_linear_predictor_slope_for_cox(cohort, cox_factory):
    # log(-log S(t|x)) = log H0(t) + x'b: a shift of the linear predictor, so at any t_ref the slope is that of
    # the outcome censored at t_ref on the linear predictor
    model = cox_factory().fit(cohort.X, cohort.y)
    lp = model.predict(cohort.X)
    for t_ref in (3.0, 6.0, 12.0):
        y_cut = cohort.y.copy()
        late = y_cut["time"] > t_ref
        y_cut["event"][late], y_cut["time"][late] = False, t_ref
        s = model.predict_survival(cohort.X, [t_ref])[:, 0]
        assert s.min() > 1e-6 and s.max() < 1 - 1e-6  # no clipping at these times
        assert calibration_slope_at(cohort.y, s, t_ref) == pytest.approx(calibration_slope(y_cut, lp), abs=1e-9)
    # uncensored (t_ref at the last time), the apparent slope of the model's own fit is 1: its score equation
    last = float(cohort.y["time"].max())
    uncensored = calibration_slope(cohort.y, lp)
    assert uncensored == pytest.approx(1.0, abs=1e-6)
    s_last = model.predict_survival(cohort.X, [last])[:, 0]
    if s_last.min() > 1e-6:
        assert calibration_slope_at(cohort.y, s_last, last) == pytest.approx(uncensored, abs=1e-9)


def test_slope_of_constant_predictions_is_refused(cohort):
    with pytest.raises(ValueError, match="the predictions do not vary"):
        calibration_slope_at(cohort.y, np.full(60, 0.4), 6.0)
    groups = np.repeat([0, 1], 30)
    # constant within each group: the centred score is 0 everywhere
    with pytest.raises(ValueError, match="the predictions do not vary"):
        calibration_slope_at(cohort.y, np.where(groups == 0, 0.3, 0.5), 6.0, groups=groups)


def test_calibration_in_the_large_is_zero_for_the_kaplan_meier_prediction(cohort):
    from sksurv.nonparametric import kaplan_meier_estimator

    times, km = kaplan_meier_estimator(cohort.y["event"], cohort.y["time"])
    s6 = km[np.searchsorted(times, 6.0, side="right") - 1]
    assert calibration_in_the_large(cohort.y, np.full(60, s6), 6.0) == pytest.approx(0.0, abs=1e-12)
    assert calibration_in_the_large(cohort.y, np.full(60, s6 - 0.1), 6.0) == pytest.approx(0.1, abs=1e-12)


# figures


def test_calibration_plot_has_one_point_per_group(cohort, tmp_path):
    surv = np.column_stack([np.exp(-0.08 * h * (1 + np.arange(60) / 60)) for h in HORIZONS])
    table = calibration_table(cohort.y, surv, HORIZONS, groups=4)
    fig = plot_calibration(table)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        points = [line for line in ax.get_lines() if line.get_marker() == "o"]
        assert len(points) == 1 and len(points[0].get_xdata()) == 4
        assert any(isinstance(c, LineCollection) for c in ax.collections)  # error bars
    path = tmp_path / "calibration.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_km_plot_curves_and_numbers_at_risk(cohort, tmp_path):
    fig = plot_km_by(cohort.y, cohort.X["pce"], "pce", ticks=[0, 6, 12])
    curves = fig.axes[0].get_lines()
    assert [c.get_label() for c in curves] == [
        f"pce = no (n = {(~cohort.X['pce']).sum()})",
        f"pce = yes (n = {cohort.X['pce'].sum()})",
    ]
    texts = [t.get_text() for t in fig.axes[1].texts]
    at_risk = numbers_at_risk(cohort.y["time"][~cohort.X["pce"].to_numpy()], [0, 6, 12])
    assert texts[:3] == [str(v) for v in at_risk] and at_risk[0] == (~cohort.X["pce"]).sum()
    fig.savefig(tmp_path / "km.png")
    assert (tmp_path / "km.png").stat().st_size > 10_000


def test_forest_plot(tmp_path):
    table = pd.DataFrame(
        {"hr": [2.75, 2.72], "ci_lower": [1.08, 1.20], "ci_upper": [6.68, 6.25], "p": [0.03, 0.02]},
        index=["pce", "lmd"],
    )
    fig = plot_forest(table)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["pce", "lmd"]
    marks = [line for line in ax.get_lines() if line.get_marker() == "s"]
    assert list(marks[0].get_xdata()) == [2.75, 2.72] and ax.get_xscale() == "log"
    fig.savefig(tmp_path / "forest.png")
    assert (tmp_path / "forest.png").stat().st_size > 5_000
    with pytest.raises(ValueError, match=r"coefficients: missing column\(s\) \['p'\]; need hr, ci_lower"):
        plot_forest(table.drop(columns="p"))
