"""Harrell's bootstrap optimism correction (as R rms validate)."""

from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator

from cnslrisk.training.bootstrap import bootstrap_optimism
from cnslrisk.training.metrics import calibration_slope, harrell_c


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


@pytest.mark.slow
def test_cox_optimism_agrees_with_r_rms_validate_on_rossi():
    """R rms validate (B = 2000, reference in tests/data/rms_validate_rossi.csv, made by rms_validate_rossi.R).

    The apparent figures are deterministic and must agree to numerical precision; the optimism is a
    bootstrap mean, so the two estimates (different random resamples) must agree within 3 Monte Carlo
    standard errors: sd(per-resample optimism) * sqrt(1/200 + 1/2000).
    """
    from pathlib import Path

    from lifelines.datasets import load_rossi
    from sksurv.util import Surv

    from cnslrisk.model.pipeline import make_pipeline

    reference = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "rms_validate_rossi.csv", comment="#",
                            index_col="index")
    rossi = load_rossi()
    X = rossi.drop(columns=["week", "arrest"]).astype(float)
    y = Surv.from_arrays(rossi["arrest"] == 1, rossi["week"].astype(float))
    res = bootstrap_optimism(partial(make_pipeline, "cox", numeric=list(X.columns)), X, y, resamples=200, seed=0,
                             n_jobs=2)
    r_c = {stage: 0.5 + reference.loc["Dxy", stage] / 2 for stage in ("apparent", "optimism")}
    r_c["optimism"] -= 0.5  # Dxy = 2 (C - 0.5): an optimism in Dxy is twice that in C
    assert res.apparent["c_index"] == pytest.approx(r_c["apparent"], abs=1e-9)
    assert res.apparent["calibration_slope"] == pytest.approx(reference.loc["Slope", "apparent"], abs=1e-6)
    per = res.per_resample.assign(d=res.per_resample["boot"] - res.per_resample["original"])
    for metric, r_optimism in (("c_index", r_c["optimism"]), ("calibration_slope", reference.loc["Slope", "optimism"])):
        sd = per.loc[per["metric"] == metric, "d"].std(ddof=1)
        assert abs(res.optimism[metric] - r_optimism) <= 3 * sd * np.sqrt(1 / 200 + 1 / 2000), metric
