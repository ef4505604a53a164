"""External validation: reproduction of the apparent figures, shift detection, independent computations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.utils import concordance_index
from mlflow import MlflowClient

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model.cohort_io import write_cohort
from cnslrisk.registry import load_risk_model
from cnslrisk.training import train
from cnslrisk.training.evaluate import evaluate, evaluate_model, load_cohort, point_figures, slope_with_se
from cnslrisk.training.monitor import case_mix, period_labels

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "example_cohort.csv"
# 5 x 2 folds: the fewest with which the bundled model's out-of-fold C is shown to beat 0.5, so it becomes champion
FAST = {"models.fit": ["cox"], "validation.repeats": 2, "validation.folds": 5, "validation.bootstrap": 10,
        "pattern.repeats": 1, "n_jobs": 1}


def train_registered(directory: Path, monkeypatch_context) -> str:
    """Train the Cox model on the bundled example cohort into a SQLite registry under ``directory``."""
    uri = f"sqlite:///{directory}/mlflow.db"
    with monkeypatch_context() as mp:
        mp.chdir(directory)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        train(overrides=FAST)
    return uri


def simulate(model, path: Path, n: int, seed: int, *, hazard_factor: float = 1.0, slope: float = 1.0,
             censor_max: float = 36.0, extra: dict | None = None) -> dict:
    """Covariates from the synthetic generator; outcomes from the model itself with H(t|x) = k H0(t) exp(b lp).

    k = ``hazard_factor`` shifts the baseline, b = ``slope`` shrinks the effects; k = b = 1 is the model.
    Event times solve H(t|x) = E for an Exp(1) draw E on the Breslow baseline interpolated linearly (no
    event beyond the last grid time); censoring is uniform on (0.5, censor_max).
    Returns the true mean survival at each horizon.
    """
    rng = np.random.default_rng(seed)
    frame = generate_cohort(n, seed)[["patient_id", *model.feature_columns]]
    est = model.pipeline[-1]
    lp = model.pipeline.predict(frame[model.feature_columns])
    h0, grid = est.cum_baseline_hazard_, est.unique_times_
    # continuous times: the Breslow steps joined linearly (piecewise-constant hazard), so no ties
    target = rng.exponential(size=n) / (hazard_factor * np.exp(slope * lp))
    t_event = np.where(target <= h0[-1], np.interp(target, np.r_[0.0, h0], np.r_[0.0, grid]), np.inf)
    t_censor = rng.uniform(0.5, censor_max, n)
    frame["pfs1_months"] = np.minimum(t_event, t_censor)
    frame["pfs1_event"] = t_event <= t_censor
    frame["pattern"] = np.where(frame["pfs1_event"], "local", "none")
    for name, values in (extra or {}).items():
        frame[name] = values
    write_cohort(frame, path, provenance={"source": "synthetic"})
    truth = {}
    for h in model.horizons:
        base = np.interp(h, np.r_[0.0, grid], np.r_[0.0, h0])
        truth[f"{h:g}"] = float(np.mean(np.exp(-hazard_factor * base * np.exp(slope * lp))))
    return truth


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    directory = tmp_path_factory.mktemp("evaluate")
    uri = train_registered(directory, pytest.MonkeyPatch.context)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        model, _ = load_risk_model("models:/cnslrisk-pfs1@champion")
        yield directory, uri, model


def test_own_training_cohort_reproduces_apparent_figures(registered, monkeypatch):
    directory, uri, model = registered
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(directory)
    result = evaluate("models:/cnslrisk-pfs1@champion", EXAMPLE, bootstrap=20, out=directory / "out")
    apparent = model.metadata["card"]["validation"]["bootstrap"]["apparent"]
    # the same fitted model, the same rows, the same estimators: equality, not closeness
    assert result.summary["c_index"] == apparent["c_index"]
    assert result.summary["calibration_slope"] == apparent["calibration_slope"]
    lo, hi = result.summary["c_index_ci"]
    assert lo < result.summary["c_index"] < hi
    for h in ("3", "6", "12"):
        entry = result.summary["horizons"][h]
        assert {"calibration_in_the_large", "calibration_slope", "brier", "auc", "auc_ci"} <= set(entry)
    # the evaluation run is linked to the version, the version's history records it, and no row is logged
    client = MlflowClient(uri)
    run = client.get_run(result.summary["run_id"])
    assert run.data.tags["cnslrisk.model.version"] == "1"
    assert run.data.tags["cnslrisk.cohort.sha256"] == model.metadata["card"]["training_data"]["sha256"]
    history = json.loads(client.get_model_version("cnslrisk-pfs1", "1").tags["validated_on.1"])
    assert history["n"] == 60 and history["events"] == 36 and history["c_index"] == apparent["c_index"]
    logged = Path(client.download_artifacts(run.info.run_id, "evaluation.json", str(directory))).read_text()
    assert "SYN-0" not in logged and "SYN-0" not in (directory / "out" / "case_mix.csv").read_text()
    assert (directory / "out" / "decision_curve.png").stat().st_size > 0


def test_case_mix_of_the_training_cohort_matches_the_stored_aggregates(registered):
    model = registered[2]
    data = load_cohort(model, EXAMPLE)
    table = case_mix(model, data.X).set_index("term")
    covariates = table[table["kind"] != "model"]
    # x_mean_ and the encoder's mean_/sd_ were computed from these very rows
    np.testing.assert_allclose(covariates["cohort"], covariates["training"], atol=1e-12)
    np.testing.assert_allclose(covariates["standardized_difference"], 0.0, atol=1e-10)
    # the training cohort falls into the risk groups exactly as the card recorded at training time
    shares = model.metadata["card"]["risk_groups"]["training_shares"]
    for group in ("low", "intermediate", "high"):
        assert table.loc[f"risk_group_{group}", "cohort"] == pytest.approx(shares[group], abs=1e-12)
        assert table.loc[f"risk_group_{group}", "training"] == shares[group]


def test_numbers_match_independent_computations(registered):
    model = registered[2]
    data = load_cohort(model, EXAMPLE)
    figures = point_figures(model, data.X, data.y)
    summary = figures["summary"]
    time, event = data.y["time"], data.y["event"]
    lp = model.pipeline.predict(data.X)
    assert summary["c_index"] == pytest.approx(concordance_index(time, -lp, event), abs=1e-12)
    cph = CoxPHFitter().fit(pd.DataFrame({"lp": lp, "t": time, "e": event}), "t", "e")
    assert summary["calibration_slope"] == pytest.approx(cph.params_["lp"], abs=1e-6)
    assert summary["calibration_slope_se"] == pytest.approx(cph.standard_errors_["lp"], rel=1e-5)
    est = model.pipeline[-1]
    censoring = KaplanMeierFitter().fit(time, ~event)
    for h in model.horizons:
        label = f"{h:g}"
        s = np.exp(-est.cum_baseline_hazard_[np.searchsorted(est.unique_times_, h, side="right") - 1] * np.exp(lp))
        km = KaplanMeierFitter().fit(time, event).survival_function_at_times(h).iloc[0]
        entry = summary["horizons"][label]
        assert entry["calibration_in_the_large"] == pytest.approx(km - s.mean(), abs=1e-12)
        # Graf's IPCW Brier score; the example's times are distinct, so G(T-) = G(T) at each event
        g_t = censoring.survival_function_at_times(time).to_numpy()
        g_h = censoring.survival_function_at_times(h).iloc[0]
        terms = np.where((time <= h) & event, s**2 / g_t, 0.0) + np.where(time > h, (1 - s) ** 2 / g_h, 0.0)
        assert entry["brier"] == pytest.approx(terms.mean(), abs=1e-10)
        # cumulative/dynamic AUC (Uno 2007): cases T <= h with an event weighted 1 / G(T), controls T > h
        case, control = (time <= h) & event, time > h
        w = 1 / g_t[case]
        pairs = (lp[case][:, None] > lp[control][None, :]) + 0.5 * (lp[case][:, None] == lp[control][None, :])
        assert entry["auc"] == pytest.approx((w[:, None] * pairs).sum() / (w.sum() * control.sum()), abs=1e-10)


def test_pattern_incidences_add_up_to_the_kaplan_meier_risk(registered):
    model = registered[2]
    data = load_cohort(model, EXAMPLE)
    pattern = evaluate_model(model, data, bootstrap=0).summary["pattern"]
    assert set(pattern) == {"local", "local_and_distant", "distant"}
    km = KaplanMeierFitter().fit(data.y["time"], data.y["event"])
    for h in model.horizons:
        label = f"{h:g}"
        # Aalen-Johansen: the cause-specific incidences sum to the all-cause Kaplan-Meier risk
        observed = sum(pattern[c][label]["observed"] for c in pattern)
        assert observed == pytest.approx(1 - km.survival_function_at_times(h).iloc[0], abs=1e-12)
        for cause in pattern:
            entry = pattern[cause][label]
            assert entry["calibration_in_the_large"] == pytest.approx(entry["observed"] - entry["predicted"])
            assert 0.5 < entry["wolbers_c"] <= 1.0  # the pattern model ranks its own training cohort


def test_baseline_shift_is_detected_by_calibration_in_the_large(registered, tmp_path):
    model = registered[2]
    k = 2.5
    truth = simulate(model, tmp_path / "shifted.csv", 800, seed=11, hazard_factor=k)
    data = load_cohort(model, tmp_path / "shifted.csv")
    summary = evaluate_model(model, data, bootstrap=0).summary
    for label, entry in summary["horizons"].items():
        lower, upper = entry["calibration_in_the_large_ci"]
        se = (upper - lower) / (2 * 1.96)
        # expected CITL = E[S_true(h)] - mean predicted S(h), both over these covariates; the estimate is a
        # Kaplan-Meier estimate with (log-log) standard error about se, so it lies within 4 se of the truth
        assert entry["calibration_in_the_large"] == pytest.approx(truth[label] - entry["predicted"], abs=4 * se)
        assert upper < 0  # the model predicts too much survival: the shift is detected at every horizon
    # the shift is in the baseline only: the slope stays 1 (the simulated effects are the model's)
    assert abs(summary["calibration_slope"] - 1.0) < 4 * summary["calibration_slope_se"]


def test_slope_shift_is_detected_by_the_calibration_slope(registered, tmp_path):
    model = registered[2]
    simulate(model, tmp_path / "flat.csv", 800, seed=12, slope=0.5)
    summary = evaluate_model(model, load_cohort(model, tmp_path / "flat.csv"), bootstrap=0).summary
    slope, se = summary["calibration_slope"], summary["calibration_slope_se"]
    # the Cox MLE of the slope is consistent for the simulated 0.5 with standard error se
    assert abs(slope - 0.5) < 4 * se
    assert summary["calibration_slope_ci"][1] < 1.0


def test_periods_are_reported_and_the_shifted_one_flagged(registered, tmp_path):
    model = registered[2]
    simulate(model, tmp_path / "a.csv", 400, seed=21)
    simulate(model, tmp_path / "b.csv", 400, seed=22, hazard_factor=3.0)
    a, b = load_cohort(model, tmp_path / "a.csv"), load_cohort(model, tmp_path / "b.csv")
    X = pd.concat([a.X, b.X], ignore_index=True)
    y = np.concatenate([a.y, b.y])
    periods = np.array(["2024"] * 400 + ["2025"] * 400)
    data = type(a)(X=X, y=y, cause=None, provenance=a.provenance)
    table = evaluate_model(model, data, bootstrap=0, periods=periods, citl_band=0.1).periods.set_index("period")
    assert table.loc["2024", "flag"] == ""
    assert "calibration-in-the-large" in table.loc["2025", "flag"]
    assert table["n"].tolist() == [400, 400]


def test_period_labels():
    assert period_labels(pd.Series(["2024", "2025"], name="year")).tolist() == ["2024", "2025"]
    assert period_labels(pd.Series(["2024-03-01", "2025-12-31"], name="infusion")).tolist() == ["2024", "2025"]
    with pytest.raises(ValueError, match=r"row 2, period column infusion: not a year or a date \(1 such row"):
        period_labels(pd.Series(["2024-03-01", "soon"], name="infusion"))


def test_slope_refuses_a_score_that_is_not_finite(registered):
    data = load_cohort(registered[2], EXAMPLE)
    score = np.r_[np.inf, np.zeros(data.n - 1)]
    with pytest.raises(ValueError, match=r"the score is not finite \(a predicted survival of 0 or 1\)"):
        slope_with_se(data.y, score)
