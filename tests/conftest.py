"""Shared fixtures: a model registered in a real SQLite registry (Cox on eight baseline covariates, small validation).

It is trained on a 400-patient synthetic cohort: at the bundled example's 60 patients a model with eight
covariates does not beat the Kaplan-Meier curve out of fold, so training would (rightly) set no champion.
"""

from __future__ import annotations

from collections import namedtuple

import pytest
from covariates import BASELINE_COVARIATES

from cnslrisk.data.synthetic import write_synthetic_cohort
from cnslrisk.registry import load_risk_model, use_tracking
from cnslrisk.training import train

Registered = namedtuple("Registered", ["tracking_uri", "model_uri", "model", "directory"])


@pytest.fixture(scope="session")
def registered(tmp_path_factory):
    directory = tmp_path_factory.mktemp("registry")
    tracking_uri = f"sqlite:///{directory}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(directory)  # MLflow puts a new experiment's artifacts under ./mlruns
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        cohort = directory / "synthetic_400.csv"
        write_synthetic_cohort(cohort, n=400, seed=3)
        result = train(overrides={"data.path": str(cohort), "models.fit": ["cox"], "validation.repeats": 1,
                                  "validation.bootstrap": 10, "n_jobs": 1, "mlflow.tracking_uri": tracking_uri,
                                  **BASELINE_COVARIATES})
    assert "champion" in result.aliases, "the fixture's model must beat the null model to become champion"
    model_uri = f"models:/{result.name}@champion"
    use_tracking(tracking_uri, explicit=True)
    model, _ = load_risk_model(model_uri)
    return Registered(tracking_uri, model_uri, model, directory)
