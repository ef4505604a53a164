"""`train` end to end against a real MLflow SQLite store and registry."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import CohortValidationError, write_cohort
from cnslrisk.training import ConfigError, load_config, train
from cnslrisk.training.config import PromotionConfig
from cnslrisk.training.promote import promote

CONFIG = """
seed = 0
n_jobs = 1

[data]
path = "{path}"
id = "patient_id"
time = "pfs1_months"
event = "pfs1_event"
cause = "pattern"
censored = "none"
time_unit = "months"

[features]
binary = ["pce", "lmd", "steroids"]
categorical = ["cnsl_type"]
numeric = ["age", "ecog"]

[models]
fit = {fit}
rsf_trees = 20

[validation]
folds = 3
repeats = 2
bootstrap = 10
horizons = [3, 6, 12]

[landmark]
time = 1
response = "best_response"

[mlflow]
tracking_uri = "sqlite:///{db}"
experiment = "test"
registered_model = "test-pfs1"
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    # 300 patients: enough for a model on six covariates to beat the Kaplan-Meier curve out of fold and become champion
    write_cohort(generate_cohort(300, seed=1), tmp_path / "cohort.csv", provenance={"source": "synthetic"})
    return tmp_path


def write_config(directory, fit=("cox",), db="mlflow.db", path="cohort.csv"):
    config = directory / f"train-{db}.toml"
    config.write_text(CONFIG.format(path=path, fit=json.dumps(list(fit)), db=directory / db))
    return config


def test_train_registers_a_documented_pyfunc(workdir):
    result = train(write_config(workdir))
    assert (result.name, result.version, result.model_type) == ("test-pfs1", "1", "cox")
    assert set(result.aliases) == {"challenger", "champion"}
    card = result.card
    assert card["training_data"]["source"] == "synthetic" and card["training_data"]["n"] == 300
    assert card["intended_use"].startswith("NOT FOR CLINICAL USE")
    for term in ("pce", "lmd"):
        c = card["coefficients"][term]
        assert c["ci_lower"] < c["hr"] < c["ci_upper"] and 0 <= c["p"] <= 1
        assert c["hr"] == pytest.approx(np.exp(c["coef"]))
    boot = card["validation"]["bootstrap"]
    assert boot["resamples"] == 10
    assert boot["apparent"]["calibration_slope"] == pytest.approx(1.0, abs=1e-6)
    assert boot["corrected"]["c_index"] == pytest.approx(boot["apparent"]["c_index"] - boot["optimism"]["c_index"])

    client = MlflowClient()
    run = client.get_run(result.run_id)
    assert run.data.tags["cnslrisk.source"] == "synthetic"
    assert run.data.params["cohort.n"] == "300"
    assert "cox.corrected.c_index" in run.data.metrics and "null.cv.ibs.mean" in run.data.metrics
    version = client.get_model_version("test-pfs1", "1")
    assert float(version.tags["validation.corrected_c_index"]) == pytest.approx(boot["corrected"]["c_index"])
    # the promotion gate's figures are the out-of-fold ones of the card
    assert float(version.tags["validation.cv_c_index"]) == pytest.approx(card["validation"]["cv"]["c_index"]["mean"])
    assert version.tags["selection.beats_null"] == "true"
    artifacts = {a.path for a in client.list_artifacts(result.run_id)} | {
        a.path for a in client.list_artifacts(result.run_id, "plots")}
    assert {"comparison.csv", "plots/paired_differences.png"} <= artifacts

    model = mlflow.pyfunc.load_model("models:/test-pfs1@champion")
    patients = generate_cohort(4, seed=9)
    out = model.predict(patients)
    patterns = [f"cif_{c}_{h}" for c in ("distant", "local", "local_and_distant") for h in (3, 6, 12)]
    expected = ["patient_id", "risk_score", "risk_group"] + [
        f"survival_{h}{s}" for h in (3, 6, 12) for s in ("", "_lower", "_upper")] + ["median_time"]
    post_response = [f"post_response_{c}" for c in expected[3:] + patterns + ["likely_pattern"]]
    assert list(out.columns) == expected + patterns + ["likely_pattern"] + post_response + ["warnings"]
    # every synthetic patient has a best response, so each gets a post-response curve after the 1-month landmark
    assert out[[f"post_response_survival_{h}" for h in (3, 6, 12)]].notna().all().all()
    assert out["likely_pattern"].isin(["distant", "local", "local_and_distant"]).all()
    cifs = out[[f"cif_{c}_12" for c in ("distant", "local", "local_and_distant")]].to_numpy()
    assert ((cifs >= 0) & (cifs.sum(axis=1, keepdims=True) <= 1)).all()
    assert "pattern_validation" in card and card["pattern_model"]["causes"] == ["distant", "local", "local_and_distant"]
    assert (out["survival_3_lower"] <= out["survival_3"]).all() and (out["survival_3"] <= out["survival_3_upper"]).all()
    assert (np.diff(out[["survival_3", "survival_6", "survival_12"]].to_numpy(), axis=1) <= 0).all()


def test_input_example_is_synthetic(workdir):
    result = train(write_config(workdir))
    local = mlflow.artifacts.download_artifacts(f"models:/{result.name}/{result.version}")
    example = json.loads(open(f"{local}/input_example.json").read())
    text = json.dumps(example)
    training_ids = set(generate_cohort(300, seed=1)["patient_id"])
    assert not any(pid in text for pid in training_ids)
    assert "EXAMPLE-001" in text


def test_same_config_and_seed_give_identical_results(workdir):
    first = train(write_config(workdir, db="a.db"))
    second = train(write_config(workdir, db="b.db"))
    assert first.card["coefficients"] == second.card["coefficients"]
    assert json.dumps(first.card["post_response"], sort_keys=True) == json.dumps(second.card["post_response"],
                                                                               sort_keys=True)
    timing = [k for k in first.metrics if ".seconds." in k]
    strip = lambda m: {k: v for k, v in m.items() if k not in timing}  # noqa: E731
    assert strip(first.metrics) == strip(second.metrics)


def test_all_three_models_and_the_choice(workdir):
    result = train(write_config(workdir, fit=("cox", "coxnet", "rsf")))
    card = result.card
    candidates, selection = card["candidates"], card["selection"]
    assert set(candidates) == {"cox", "coxnet", "rsf", "null", "published"}
    # the declared rule, recomputed from the card's own figures: lowest IBS among the calibrated, margin 0.005
    calibrated = [k for k in ("cox", "coxnet", "rsf") if 0.7 <= candidates[k]["cv"]["calibration_slope"]["mean"] <= 1.3]
    best = min(candidates[k]["cv"]["ibs"]["mean"] for k in calibrated)
    assert result.model_type == next(k for k in calibrated if candidates[k]["cv"]["ibs"]["mean"] <= best + 0.005)
    assert selection["chosen"] == result.model_type and selection["beats_null"] and "champion" in result.aliases
    assert card["validation"]["cv"] == candidates[result.model_type]["cv"]
    assert set(selection["paired"]) >= {"cox_vs_null", "coxnet_vs_null", "rsf_vs_null", "published_vs_null"}
    assert candidates["null"]["cv"]["c_index"]["mean"] == 0.5
    if result.model_type != "cox":  # penalised Cox: bootstrap refits; a forest: the jackknife over its trees
        start = "bootstrap percentile band" if result.model_type == "coxnet" else "infinitesimal jackknife"
        assert result.card["model"]["interval_method"].startswith(start)
        out = mlflow.pyfunc.load_model(f"models:/test-pfs1/{result.version}").predict(generate_cohort(5, seed=2))
        assert (out["survival_6_lower"] <= out["survival_6_upper"]) & out["survival_6_lower"].notna().all()
    for kind in ("cox", "coxnet", "rsf", "null", "published"):
        assert f"{kind}.cv.ibs.mean" in result.metrics
    # the bootstrap optimism is for Cox-type models only; forests get out-of-fold figures
    assert "cox.corrected.c_index" in result.metrics and "coxnet.corrected.c_index" in result.metrics
    assert "rsf.corrected.c_index" not in result.metrics and "bootstrap" not in candidates["rsf"]
    for kind in ("cox", "coxnet", "rsf"):
        assert candidates[kind]["artifact_bytes"] > 0


def test_bad_cohort_stops_before_any_run(workdir):
    df = generate_cohort(60, seed=1)
    df.loc[3, "age"] = 7
    write_cohort(df, workdir / "bad.csv")
    with pytest.raises(CohortValidationError, match=r"row 4 \(patient SYN-004\), field age: '7.0' is below"):
        train(write_config(workdir, path="bad.csv"))
    assert not (workdir / "mlflow.db").exists()


def test_bad_config_stops_before_any_run(workdir):
    with pytest.raises(ConfigError, match="unknown config key models.trees"):
        train(write_config(workdir), overrides={"models.trees": 5})
    assert not (workdir / "mlflow.db").exists()


def test_public_dataset_with_other_names_and_days(tmp_path, monkeypatch):
    """scikit-survival's Veterans' lung cancer trial: time in days, its own column names."""
    from sksurv.datasets import load_veterans_lung_cancer

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    X, y = load_veterans_lung_cancer()
    cohort = X.assign(Status=y["Status"], Survival_in_days=y["Survival_in_days"])
    cohort["Prior_therapy"] = X["Prior_therapy"] == "yes"
    cohort.to_csv(tmp_path / "veterans.csv", index=False)
    (tmp_path / "veterans.toml").write_text(f"""
[data]
path = "veterans.csv"
id = ""
time = "Survival_in_days"
event = "Status"
time_unit = "days"
[features]
binary = ["Prior_therapy"]
categorical = ["Celltype", "Treatment"]
numeric = ["Age_in_years", "Karnofsky_score"]
[models]
fit = ["cox"]
[validation]
folds = 3
repeats = 1
bootstrap = 5
horizons = [90, 180, 365]
[mlflow]
tracking_uri = "sqlite:///{tmp_path}/vet.db"
registered_model = "veterans"
""")
    result = train(tmp_path / "veterans.toml")
    card = result.card
    assert card["training_data"]["source"] == "real" and card["training_data"]["time_unit"] == "days"
    assert card["training_data"]["n"] == 137 and card["training_data"]["events"] == int(y["Status"].sum())
    assert {"Karnofsky_score", "Celltype_large", "Treatment_test"} <= set(card["coefficients"])
    # Karnofsky performance is the strongest known predictor in this trial: higher score, lower hazard
    assert card["coefficients"]["Karnofsky_score"]["ci_upper"] < 1
    out = mlflow.pyfunc.load_model("models:/veterans@champion").predict(X.head(3))
    assert {"survival_90", "survival_180", "survival_365"} <= set(out.columns)
    assert "post_response" not in card and not any(c.startswith("post_response_") for c in out.columns)  # no [landmark]


def test_promotion_gate_and_force(workdir):
    config = load_config(write_config(workdir))
    train(config)
    second = train(config, overrides={"seed": 1})
    assert second.version == "2" and second.aliases == ("challenger",)
    strict = PromotionConfig(c_index_margin=0.0, slope_lower=5.0, slope_upper=6.0)
    refused = promote("test-pfs1", gate=strict)
    assert not refused.promoted and "outside [5, 6]" in refused.reason
    # both versions were trained on the same cohort: their out-of-fold C are figures of the same data
    sha = second.card["training_data"]["sha256"]
    assert refused.basis == f"out-of-fold C of both on the same training cohort {sha[:12]}"
    client = MlflowClient()
    assert client.get_model_version_by_alias("test-pfs1", "champion").version == 1
    forced = promote("test-pfs1", gate=strict, force=True)
    assert forced.promoted and forced.reason.startswith("FORCED")
    assert client.get_model_version_by_alias("test-pfs1", "champion").version == 2
    assert client.get_model_version("test-pfs1", "2").tags["promotion.forced"] == "true"
    assert client.get_model_version("test-pfs1", "2").tags["promotion.basis"] == refused.basis


def test_penalised_model_carries_a_bootstrap_band(workdir):
    result = train(write_config(workdir, fit=("coxnet",)), overrides={"validation.band_resamples": 20})
    assert result.card["model"]["interval_method"].startswith("bootstrap percentile band: ")
    out = mlflow.pyfunc.load_model(f"models:/test-pfs1/{result.version}").predict(generate_cohort(5, seed=2))
    assert out["survival_6_lower"].notna().all()
    assert ((out["survival_6_lower"] <= out["survival_6_upper"]) & (out["survival_12_upper"] <= 1)).all()


def test_cause_specific_incidence_shows_the_pattern_models_own(workdir):
    from cnslrisk.registry import load_risk_model
    from cnslrisk.training.pattern_card import CAUSE_SPECIFIC_METHOD, SPLIT_METHOD

    split = train(write_config(workdir, db="split.db"))
    own = train(write_config(workdir, db="own.db"), overrides={"pattern.incidence": "cause_specific"})
    for card, shown in ((split.card, SPLIT_METHOD), (own.card, CAUSE_SPECIFIC_METHOD)):
        for section in (card["pattern_model"], card["post_response"]["pattern_model"]):
            assert section["incidence"] == shown
    for section in (own.card["pattern_model"], own.card["post_response"]["pattern_model"]):
        gaps = section["coherence"]
        assert gaps["after"]["max"] == gaps["before"]["max"] > 1e-6  # separate fits: they do not add up
    # each validation judged the incidences its model shows
    assert own.card["pattern_validation"]["brier"] != split.card["pattern_validation"]["brier"]

    model, _ = load_risk_model(f"models:/{own.name}/{own.version}")
    assert model.pattern_split is False and model.landmark.pattern_split is False
    checked, _ = model.check_frame(generate_cohort(25, seed=9))
    out = model.predict(checked)
    pattern = model.pattern
    expected = pattern[-1].predict_cumulative_incidence(pattern.named_steps["encode"].encode(checked), model.horizons,
                                                  check_input=False)
    for k, cause in enumerate(pattern[-1].causes_):
        for j, h in enumerate(model.horizons):
            np.testing.assert_array_equal(out[f"cif_{cause}_{h:g}"].to_numpy(), expected[:, k, j])
