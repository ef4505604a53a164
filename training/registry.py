"""MLflow tracking and model registry: the only module that logs to or registers in MLflow.

The embedded default is a SQLite tracking store and registry in the working directory
(``sqlite:///mlflow.db``), created on first use; any ``MLFLOW_TRACKING_URI`` (for example a
``mlflow server``) works the same way.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd

from cnslrisk.model.predictor import ARTIFACT_KEY, RiskModel

__all__ = [
    "ModelRef",
    "use_tracking",
    "log_risk_model",
    "set_alias",
    "tag_version",
    "alias_version",
    "log_json",
    "log_figures",
    "runtime_requirements",
    "CHAMPION",
    "CHALLENGER",
]

CHAMPION = "champion"
CHALLENGER = "challenger"
_RUNTIME_PACKAGES = ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "scikit-survival", "joblib", "mlflow")


@dataclass(frozen=True)
class ModelRef:
    """Where a registered model version lives."""

    name: str
    version: str
    model_uri: str
    run_id: str | None = None
    alias: str | None = None


def use_tracking(tracking_uri: str, experiment: str) -> str:
    """Point MLflow at ``tracking_uri`` and the experiment (created when absent); returns its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    return mlflow.set_experiment(experiment).experiment_id


def runtime_requirements() -> list[str]:
    """Pinned pip requirements of the scoring runtime (explicit: MLflow's inference is slow and misses some)."""
    pins = []
    for package in _RUNTIME_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            pins.append(package)
    return pins


def log_risk_model(
    model: RiskModel,
    *,
    registered_name: str,
    input_example: pd.DataFrame,
    extra_files: Mapping[str, str] | None = None,
) -> ModelRef:
    """Log ``model`` as a pyfunc in the active run and register it as a new version.

    Parameters
    ----------
    model : RiskModel
        Saved as plain files under the artifact ``risk_model``.
    registered_name : str
        Registered model name; the new version is returned.
    input_example : pandas.DataFrame
        A SYNTHETIC example row (never a patient's); also used to infer the signature.
    extra_files : mapping of file name to text, optional
        Written beside the model parameters (the model card as Markdown and JSON).
    """
    import mlflow

    # the pyfunc is logged as code by path (models from code): nothing is imported from serving here
    entry = Path(str(resources.files("cnslrisk.serving").joinpath("pyfunc_entry.py")))
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / ARTIFACT_KEY
        model.save(model_dir)
        for name, text in (extra_files or {}).items():
            (model_dir / name).write_text(text)
        signature = _signature(model, input_example)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(entry),
            artifacts={ARTIFACT_KEY: str(model_dir)},
            signature=signature,
            input_example=input_example,
            pip_requirements=runtime_requirements(),
            registered_model_name=registered_name,
        )
    registered = info.registered_model_version
    return ModelRef(name=registered_name, version=str(registered), model_uri=f"models:/{registered_name}/{registered}",
                    run_id=info.run_id)


def _signature(model: RiskModel, input_example: pd.DataFrame) -> Any:
    """Input columns named but typed ``Any``: the project's own validator checks types and ranges.

    MLflow's type enforcement would refuse, e.g., an integer ECOG for a double column, and its error
    message quotes the input rows, which must never reach a remote caller.
    """
    from mlflow.models import ModelSignature, infer_signature
    from mlflow.types.schema import AnyType, ColSpec, Schema

    columns = [ColSpec(AnyType(), name) for name in model.feature_columns]
    if model.features.get("id"):
        columns.insert(0, ColSpec(AnyType(), model.features["id"], required=False))
    if model.landmark is not None:
        columns.append(ColSpec(AnyType(), model.landmark.response, required=False))
    inferred = infer_signature(input_example, model.predict(input_example), params={"horizons": list(model.horizons)})
    return ModelSignature(inputs=Schema(columns), outputs=inferred.outputs, params=inferred.params)


def tag_version(ref: ModelRef, card: Mapping[str, Any]) -> None:
    """Record on the model version what the promotion gate and a registry browser need."""
    from mlflow import MlflowClient

    corrected = card["validation"]["bootstrap"]["corrected"]
    tags = {
        "validation.corrected_c_index": corrected["c_index"],
        "validation.corrected_calibration_slope": corrected["calibration_slope"],
        "training_data.source": card["training_data"]["source"],
        "training_data.sha256": card["training_data"]["sha256"],
        "model.type": card["model"]["type"],
        "intended_use": card["intended_use"],
    }
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(ref.name, ref.version, key, str(value))


def set_alias(name: str, alias: str, model_version: str) -> None:
    """Point ``alias`` of the registered model ``name`` at ``model_version``."""
    from mlflow import MlflowClient

    MlflowClient().set_registered_model_alias(name, alias, model_version)


def alias_version(name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the model or alias does not exist."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def log_json(name: str, payload: Any) -> None:
    """Log ``payload`` as a JSON artifact of the active run."""
    import mlflow

    mlflow.log_text(json.dumps(payload, indent=2, default=str), name)


def log_figures(figures: Mapping[str, Any]) -> None:
    """Log matplotlib figures as PNG artifacts of the active run (under ``plots/``) and close them."""
    import matplotlib.pyplot as plt
    import mlflow

    for name, figure in figures.items():
        mlflow.log_figure(figure, f"plots/{name}")
        plt.close(figure)
