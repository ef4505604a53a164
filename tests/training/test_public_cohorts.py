"""Public cohorts of other diseases, end to end through a config alone: config init, train, evaluate, score.

The cohorts come from scikit-survival's and lifelines' bundled data at test time (tests/public_cohorts.py);
the R numbers in tests/data/public_cohort_*.csv were made by tests/data/public_cohort_references.R (their
'#' lines say with which R, packages and calls). Training runs with fewer resamples than the starter
config asks for (--set overrides), the only change to the written config.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from public_cohorts import COHORTS, write_public_cohort

from cnslrisk.registry import load_risk_model, use_tracking
from cnslrisk.serving.batch import score_file
from cnslrisk.training import load_config, train
from cnslrisk.training.config_init import starter_config
from cnslrisk.training.evaluate import evaluate

FAST = {"validation.repeats": 1, "validation.bootstrap": 10, "models.fit": ["cox"], "pattern.repeats": 1,
        "n_jobs": 1}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    path = tmp_path_factory.mktemp("public")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(path)  # MLflow puts a new experiment's artifacts under ./mlruns
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        yield path


@pytest.fixture(scope="module")
def reference(request):
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data"
    return {"coxph": pd.read_csv(data / "public_cohort_coxph.csv", comment="#"),
            "csc": pd.read_csv(data / "public_cohort_csc.csv", comment="#")}


def _trained(folder, name: str, **overrides):
    """Write the cohort, its starter config (config init) and train it; the model, its config and the card."""
    cohort = write_public_cohort(name, folder)
    config_path = folder / f"{name}.toml"
    starter_config(cohort, out=config_path, **COHORTS[name])
    settings = {**FAST, "mlflow.tracking_uri": f"sqlite:///{folder}/mlflow.db", **overrides}
    result = train(config_path, overrides=settings)
    use_tracking(settings["mlflow.tracking_uri"], explicit=True)
    model, _ = load_risk_model(f"models:/{result.name}/{result.version}")
    return model, load_config(config_path, settings), result.card


def _coefficients(reference, cohort: str) -> pd.Series:
    table = reference["coxph"]
    return table[table["cohort"] == cohort].set_index("term")["coef"]


def _lifelines(cohort: pd.DataFrame, time: str, event: str, columns: list[str]) -> pd.Series:
    from lifelines import CoxPHFitter

    fitted = CoxPHFitter().fit(cohort[[*columns, time, event]], duration_col=time, event_col=event)
    return fitted.params_


def _score_and_list(model, config, folder, name):
    summary = score_file(model, config.data.path, folder / f"{name}_scored.csv")
    assert summary.scored == summary.rows_in and summary.rejected == 0
    outcome = {config.data.time, config.data.event, config.data.cause} - {None}
    assert outcome <= set(summary.columns.recognised)  # the training outcome columns: known, ignored, listed
    return pd.read_csv(folder / f"{name}_scored.csv")


def test_kidney_transplant_in_days_with_children(folder, reference):
    model, config, card = _trained(folder, "kidney")
    assert card["training_data"]["n"] == 863 and card["training_data"]["time_unit"] == "days"
    cohort = pd.read_csv(config.data.path)
    assert cohort["time"][cohort["death"] == 1].nunique() > 100  # hundreds of distinct times
    coefficients = pd.Series({term: c["coef"] for term, c in card["coefficients"].items()})
    r = _coefficients(reference, "kidney")
    np.testing.assert_allclose(coefficients[r.index], r, atol=1e-4)
    lifelines = _lifelines(cohort, "time", "death", list(r.index))
    np.testing.assert_allclose(coefficients[lifelines.index], lifelines, atol=1e-4)
    # age is judged by the config's rule (no CNSL range 18-100), also at scoring: children score
    age = model.contract.by_name()["age"]
    assert (age.min, age.max) == (None, None)
    scored = _score_and_list(model, config, folder, "kidney")
    assert scored["survival_440"].between(0, 1).all() and (cohort["age"] < 18).sum() == 23
    evaluation = evaluate(f"models:/{config.mlflow.registered_model}/1", config.data.path, config=config,
                          bootstrap=0, log=False).summary
    assert evaluation["c_index"] == pytest.approx(card["validation"]["bootstrap"]["apparent"]["c_index"], abs=1e-9)


def test_flchain_whose_age_and_sex_collide_with_the_cnsl_names(folder, reference):
    model, config, card = _trained(folder, "flchain")
    assert config.fields["sex"].levels == ("F", "M") and config.fields["age"].max is None
    coefficients = pd.Series({term: c["coef"] for term, c in card["coefficients"].items()})
    r = _coefficients(reference, "flchain")
    np.testing.assert_allclose(coefficients[r.index], r, atol=1e-4)
    cohort = pd.read_csv(config.data.path)
    frame = cohort.assign(sex_M=(cohort["sex"] == "M").astype(float), mgus=(cohort["mgus"] == "yes").astype(float),
                          death=cohort["death"].astype(float))
    lifelines = _lifelines(frame, "futime", "death", list(r.index))
    np.testing.assert_allclose(coefficients[lifelines.index], lifelines, atol=1e-4)
    scored = _score_and_list(model, config, folder, "flchain")
    assert len(scored) == len(cohort) and (cohort["age"] > 100).any()
    evaluation = evaluate(f"models:/{config.mlflow.registered_model}/1", config.data.path, config=config,
                          bootstrap=0, log=False).summary
    assert 0.5 < evaluation["c_index"] < 1


def test_cgvhd_competing_risks_equal_riskregression(folder, reference):
    """The unpenalised cause-specific Cox models and their product-limit incidences are R riskRegression's."""
    model, config, card = _trained(folder, "cgvhd", **{"features.binary": [], "features.categorical": ["dx"],
                                                        "features.numeric": ["age"]})
    pattern = model.pattern[-1]
    assert {entry["penalty"] for entry in pattern.penalties().values()} == {"none"}
    for cause, fitted in zip(pattern.causes_, pattern.models_, strict=True):
        r = _coefficients(reference, f"cgvhd cause {cause}")
        np.testing.assert_allclose(fitted.coef_, r[list(fitted.feature_names_in_)], atol=1e-4)
    csc = reference["csc"]
    profiles = csc[["age", "dx"]].drop_duplicates().reset_index(drop=True)
    times = np.sort(csc["time"].unique())
    encoded = model.pattern.named_steps["encode"].encode(profiles)
    ours = pattern.predict_cumulative_incidence(encoded, times, check_input=False)
    # riskRegression does not cap an all-cause jump above 1 (a very high-risk profile at the last event times);
    # this model caps it at 1 (documented): compare where no jump up to the time exceeds 1
    jumps = np.einsum("mk,kn->nm", pattern.baseline_increments_, pattern.relative_hazards(encoded, check_input=False))
    compared = 0
    for i, (age, dx) in enumerate(profiles.itertuples(index=False)):
        for k, cause in enumerate(pattern.causes_):
            rows = csc[(csc["age"] == age) & (csc["dx"] == dx) & (csc["cause"] == int(cause))].sort_values("time")
            for j, t in enumerate(times):
                if (jumps[i][pattern.unique_times_ <= t] <= 1).all():
                    assert ours[i, k, j] == pytest.approx(rows["risk"].iloc[j], abs=1e-6), (age, dx, cause, t)
                    compared += 1
    assert compared >= 130  # of 144 (6 profiles x 3 causes x 8 times)
    # what is shown splits the survival model's risk: it adds up to 1 - S
    shown = model.predict(model.input_schema.check(profiles.assign(age=profiles["age"].astype(float)),
                                                   require_outcome=False), horizons=tuple(times))
    for t in times:
        total = sum(shown[f"cif_{c}_{t:g}"] for c in pattern.causes_)
        np.testing.assert_allclose(total, 1 - shown[f"survival_{t:g}"], atol=1e-12)
    assert {row["cause"] for row in card["pattern_validation"]["brier"]} == {"1", "2", "3"}
    _score_and_list(model, config, folder, "cgvhd")


def test_bmt_with_events_at_the_time_origin(folder):
    model, config, card = _trained(folder, "bmt")
    assert config.fields["ftime"].min == 0 and not config.fields["ftime"].min_exclusive
    assert card["pattern_model"]["causes"] == ["1", "2"]
    scored = _score_and_list(model, config, folder, "bmt")
    horizons = [f"{h:g}" for h in config.validation.horizons]
    for h in horizons:
        np.testing.assert_allclose(scored[f"cif_1_{h}"] + scored[f"cif_2_{h}"], 1 - scored[f"survival_{h}"],
                                   atol=1e-12)
