"""Python scoring (`cnslrisk.serving.load`) and the MLflow pyfunc give the same columns and numbers."""

from __future__ import annotations

import mlflow
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
    out = model.predict(patients, params={"horizons": [1.5, 24]})
    assert {"survival_1.5", "survival_24_upper", "cif_local_24"} <= set(out.columns)
    bad = patients.assign(ecog=[1, 2, 9])
    message = r"row 3 \(patient SYN-003\), field ecog: '9' is above the maximum 4"
    with pytest.raises(CohortValidationError, match=message):
        model.predict(bad)
