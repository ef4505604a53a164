"""Recalibration of a registered Cox model on a shifted cohort."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from scipy.stats import chi2
from test_evaluate import registered, simulate  # noqa: F401  (module fixture: one trained model for this file)

from cnslrisk.training.evaluate import load_cohort
from cnslrisk.training.recalibrate import recalibrate_model, slope_test


def _loglik(time, event, lp, g):
    """Cox log partial likelihood of g * lp written out (the simulated times are distinct: no ties)."""
    return sum(g * lp[i] - np.log(np.exp(g * lp[time >= time[i]]).sum()) for i in np.flatnonzero(event))


@pytest.fixture(scope="module")
def shifted(registered, tmp_path_factory):  # noqa: F811
    model = registered[2]
    path = tmp_path_factory.mktemp("shifted") / "shifted.csv"
    simulate(model, path, 800, seed=31, hazard_factor=2.5)
    return model, load_cohort(model, path)


def test_intercept_recalibration_restores_calibration_in_the_large(shifted):
    model, data = shifted
    result = recalibrate_model(model, data, method="intercept")
    assert result.method == "intercept" and result.test["chosen_by"] == "user"
    for label in result.before["horizons"]:
        before, after = result.before["horizons"][label], result.after["horizons"][label]
        assert before["calibration_in_the_large_ci"][1] < 0  # the shift is there before
        lower, upper = after["calibration_in_the_large_ci"]
        assert lower <= 0 <= upper  # and within the CI after
    parent, child = model.pipeline[-1], result.model.pipeline[-1]
    np.testing.assert_array_equal(child.coef_, parent.coef_)
    # the re-estimated baseline at 6 months estimates k * H0(6) of the simulation (the parent's Breslow
    # steps joined linearly), with standard error sqrt(sum d / S0^2) (Breslow variance, coefficients fixed)
    h = 6.0
    truth = 2.5 * np.interp(h, np.r_[0.0, parent.unique_times_], np.r_[0.0, parent.cum_baseline_hazard_])
    i = np.searchsorted(child.unique_times_, h, side="right") - 1
    assert abs(child.cum_baseline_hazard_[i] - truth) < 4 * np.sqrt(child.cum_baseline_var_[i])
    assert model.pipeline[-1].cum_baseline_hazard_ is parent.cum_baseline_hazard_  # the parent is untouched


def test_slope_test_matches_the_partial_likelihood_written_out(shifted):
    model, data = shifted
    lp = model.pipeline.predict(data.X)
    test = slope_test(data.y, lp)
    time, event = data.y["time"], data.y["event"]
    lr = 2 * (_loglik(time, event, lp, test["slope"]) - _loglik(time, event, lp, 1.0))
    assert test["lr"] == pytest.approx(lr, rel=1e-8)
    assert test["p"] == pytest.approx(chi2.sf(lr, 1), rel=1e-6)


def test_auto_chooses_slope_for_shrunken_effects_and_the_slope_becomes_one(registered, tmp_path):  # noqa: F811
    model = registered[2]
    simulate(model, tmp_path / "flat.csv", 800, seed=32, slope=0.5)
    data = load_cohort(model, tmp_path / "flat.csv")
    result = recalibrate_model(model, data, method="auto")
    # true slope 0.5, estimate's standard error about 0.05 (see test_evaluate): the LR test rejects slope = 1
    assert result.method == "slope" and result.test["p"] < 0.05
    assert result.test["chosen_by"].startswith("likelihood-ratio test of slope = 1 at level 0.05")
    g = result.test["slope"]
    np.testing.assert_allclose(result.model.pipeline[-1].coef_, g * model.pipeline[-1].coef_, rtol=1e-12)
    # the slope of g * lp on the cohort g was estimated on is 1 by construction
    assert result.after["calibration_slope"] == pytest.approx(1.0, abs=1e-8)
    assert result.model.risk_cutpoints == pytest.approx(tuple(g * c for c in model.risk_cutpoints))


def test_auto_decides_as_an_independent_likelihood_ratio_test(shifted):
    model, data = shifted
    time, event = data.y["time"], data.y["event"]
    lp = model.pipeline.predict(data.X)
    # lifelines fits the slope g and gives l(g_hat); l(1) is written out; LR on one degree of freedom
    frame = pd.DataFrame({"lp": lp, "time": time, "event": event})
    fitted = CoxPHFitter().fit(frame, duration_col="time", event_col="event")
    p = chi2.sf(2 * (fitted.log_likelihood_ - _loglik(time, event, lp, 1.0)), 1)
    assert 0 < p < 0.99  # so that both levels below are levels
    # the two fits agree on p to about 1e-11 (relative): a level 1 % either side of p gives the two decisions
    result = recalibrate_model(model, data, method="auto", alpha=1.01 * p)
    assert result.method == "slope"
    assert result.test["slope"] == pytest.approx(fitted.params_["lp"], rel=1e-6)
    assert recalibrate_model(model, data, method="auto", alpha=p / 1.01).method == "intercept"


def test_refuses_unknown_methods_and_models_without_a_linear_predictor(shifted):
    model, data = shifted
    with pytest.raises(ValueError, match=r"parameter method of recalibrate must be one of \{intercept, slope, auto\}"):
        recalibrate_model(model, data, method="both")
    with pytest.raises(ValueError, match="recalibrate: model type rsf has no linear predictor"):
        recalibrate_model(dataclasses.replace(model, kind="rsf"), data)
