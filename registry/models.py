"""Registered models: log and register a RiskModel, tag versions, move aliases, load one back.

A model is logged as an MLflow pyfunc "from code" (:mod:`cnslrisk.registry.pyfunc`): its parameters
travel as plain artifact files, nothing is pickled.
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
    "log_risk_model",
    "runtime_requirements",
    "tag_version",
    "set_version_tags",
    "version_tags",
    "set_alias",
    "alias_version",
    "record_evaluation",
    "load_risk_model",
    "model_card",
]

_VALIDATED_ON = "validated_on."
_RUNTIME_PACKAGES = ("numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "scikit-survival", "joblib", "mlflow")


@dataclass(frozen=True)
class ModelRef:
    """Where a registered model version lives."""

    name: str
    version: str
    model_uri: str
    run_id: str | None = None
    alias: str | None = None


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

    # the pyfunc is logged as code by path (models from code): MLflow runs the file, nothing is pickled
    entry = Path(str(resources.files("cnslrisk.registry").joinpath("pyfunc_entry.py")))
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
    """Record on the model version what the promotion gate and a registry browser need.

    The gate's figures are the chosen model's out-of-fold ones (``validation.cv_*``), the same
    definitions for every model type; the bootstrap-corrected ones are added for Cox-type models.
    """
    cv = card["validation"]["cv"]
    tags = {
        "validation.cv_c_index": cv["c_index"]["mean"],
        "validation.cv_ibs": cv["ibs"]["mean"],
        "validation.cv_calibration_slope": cv["calibration_slope"]["mean"],
        "selection.beats_null": str(bool(card["selection"]["beats_null"])).lower(),
        "selection.champion_eligible": str(bool(card["selection"]["champion_eligible"])).lower(),
        "training_data.source": card["training_data"]["source"],
        "training_data.sha256": card["training_data"]["sha256"],
        "model.type": card["model"]["type"],
        "intended_use": card["intended_use"],
    }
    corrected = (card["validation"].get("bootstrap") or {}).get("corrected")
    if corrected:
        tags["validation.corrected_c_index"] = corrected["c_index"]
        tags["validation.corrected_calibration_slope"] = corrected["calibration_slope"]
    set_version_tags(ref.name, ref.version, tags)


def set_version_tags(name: str, model_version: str, tags: Mapping[str, Any]) -> None:
    """Set tags (values as text) on version ``model_version`` of the registered model ``name``."""
    from mlflow import MlflowClient

    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, model_version, key, str(value))


def version_tags(name: str, model_version: str) -> dict[str, str]:
    """The tags of a model version.

    Raises
    ------
    ValueError
        When the registry has no such version.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return dict(MlflowClient().get_model_version(name, model_version).tags)
    except MlflowException as exc:
        raise ValueError(f"registered model {name} version {model_version}: not found "
                         f"({exc.message.splitlines()[0]})") from None


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


def record_evaluation(name: str, model_version: str, entry: Mapping[str, Any]) -> None:
    """Append an external evaluation to the version's history (tag ``validated_on.<k>``; artifacts are immutable)."""
    existing = [k for k in version_tags(name, model_version) if k.startswith(_VALIDATED_ON)]
    set_version_tags(name, model_version, {f"{_VALIDATED_ON}{len(existing) + 1}": json.dumps(dict(entry))})


def _validation_history(name: str, model_version: str) -> list[dict[str, Any]]:
    try:
        tags = version_tags(name, model_version)
    except ValueError:  # loaded from a path, away from the registry that named it
        return []
    history = sorted((int(k[len(_VALIDATED_ON):]), v) for k, v in tags.items() if k.startswith(_VALIDATED_ON))
    return [json.loads(v) for _, v in history]


def model_card(model: RiskModel) -> dict[str, Any]:
    """The model's card with the registry name, version and alias it was loaded under.

    For a registered version, ``validation_history`` lists the external evaluations recorded on
    it (:func:`record_evaluation`).
    """
    card = dict(model.metadata.get("card", {}))
    card["model"] = {**card.get("model", {}), **model.metadata.get("model", {})}
    name, model_version = card["model"].get("name"), card["model"].get("version")
    if name and model_version:
        card["validation_history"] = _validation_history(name, model_version)
    return card


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

    if "@" in reference:
        name, alias = reference.split("@", 1)
        return {"name": name, "alias": alias, "version": str(MlflowClient().get_model_version_by_alias(name, alias)
                                                             .version)}
    name, _, model_version = reference.partition("/")
    aliases = MlflowClient().get_model_version(name, model_version).aliases
    return {"name": name, "version": model_version, "alias": aliases[0] if aliases else None}
