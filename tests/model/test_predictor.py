"""RiskModel: output columns, storage without pickle, tamper refusal, contributions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sksurv.nonparametric import kaplan_meier_estimator

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import check_cohort
from cnslrisk.model import predictor as predictor_module
from cnslrisk.model.estimators import ForestFileError
from cnslrisk.model.pipeline import make_pipeline
from cnslrisk.model.predictor import RiskModel

FEATURES = {"binary": ["pce", "lmd"], "categorical": ["cnsl_type"], "numeric": ["age"], "id": "patient_id"}


def build(kind: str, **params) -> tuple[RiskModel, pd.DataFrame]:
    cohort = check_cohort(generate_cohort(120, seed=4))
    y = np.array(list(zip(cohort["pfs1_event"], cohort["pfs1_months"], strict=True)),
                 dtype=[("event", bool), ("time", float)])
    pipeline = make_pipeline(kind, binary=FEATURES["binary"], categorical=FEATURES["categorical"],
                             numeric=FEATURES["numeric"], **params).fit(cohort, y)
    risk = pipeline.predict(cohort)
    times, survival = kaplan_meier_estimator(y["event"], y["time"])
    model = RiskModel(kind=kind, pipeline=pipeline, features=FEATURES, horizons=(3.0, 6.0, 12.0),
                      time_unit="months", time_grid=np.unique(y["time"][y["event"]]),
                      risk_cutpoints=tuple(np.quantile(risk, [1 / 3, 2 / 3])),
                      training_km={"time": times.tolist(), "survival": survival.tolist()},
                      metadata={"card": {"training_data": {"source": "synthetic"}}})
    return model, cohort


@pytest.mark.parametrize(("kind", "params"), [("cox", {}), ("rsf", {"n_estimators": 20})])
def test_save_and_load_predict_identically(tmp_path, kind, params):
    model, cohort = build(kind, **params)
    model.save(tmp_path / "m")
    assert not list((tmp_path / "m").rglob("*.pkl")) and not list((tmp_path / "m").rglob("*.joblib"))
    again = RiskModel.load(tmp_path / "m")
    pd.testing.assert_frame_equal(again.predict(cohort), model.predict(cohort))


def test_output_columns_and_their_meaning():
    model, cohort = build("cox")
    out = model.predict(cohort, horizons=(0.5, 6.0))
    assert list(out.columns) == model.predict_columns((0.5, 6.0))
    assert out.columns[0] == "patient_id" and "survival_0.5_lower" in out
    assert (out["survival_0.5_lower"] <= out["survival_0.5"]).all() and (out["survival_6"] <= out["survival_0.5"]).all()
    # tertile cut points of the training risk: about a third of the training cohort in each group
    assert out["risk_group"].value_counts().min() >= 35
    # the median is the first grid time where S <= 0.5, and missing exactly where S stays above 0.5
    _, survival, _, _ = model.survival_curve(cohort)
    reached = (survival <= 0.5).any(axis=1)
    assert out["median_time"].isna().to_numpy().tolist() == (~reached).tolist()


@pytest.mark.parametrize(("kind", "params"), [("cox", {}), ("rsf", {"n_estimators": 20})])
def test_rows_in_blocks_predict_as_one_block(monkeypatch, kind, params):
    model, cohort = build(kind, **params)
    whole = model.predict(cohort)
    monkeypatch.setattr(predictor_module, "_BLOCK_ROWS", 7)  # 120 rows: 17 blocks of 7 and one of 1
    blocked = model.predict(cohort)
    pd.testing.assert_frame_equal(blocked, whole, check_exact=True)
    assert blocked.index.equals(cohort.index)


def test_cox_contributions_add_up_to_the_risk_score():
    model, cohort = build("cox")
    contributions = model.contributions(cohort)
    assert list(contributions.columns) == ["pce", "lmd", "cnsl_type", "age"]
    np.testing.assert_allclose(contributions.sum(axis=1), model.predict(cohort)["risk_score"], atol=1e-12)


def test_tampered_forest_files_are_refused(tmp_path):
    model, _ = build("rsf", n_estimators=20)
    model.save(tmp_path / "m")
    arrays = next((tmp_path / "m").rglob("*.npz"))
    data = bytearray(arrays.read_bytes())
    data[len(data) // 2] ^= 0xFF  # flip one byte
    arrays.write_bytes(bytes(data))
    with pytest.raises(ForestFileError, match=arrays.name):
        RiskModel.load(tmp_path / "m")


def test_unseen_level_and_out_of_range_are_warned_not_refused():
    model, cohort = build("cox")
    odd = cohort.head(2).copy()
    odd.loc[odd.index[0], "age"] = 99.0
    out = model.predict(odd)
    assert "field age: 99 is outside the training range" in out["warnings"].iloc[0]
    assert out["warnings"].iloc[1] == ""


def test_a_forest_row_with_the_conservative_band_is_warned():
    model, cohort = build("rsf", n_estimators=10)  # few trees: some rows' corrected variance is not positive
    encoded = model.encode(cohort)
    flagged = model.pipeline[-1].predict_summary(encoded, model.horizons, level=0.95)["conservative"].any(axis=1)
    assert 0 < flagged.mean() < 1
    out = model.predict(cohort)
    warned = out["warnings"].str.contains(predictor_module.CONSERVATIVE_BAND, regex=False).to_numpy()
    np.testing.assert_array_equal(warned, flagged)
    assert "uncorrected one (wider) and a warning" in model.interval_method


@pytest.mark.parametrize(("kind", "params"), [("coxnet", {}), ("rsf", {"n_estimators": 10})])
def test_bootstrap_band_is_stored_and_reloaded(tmp_path, kind, params):
    model, cohort = build(kind, **params)
    y = np.array(list(zip(cohort["pfs1_event"], cohort["pfs1_months"], strict=True)),
                 dtype=[("event", bool), ("time", float)])
    rng = np.random.default_rng(0)
    members = []
    for _ in range(20):
        rows = rng.integers(0, len(y), len(y))
        members.append(make_pipeline(kind, binary=FEATURES["binary"], categorical=FEATURES["categorical"],
                                     numeric=FEATURES["numeric"], **params).fit(cohort.iloc[rows], y[rows]))
    model.band = members
    out = model.predict(cohort)
    stack = np.stack([m.predict_survival(cohort, [6.0])[:, 0] for m in members])
    np.testing.assert_allclose(out["survival_6_lower"], np.quantile(stack, 0.025, axis=0))
    np.testing.assert_allclose(out["survival_6_upper"], np.quantile(stack, 0.975, axis=0))
    assert model.interval_method.startswith("bootstrap percentile band: 20 refits")
    model.save(tmp_path / "m")
    pd.testing.assert_frame_equal(RiskModel.load(tmp_path / "m").predict(cohort), out)
