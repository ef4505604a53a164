"""``train``: from a config to a registered, validated, documented model version."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.predictor import RiskModel

from . import registry
from .card import build_card, card_files
from .config import TrainingConfig, load_config
from .data import TrainingData, load_training_data
from .fit import Candidate, choose, fit_candidate, risk_cutpoints, training_km

__all__ = ["TrainResult", "train", "synthetic_example"]


@dataclass(frozen=True)
class TrainResult:
    """What a training run produced."""

    run_id: str
    name: str
    version: str
    model_type: str
    metrics: dict[str, float]
    aliases: tuple[str, ...] = ()
    card: dict[str, Any] = field(default_factory=dict)


def synthetic_example(model: RiskModel) -> pd.DataFrame:
    """One made-up patient for MLflow's input example: no value is taken from any patient row.

    Binary covariates are false, categorical ones take the reference level and numeric ones the
    middle of the encoder's training range, rounded.
    """
    encoder = model.pipeline.named_steps["encode"]
    row: dict[str, Any] = {}
    id_column = model.features.get("id")
    if id_column:
        row[id_column] = "EXAMPLE-001"
    for name in model.features["binary"]:
        row[name] = False
    for name in model.features["categorical"]:
        row[name] = encoder.levels_[name][0]
    for name in model.features["numeric"]:
        row[name] = float(round((encoder.low_[name] + encoder.high_[name]) / 2))
    return pd.DataFrame([row])


def _git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _environment() -> dict[str, str]:
    packages = ("cnslrisk", "numpy", "pandas", "scikit-learn", "scikit-survival", "mlflow")
    env = {f"version.{p}": package_version(p) for p in packages}
    env.update({"version.python": platform.python_version(), "git_revision": _git_revision()})
    return env


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, inner in value.items():
            out.update(_flatten(f"{prefix}.{key}" if prefix else str(key), inner))
        return out
    return {prefix: value}


def _candidate_metrics(candidate: Candidate) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for stage in ("apparent", "optimism", "corrected"):
        for name, value in getattr(candidate.optimism, stage).items():
            metrics[f"{candidate.kind}.{stage}.{name}"] = float(value)
    for name, stats in candidate.cv.to_dict().items():
        metrics[f"{candidate.kind}.cv.{name}.mean"] = float(stats["mean"])
        metrics[f"{candidate.kind}.cv.{name}.sd"] = float(stats["sd"])
    for stage, seconds in candidate.seconds.items():
        metrics[f"{candidate.kind}.seconds.{stage}"] = seconds
    return {k: v for k, v in metrics.items() if np.isfinite(v)}


def _risk_model(candidate: Candidate, config: TrainingConfig, data: TrainingData) -> RiskModel:
    f = config.features
    estimator = candidate.pipeline.named_steps["model"]
    grid = getattr(estimator, "unique_times_", None)
    if grid is None:
        grid = np.unique(data.y["time"][data.y["event"]])
    return RiskModel(
        kind=candidate.kind,
        pipeline=candidate.pipeline,
        features={"binary": list(f.binary), "categorical": list(f.categorical), "numeric": list(f.numeric),
                  "id": config.data.id},
        horizons=config.validation.horizons,
        time_unit=config.data.time_unit,
        time_grid=np.asarray(grid, dtype=float),
        risk_cutpoints=risk_cutpoints(candidate.pipeline.predict(data.X)),
        training_km=training_km(data.y),
    )


def _sample_size(chosen: Candidate, data: TrainingData) -> dict[str, Any]:
    from cnslrisk.model.pipeline import n_parameters

    p = n_parameters(chosen.pipeline)
    return {"events_per_parameter": data.events / p, "candidate_parameters": p, "riley_minimum_n": None,
            "adequate": False, "warning": "not yet computed"}


def _extras(chosen: Candidate, data: TrainingData) -> dict[str, Any]:
    from cnslrisk.model.diagnostics import proportional_hazards_test

    from .fit import coefficient_table

    table = coefficient_table(chosen)
    extras: dict[str, Any] = {"coefficient_table": table}
    if table is not None:
        ph = proportional_hazards_test(chosen.pipeline, data.X, data.y)
        extras["proportional_hazards"] = {str(k): {c: float(v) for c, v in row.items()} for k, row in ph.iterrows()}
    return extras


def train(
    config: TrainingConfig | str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Any] | Sequence[tuple[str, Any]] = (),
    progress: Callable[[str, int], None] | None = None,
) -> TrainResult:
    """Fit, validate, log and register a model from a training config.

    Parameters
    ----------
    config : TrainingConfig or path, optional
        Default: the bundled config on the bundled synthetic example cohort.
    overrides : mapping of dotted key to value, optional
        Applied to the config before validation (``{"validation.repeats": 2}``).
    progress : callable, optional
        ``progress(stage, advance)`` for a progress display.

    Returns
    -------
    TrainResult
        Run id, registered name and version, the chosen model type and the logged metrics.

    Raises
    ------
    ConfigError, CohortValidationError
        Before any MLflow run is created.
    """
    import mlflow

    if not isinstance(config, TrainingConfig):
        config = load_config(config, overrides)
    data = load_training_data(config)
    candidates = {kind: fit_candidate(kind, config, data, progress=progress) for kind in config.models.fit}
    chosen = choose(candidates)
    model = _risk_model(chosen, config, data)
    card = build_card(chosen, candidates, config, data, model, sample_size=_sample_size(chosen, data),
                      calibration={}, extras=_extras(chosen, data))
    model.metadata.update(card=card, training_data=card["training_data"],
                          validation_summary=card["validation"]["bootstrap"]["corrected"])

    registry.use_tracking(config.tracking_uri(), config.mlflow.experiment)
    with mlflow.start_run() as run:
        mlflow.set_tags({"cnslrisk.source": data.provenance["source"], "cnslrisk.sha256": data.provenance["sha256"],
                         "cnslrisk.chosen_model": chosen.kind, **_environment()})
        mlflow.log_params({k: str(v) for k, v in _flatten("", config.to_dict()).items() if k != "source"})
        mlflow.log_params({"cohort.n": data.n, "cohort.events": data.events})
        metrics: dict[str, float] = {}
        for candidate in candidates.values():
            metrics.update(_candidate_metrics(candidate))
        mlflow.log_metrics(metrics)
        registry.log_json("config.json", config.to_dict())
        ref = registry.log_risk_model(model, registered_name=config.mlflow.registered_model,
                                      input_example=synthetic_example(model), extra_files=card_files(card))
        card["model"].update(name=ref.name, version=ref.version)
        registry.log_json("model_card.json", card)
        registry.tag_version(ref, card)
        aliases = [registry.CHALLENGER]
        registry.set_alias(ref.name, registry.CHALLENGER, ref.version)
        if registry.alias_version(ref.name, registry.CHAMPION) is None:
            registry.set_alias(ref.name, registry.CHAMPION, ref.version)
            aliases.append(registry.CHAMPION)
    return TrainResult(run_id=run.info.run_id, name=ref.name, version=ref.version, model_type=chosen.kind,
                       metrics=metrics, aliases=tuple(aliases), card=card)
