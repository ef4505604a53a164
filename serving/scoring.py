"""Load a registered model once, then score one patient or a DataFrame of patients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cnslrisk.model.predictor import ARTIFACT_KEY, RiskModel

__all__ = ["DEFAULT_REGISTERED_MODEL", "DEFAULT_TRACKING_URI", "use_tracking", "resolve_model_uri", "load_risk_model",
           "model_card"]

# the same defaults as the training config's [mlflow] table (shared/interface.md)
DEFAULT_REGISTERED_MODEL = "cnslrisk-pfs1"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def use_tracking(tracking_uri: str | None = None) -> str:
    """Point MLflow at ``tracking_uri``, else ``MLFLOW_TRACKING_URI``, else the local SQLite default."""
    import os

    import mlflow

    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(uri)
    return uri


def model_card(model: RiskModel) -> dict[str, Any]:
    """The model's card with the registry name, version and alias it was loaded under."""
    card = dict(model.metadata.get("card", {}))
    card["model"] = {**card.get("model", {}), **model.metadata.get("model", {})}
    return card


def resolve_model_uri(model_uri: str | None, registered_name: str = DEFAULT_REGISTERED_MODEL) -> str:
    """Default to the registry's champion: ``models:/NAME@champion``."""
    return model_uri or f"models:/{registered_name}@champion"


def load_risk_model(model_uri: str) -> tuple[RiskModel, dict[str, Any]]:
    """Download a logged model (any MLflow model URI or a local path) and load its RiskModel.

    Returns
    -------
    model : RiskModel
    info : dict
        ``model_uri`` and, for registry URIs, ``name``, ``version`` and ``alias``.

    Raises
    ------
    ValueError
        When the URI does not resolve to a cnslrisk model (the message names the URI).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    info: dict[str, Any] = {"model_uri": model_uri}
    try:
        local = Path(model_uri) if Path(model_uri).exists() else Path(mlflow.artifacts.download_artifacts(model_uri))
    except MlflowException as exc:
        raise ValueError(f"model {model_uri}: cannot be found ({exc.message.splitlines()[0]})") from None
    directory = local / "artifacts" / ARTIFACT_KEY
    if not directory.is_dir():
        raise ValueError(f"model {model_uri}: not a cnslrisk model (no artifacts/{ARTIFACT_KEY} folder)")
    if model_uri.startswith("models:/"):
        info.update(_registry_info(model_uri[len("models:/"):]))
    model = RiskModel.load(directory)
    model.metadata.setdefault("model", {}).update({k: info[k] for k in ("name", "version", "alias") if k in info})
    return model, info


def _registry_info(reference: str) -> dict[str, Any]:
    from mlflow import MlflowClient

    client = MlflowClient()
    if "@" in reference:
        name, alias = reference.split("@", 1)
        return {"name": name, "alias": alias, "version": str(client.get_model_version_by_alias(name, alias).version)}
    name, _, model_version = reference.partition("/")
    aliases = client.get_model_version(name, model_version).aliases
    return {"name": name, "version": model_version, "alias": aliases[0] if aliases else None}
