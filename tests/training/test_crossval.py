from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from cnslrisk.training.bootstrap import bootstrap_optimism
from cnslrisk.training.crossval import cross_validate, fold_splits, survival_grid
from cnslrisk.training.metrics import calibration_slope, harrell_c

HORIZONS = [3, 6, 12]


def test_cross_validate_table_and_summary(cohort, cox_factory):
    calls = []
    res = cross_validate(
        cox_factory, cohort.X, cohort.y, horizons=HORIZONS, folds=5, repeats=3, seed=1, progress=calls.append
    )
    assert sum(calls) == 15
    metrics = ["c_index", "uno_c", "auc_3", "auc_6", "auc_12", "brier_3", "brier_6", "brier_12", "ibs"]
    assert list(res.summary.index) == metrics
    assert len(res.folds) == 15 * len(metrics)
    # every undefined value carries a reason and every defined one none
    assert (res.folds["value"].isna() == (res.folds["reason"] != "")).all()
    counts = res.summary["n_defined"] + res.summary["n_undefined"]
    assert (counts == 15).all()
    # mean and sd follow the stated definition: over repeats of the per-repeat mean of defined folds
    c = res.folds[res.folds["metric"] == "c_index"].groupby("repeat")["value"].mean()
    assert res.summary.loc["c_index", "mean"] == pytest.approx(c.mean())
    assert res.summary.loc["c_index", "sd"] == pytest.approx(c.std(ddof=1))
    assert "ddof=1" in res.sd_definition and "per-repeat mean" in res.sd_definition
    assert set(res.to_dict()["c_index"]) == {"mean", "sd", "n_defined", "n_undefined"}


def test_cross_validate_reproducible_and_independent_of_n_jobs(cohort, cox_factory):
    run = partial(cross_validate, cox_factory, cohort.X, cohort.y, horizons=HORIZONS, folds=3, repeats=2, seed=7)
    one = run(n_jobs=1)
    pd.testing.assert_frame_equal(one.folds, run(n_jobs=1).folds)
    pd.testing.assert_frame_equal(one.folds, run(n_jobs=2).folds)
    assert not one.folds["value"].equals(run(n_jobs=1, seed=8).folds["value"])


def test_folds_are_stratified_on_the_given_labels(cohort):
    cause = np.where(cohort.y["event"], np.where(cohort.X["lmd"], "distant", "local"), "none")
    for _, _, train, test in fold_splits(cause, 5, 2, 0):
        assert np.intersect1d(train, test).size == 0 and train.size + test.size == cause.size
    for level in np.unique(cause):
        per_fold = [np.sum(cause[test] == level) for r, _, _, test in fold_splits(cause, 5, 2, 0) if r == 0]
        # stratified K-fold puts floor or ceil of count / K of each label in every fold
        assert max(per_fold) - min(per_fold) <= 1
    # a repeat uses the same child seed whatever the number of repeats
    first = fold_splits(cause, 5, 1, 3)
    for a, b in zip(first, fold_splits(cause, 5, 4, 3)[:5], strict=True):
        np.testing.assert_array_equal(a[3], b[3])


def test_failed_fits_are_reported_not_dropped(cohort, failing_factory):
    events = int(cohort.y["event"].sum())
    # training sets of 4/5 of the data hold about 0.8 * events; requiring more makes every fit fail
    res = cross_validate(failing_factory(events), cohort.X, cohort.y, horizons=HORIZONS, folds=5, repeats=1)
    assert res.folds["value"].isna().all()
    assert res.folds["reason"].str.startswith("fit failed: RuntimeError: needs").all()
    assert (res.summary["n_undefined"] == 5).all() and res.summary["mean"].isna().all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, r"parameter folds of cross_validate must be an int >= 2; got 1"),
        ({"repeats": 0}, r"parameter repeats of cross_validate must be an int >= 1; got 0"),
        ({"horizons": [3, -1]}, r"parameter horizons must be positive finite times; got \[3, -1\]"),
        ({"strata": np.zeros(3)}, r"X, y and strata must have the same number of rows; got 60, 60, 3"),
    ],
)
def test_cross_validate_bad_arguments(cohort, cox_factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cross_validate(cox_factory, cohort.X, cohort.y, **{"horizons": HORIZONS, **kwargs})


def test_survival_grid_contains_horizons():
    grid = survival_grid([12, 3, 6])
    assert set([3.0, 6.0, 12.0]) <= set(grid) and grid[0] == 3 and grid[-1] == 12 and np.all(np.diff(grid) > 0)


def test_bootstrap_optimism_of_unpenalised_cox(cohort, cox_factory):
    calls = []
    res = bootstrap_optimism(cox_factory, cohort.X, cohort.y, resamples=40, seed=3, progress=calls.append)
    assert sum(calls) == 40 and res.n_failed == 0 and res.used == {"c_index": 40, "calibration_slope": 40}
    full = cox_factory().fit(cohort.X, cohort.y)
    lp = full.predict(cohort.X)
    assert res.apparent["c_index"] == pytest.approx(harrell_c(cohort.y, lp))
    # an unpenalised Cox model refitted on its own linear predictor has slope exactly 1 (score equation),
    # on the full data and on each resample it was fitted to; solver tolerances are <= 1e-9
    assert res.apparent["calibration_slope"] == pytest.approx(1.0, abs=1e-6)
    boot_slopes = res.per_resample.query("metric == 'calibration_slope'")["boot"]
    np.testing.assert_allclose(boot_slopes, 1.0, atol=1e-6)
    per = res.per_resample.assign(d=res.per_resample["boot"] - res.per_resample["original"])
    for m in ("c_index", "calibration_slope"):
        assert res.optimism[m] == pytest.approx(per.loc[per["metric"] == m, "d"].mean())
        assert res.corrected[m] == pytest.approx(res.apparent[m] - res.optimism[m])
    # each original-data score is that of the resample's model on the original data: check one by refitting
    idx = np.random.default_rng(np.random.SeedSequence(3).spawn(40)[0].generate_state(1)[0]).integers(0, 60, 60)
    refit = cox_factory().fit(cohort.X.iloc[idx], cohort.y[idx])
    first = res.per_resample.query("resample == 0").set_index("metric")["original"]
    assert first["c_index"] == pytest.approx(harrell_c(cohort.y, refit.predict(cohort.X)))
    assert first["calibration_slope"] == pytest.approx(calibration_slope(cohort.y, refit.predict(cohort.X)))
    card = res.to_dict()
    assert card["resamples"] == 40 and set(card["apparent"]) == {"c_index", "calibration_slope"}


def test_log_cumulative_hazard_slope_equals_linear_predictor_slope_for_cox(cohort, cox_factory):
    # log(-log S(t|x)) = log H0(t) + x'b for a Cox model: a shift, which leaves the slope unchanged
    run = partial(bootstrap_optimism, cox_factory, cohort.X, cohort.y, resamples=10, seed=5)
    lp, lch = run(slope_on="linear_predictor"), run(slope_on="log_cumulative_hazard", reference_time=6.0)
    assert lch.slope_on == "log_cumulative_hazard" and lch.reference_time == 6.0
    np.testing.assert_allclose(lch.per_resample[["boot", "original"]], lp.per_resample[["boot", "original"]], rtol=1e-6)


def test_bootstrap_reproducible_and_independent_of_n_jobs(cohort, cox_factory):
    run = partial(bootstrap_optimism, cox_factory, cohort.X, cohort.y, resamples=12, seed=11)
    a = run(n_jobs=1)
    pd.testing.assert_frame_equal(a.per_resample, run(n_jobs=2).per_resample)
    assert a.to_dict() == run(n_jobs=1).to_dict()


def test_bootstrap_records_failed_resamples(cohort, failing_factory):
    events = int(cohort.y["event"].sum())
    # a resample holds Binomial(60, events/60) events; requiring the observed count fails about half of them
    res = bootstrap_optimism(failing_factory(events), cohort.X, cohort.y, resamples=30, seed=0)
    failed = res.failures["resample"].unique()
    assert 0 < res.n_failed == failed.size < 30
    assert (res.failures["stage"] == "fit").all()
    assert res.failures["reason"].str.fullmatch(f"RuntimeError: needs {events} events").all()
    assert res.used["c_index"] == 30 - res.n_failed == res.to_dict()["used"]["c_index"]
    assert res.per_resample.loc[res.per_resample["resample"].isin(failed), "boot"].isna().all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"resamples": 0}, r"parameter resamples of bootstrap_optimism must be an int >= 1; got 0"),
        ({"slope_on": "lp"}, r"parameter slope_on of bootstrap_optimism must be one of .*; got 'lp'"),
    ],
)
def test_bootstrap_bad_arguments(cohort, cox_factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        bootstrap_optimism(cox_factory, cohort.X, cohort.y, **kwargs)


def test_bootstrap_refuses_all_censored(cohort, cox_factory):
    y = cohort.y.copy()
    y["event"] = False
    with pytest.raises(ValueError, match="y: all samples are censored; bootstrap optimism needs events"):
        bootstrap_optimism(cox_factory, cohort.X, y)


class ConstantScore(BaseEstimator):
    """Every patient gets the same score: what a penalised model shrunk to the null predicts."""

    def fit(self, X, y):
        self.n_ = len(X)
        return self

    def predict(self, X):
        return np.zeros(len(X))

    def predict_survival(self, X, times):
        return np.full((len(X), len(times)), 0.5)


def test_constant_score_model_reports_undefined_apparent_slope(cohort):
    """C = 0.5 and no calibration slope: the slope is NaN with its reason, not an exception."""
    res = bootstrap_optimism(ConstantScore, cohort.X, cohort.y, resamples=5, seed=0)
    assert res.apparent["c_index"] == pytest.approx(0.5)
    assert np.isnan(res.apparent["calibration_slope"]) and np.isnan(res.corrected["calibration_slope"])
    apparent = res.failures.query("resample == -1")
    assert apparent["metric"].tolist() == ["calibration_slope"] and (apparent["stage"] == "apparent").all()
    assert apparent["reason"].str.contains("constant").all()
