"""Python scoring (`cnslrisk.serving.load`) and the MLflow pyfunc give the same columns and numbers."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import CohortValidationError
from cnslrisk.serving import load
from cnslrisk.serving.scoring import score_records


def test_load_predict_equals_pyfunc_and_score_records(registered):
    patients = generate_cohort(20, seed=21)
    scorer = load(registered.model_uri, tracking_uri=registered.tracking_uri)
    ours = scorer.predict(patients)
    assert list(ours.columns) == registered.model.predict_columns()
    mlflow.set_tracking_uri(registered.tracking_uri)
    theirs = mlflow.pyfunc.load_model(registered.model_uri).predict(patients)
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True))
    single = score_records(scorer.model, [patients.iloc[3].to_dict()])["predictions"][0]
    assert single["survival_12"] == pytest.approx(ours["survival_12"].iloc[3], rel=1e-12)
    assert scorer.info["alias"] == "champion" and scorer.provenance["training_source"] == "synthetic"
    assert scorer.card["intended_use"].startswith("NOT FOR CLINICAL USE")


def test_pyfunc_horizons_param_and_validation(registered):
    mlflow.set_tracking_uri(registered.tracking_uri)
    model = mlflow.pyfunc.load_model(registered.model_uri)
    patients = generate_cohort(3, seed=2)
    out = model.predict(patients, params={"horizons": [1.5, 12, 24]})
    assert list(out.columns) == registered.model.predict_columns((1.5, 12, 24))
    # 12 months is one of the model's own horizons: the same numbers as without the parameter
    assert 12 in registered.model.horizons
    default = model.predict(patients)
    at_12 = [c for c in default.columns if c.endswith("_12") or "_12_" in c]
    pd.testing.assert_frame_equal(out[at_12], default[at_12])
    # 1.5 months is read off the model's survival curve: between its values at the grid times either side
    checked = registered.model.input_schema.check(patients, require_outcome=False, allow_unknown=True)
    grid, curve, _, _ = registered.model.survival_curve(checked)
    k = np.searchsorted(grid, 1.5, side="right")
    assert 0 < k < grid.size
    s = out["survival_1.5"].to_numpy()
    assert np.all((curve[:, k] <= s) & (s <= curve[:, k - 1]))
    # what holds for any patient: survival falls and each pattern's incidence rises with time, the band holds
    # the estimate, and the incidences of the patterns and survival share one probability
    assert np.all(out["survival_1.5"] >= out["survival_12"]) and np.all(out["survival_12"] >= out["survival_24"])
    causes = [c[len("cif_"):-len("_24")] for c in out.columns if c.startswith("cif_") and c.endswith("_24")]
    assert causes
    for h in ("1.5", "12", "24"):
        assert np.all((out[f"survival_{h}_lower"] <= out[f"survival_{h}"])
                      & (out[f"survival_{h}"] <= out[f"survival_{h}_upper"]))
        assert np.all(out[[f"cif_{c}_{h}" for c in causes]].sum(axis=1) <= 1)
    for c in causes:
        assert np.all((0 <= out[f"cif_{c}_1.5"]) & (out[f"cif_{c}_1.5"] <= out[f"cif_{c}_12"])
                      & (out[f"cif_{c}_12"] <= out[f"cif_{c}_24"]))
    bad = patients.assign(ecog=[1, 2, 9])
    message = r"row 3 \(patient SYN-003\), field ecog: '9' is above the maximum 4"
    with pytest.raises(CohortValidationError, match=message):
        model.predict(bad)
