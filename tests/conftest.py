"""Shared fixtures: a model registered in a real SQLite registry (example cohort, Cox only, small validation)."""

from __future__ import annotations

from collections import namedtuple

import pytest

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
        result = train(overrides={"models.fit": ["cox"], "validation.repeats": 1, "validation.bootstrap": 10,
                                  "n_jobs": 1, "mlflow.tracking_uri": tracking_uri})
    model_uri = f"models:/{result.name}@champion"
    use_tracking(tracking_uri, explicit=True)
    model, _ = load_risk_model(model_uri)
    return Registered(tracking_uri, model_uri, model, directory)
