import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import (
    brier_score,
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.util import Surv

from cnslrisk.model import outputs
from cnslrisk.training.metrics import (
    calibration_slope,
    follow_up_limit,
    harrell_c,
    horizon_label,
    likelihood_ratio,
    score_predictions,
    slope_with_se,
)


def _tied(cohort):
    """The simulated cohort with times rounded to whole months, so that many event times are tied."""
    y = cohort.y.copy()
    y["time"] = np.ceil(y["time"])
    return y


def test_calibration_slope_equals_sksurv_efron_fit(cohort):
    # independent implementation: scikit-survival's Cox model with Efron ties on the one covariate;
    # both maximise the same concave partial likelihood, sksurv to its default tolerance 1e-9
    y = _tied(cohort)
    x = cohort.X["age"].to_numpy() / 10 + cohort.X["pce"].to_numpy()
    ref = CoxPHSurvivalAnalysis(ties="efron", tol=1e-12).fit(x[:, None], y).coef_[0]
    assert calibration_slope(y, x) == pytest.approx(ref, abs=1e-7)


def test_slope_standard_error_equals_lifelines(cohort):
    # both are the inverse observed information of the Efron partial likelihood at the estimate; the estimates
    # agree to ~1e-9 (Newton steps below 1e-9 here, below 1e-12 in lifelines), which moves the SE far less than 1e-7
    y = _tied(cohort)
    x = cohort.X["age"].to_numpy() / 10 + cohort.X["pce"].to_numpy()
    df = pd.DataFrame({"x": x, "time": y["time"], "event": y["event"]})
    ref = CoxPHFitter().fit(df, "time", "event", fit_options={"precision": 1e-12, "r_precision": 0})
    slope, se = slope_with_se(y, x)
    assert slope == calibration_slope(y, x) == pytest.approx(ref.params_["x"], abs=1e-7)
    assert se == pytest.approx(ref.standard_errors_["x"], rel=1e-7)


def test_slope_of_cox_linear_predictor_is_one_and_shift_invariant(cohort):
    # at the MLE b the derivative of l(g b) in g at g = 1 is b'U(b) = 0, so the refitted slope is exactly 1
    y = _tied(cohort)
    X = cohort.X.to_numpy(float)
    lp = CoxPHSurvivalAnalysis(ties="efron", tol=1e-12).fit(X, y).predict(X)
    assert calibration_slope(y, lp) == pytest.approx(1.0, abs=1e-7)
    assert calibration_slope(y, lp + 7.5) == pytest.approx(calibration_slope(y, lp), abs=1e-10)
    assert calibration_slope(y, 2 * lp) == pytest.approx(0.5, abs=1e-7)


def test_likelihood_ratio_equals_lifelines(cohort):
    y = _tied(cohort)
    df = cohort.X.astype(float).assign(time=y["time"], event=y["event"])
    fit = CoxPHFitter().fit(df, "time", "event")  # lifelines uses Efron ties
    lp = df[list(cohort.X.columns)].to_numpy() @ fit.params_.to_numpy()
    expected = fit.log_likelihood_ratio_test().test_statistic
    assert likelihood_ratio(y, lp) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("event", "score", "message"),
    [
        ([False] * 4, [1.0, 2.0, 3.0, 4.0], "all samples are censored"),
        ([True, False, True, True], [2.0] * 4, "the score is constant"),
        # perfect separation: the higher score always fails first, the likelihood is monotone
        ([True] * 4, [4.0, 3.0, 2.0, 1.0], "did not converge"),
        # one event, the last: its risk set is itself, the likelihood is flat
        ([False, False, False, True], [1.0, 2.0, 3.0, 4.0], "did not converge"),
        ([True] * 4, [1.0, np.inf, 2.0, 3.0], "the score is not finite"),
    ],
)
def test_calibration_slope_undefined(event, score, message):
    y = Surv.from_arrays(event, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match=message):
        calibration_slope(y, np.array(score))


def test_harrell_c_perfect_and_reversed():
    y = Surv.from_arrays([True] * 5, [1.0, 2.0, 3.0, 4.0, 5.0])
    risk = -y["time"]
    assert harrell_c(y, risk) == 1.0
    assert harrell_c(y, -risk) == 0.0
    with pytest.raises(ValueError, match="no comparable pairs"):
        harrell_c(Surv.from_arrays([True, False], [2.0, 1.0]), np.array([1.0, 2.0]))


def test_follow_up_limit():
    # last training time censored: the censoring survival G drops to 0 there
    assert follow_up_limit(Surv.from_arrays([True, False, True, False], [1.0, 2.0, 3.0, 9.0])) == 9.0
    # last time an event: G stays positive up to it
    assert follow_up_limit(Surv.from_arrays([True, False, True], [1.0, 2.0, 5.0])) == 5.0


def _fold(cohort, n_train=45):
    y, X = cohort.y, cohort.X.to_numpy(float)
    model = CoxPHSurvivalAnalysis(ties="efron").fit(X[:n_train], y[:n_train])
    times = np.array([3.0, 6.0, 9.0, 12.0])
    surv = np.vstack([f(times) for f in model.predict_survival_function(X[n_train:])])
    return y[:n_train], y[n_train:], model.predict(X[n_train:]), surv, times


def test_scores_match_sksurv_after_administrative_censoring(cohort):
    y_train, y_test, risk, surv, times = _fold(cohort)
    # a test subject followed far beyond the training follow-up: sksurv's ipcw functions raise on it
    y_test = y_test.copy()
    y_test["time"][0], y_test["event"][0] = 100.0, True
    with pytest.raises(ValueError, match="largest observed time point|censoring survival function is zero"):
        concordance_index_ipcw(y_train, y_test, risk)
    out = score_predictions(y_train, y_test, risk, surv, times, [3.0, 6.0, 12.0])
    tau = follow_up_limit(y_train)
    assert out["truncation"] == tau
    assert "truncated at the training follow-up" in out["note"] and "1 test subject(s)" in out["note"]
    cut = y_test.copy()
    late = cut["time"] >= tau
    cut["time"][late], cut["event"][late] = tau, False
    assert out["metrics"]["uno_c"] == pytest.approx(concordance_index_ipcw(y_train, cut, risk, tau=tau)[0])
    assert out["metrics"]["c_index"] == pytest.approx(harrell_c(y_test, risk))
    assert set(out["metrics"]) == {
        "c_index",
        "uno_c",
        "auc_3",
        "auc_6",
        "auc_12",
        "brier_3",
        "brier_6",
        "brier_12",
        "ibs",
    }


@pytest.mark.parametrize("tied", [False, True])
def test_scores_are_sksurv_figures_bit_for_bit(cohort, tied):
    # every figure is scikit-survival's own function on the same (truncated) outcome, to the last bit
    y_train, y_test, risk, surv, times = _fold(cohort)
    if tied:  # tied times and a score on two levels, as a model on pCE alone gives
        y_train, y_test = (_tied(cohort)[:45], _tied(cohort)[45:])
        risk = np.round(risk) * 0.5
    horizons = [3.0, 6.0, 12.0]
    out = score_predictions(y_train, y_test, risk, surv, times, horizons)["metrics"]
    tau = follow_up_limit(y_train)
    cut = y_test.copy()
    late = cut["time"] > tau
    cut["time"][late], cut["event"][late] = tau, False
    expected = {"c_index": concordance_index_censored(y_test["event"], y_test["time"], risk)[0],
                "uno_c": concordance_index_ipcw(y_train, cut, risk, tau=tau)[0],
                "ibs": integrated_brier_score(y_train, cut, surv, times)}
    for j, h in zip([0, 1, 3], horizons, strict=True):
        expected[f"auc_{h:g}"] = cumulative_dynamic_auc(y_train, cut, risk, [h])[0][0]
        expected[f"brier_{h:g}"] = brier_score(y_train, cut, surv[:, j], [h])[1][0]
    assert out == expected


def test_undefined_metrics_are_nan_with_reason(cohort):
    y_train, y_test, risk, surv, times = _fold(cohort)
    tau = follow_up_limit(y_train)
    beyond = float(np.ceil(tau) + 1)
    out = score_predictions(y_train, y_test, risk, np.c_[surv, surv[:, -1]], [*times, beyond], [3.0, beyond])
    assert np.isnan(out["metrics"][f"auc_{horizon_label(beyond)}"])
    assert "is not before the training follow-up" in out["reasons"][f"brier_{horizon_label(beyond)}"]
    assert "is not before the training follow-up" in out["reasons"]["ibs"]
    assert np.isfinite(out["metrics"]["brier_3"]) and "brier_3" not in out["reasons"]

    censored = y_test.copy()
    censored["event"] = False
    out = score_predictions(y_train, censored, risk, surv, times, [3.0])
    assert out["reasons"]["c_index"] == "all samples are censored"
    assert out["reasons"]["uno_c"].startswith("all test samples are censored")
    assert out["reasons"]["auc_3"] == "no test event by horizon 3"
    assert out["reasons"]["ibs"] == "needs at least two horizons"
    assert all(np.isnan(out["metrics"][k]) for k in out["reasons"])


def test_perfect_prediction_scores():
    # risk ordered exactly like the event times and survival 1 before / 0 after each event:
    # every concordance and AUC is 1 and every Brier score 0
    t = np.arange(1.0, 21.0)
    y = Surv.from_arrays(np.r_[[True] * 19, False], t)
    times = np.array([5.0, 10.0])
    surv = (t[:, None] > times[None, :]).astype(float)
    out = score_predictions(y, y, -t, surv, times, list(times))
    assert out["metrics"]["c_index"] == 1.0 and out["metrics"]["uno_c"] == 1.0
    assert out["metrics"]["auc_5"] == pytest.approx(1.0, abs=1e-12)
    assert out["metrics"]["auc_10"] == pytest.approx(1.0, abs=1e-12)
    assert out["metrics"]["brier_5"] == 0.0 and out["metrics"]["ibs"] == 0.0


def test_horizon_label():
    # a horizon read from a config is a Python number, one read from a table a numpy scalar: same spelling
    cases = [(6, "6"), (0.5, "0.5"), (52.0, "52"), (12.25, "12.25"), (np.float64(6.0), "6"), (np.int64(24), "24"),
             (np.float32(0.5), "0.5"), (pd.Series([3.0]).iloc[0], "3")]
    assert [horizon_label(h) for h, _ in cases] == [label for _, label in cases]
    assert horizon_label is outputs.horizon_label  # one definition, which the model's output columns use too
