"""``train``: from a config to a registered, validated, documented model version."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import cnslrisk.registry as registry
from cnslrisk.model.outputs import horizon_label
from cnslrisk.model.predictor import RiskModel

from .card import build_card, card_files
from .comparison import Comparison
from .comparison_figures import plot_paired_differences
from .compute import use_compute
from .config import MODEL_KINDS, TrainingConfig, check_for_training, load_config
from .data import TrainingData, load_training_data
from .fit import (
    Candidate,
    compare_candidates,
    comparison_factories,
    fit_band,
    fit_candidate,
    fit_pattern,
    risk_cutpoints,
    sample_size_section,
    training_km,
)
from .nested import nested_selection, oof_slope
from .pattern_card import pattern_section
from .rescale import rescale_cox
from .selection import select

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

    Binary covariates are false, categorical ones (and the best response of a post-response model)
    take the reference level and numeric ones the middle of the encoder's training range, rounded.
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
    if model.landmark is not None:
        row[model.landmark.response] = model.landmark.levels[0]
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


def _run_metrics(candidates: Mapping[str, Candidate], comparison: Comparison) -> dict[str, float]:
    """Every kind's out-of-fold figures, the Cox-type bootstrap figures and the stage times, as flat metrics."""
    metrics: dict[str, float] = {}
    for kind in comparison.kinds:
        for name, figure in comparison.table(kind).items():
            metrics.update({f"{kind}.cv.{name}.{key}": value for key, value in figure.items()})
    for candidate in candidates.values():
        if candidate.optimism is not None:
            for stage in ("apparent", "optimism", "corrected"):
                for name, value in getattr(candidate.optimism, stage).items():
                    metrics[f"{candidate.kind}.{stage}.{name}"] = float(value)
        for stage, seconds in candidate.seconds.items():
            metrics[f"{candidate.kind}.seconds.{stage}"] = seconds
    return {k: float(v) for k, v in metrics.items() if np.isfinite(v)}


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
        contract=data.contract,
    )


def _recalibrate(model: RiskModel, kind: str, comparison: Comparison, data: TrainingData) -> dict[str, Any]:
    """Rescale the chosen Cox model by its out-of-fold calibration slope (``selection.recalibrate``); card section."""
    slope, reason = oof_slope(comparison, kind)
    section: dict[str, Any] = {
        "slope": slope,
        "source": "the chosen model's out-of-fold calibration slope in the comparison (each repeat's pooled held-out "
                  "predictions, centred within folds, at the reference time; mean over repeats)",
        "method": "coefficients x slope, Breslow baseline re-estimated on the training cohort with slope x lp as "
                  "offset (van Houwelingen 2000)",
        "validation": "selection.nested: the outer loop with the recalibration inside each fold, beside the same "
                      "models without it; validation.cv, the selection and the promotion gate judge the model "
                      "before recalibration",
        "applied": reason is None,
    }
    if reason is not None:
        section["reason"] = reason
        return section
    model.pipeline = rescale_cox(model.pipeline, data.X, data.y, slope)
    model.time_grid = np.asarray(model.pipeline[-1].unique_times_, dtype=float)
    model.risk_cutpoints = risk_cutpoints(model.pipeline.predict(data.X))
    names = model.pipeline[:-1].get_feature_names_out()
    section["coefficients"] = {str(name): float(c) for name, c in zip(names, model.pipeline[-1].coef_, strict=True)}
    return section


def _band_check(model: RiskModel, data: TrainingData) -> dict[str, Any]:
    """How many training patients' jackknife bands fall back on the uncorrected variance (too few trees)."""
    summary = model.pipeline[-1].predict_summary(model.encode(data.X), model.horizons, level=0.95,
                                                 check_input=False)
    flagged = summary["conservative"]
    share = float(flagged.any(axis=1).mean())
    return {
        "conservative_share": share,
        "conservative_share_at": {horizon_label(h): float(flagged[:, j].mean())
                                  for j, h in enumerate(model.horizons)},
        "what": "share of the training patients whose 95 % band at some horizon uses the uncorrected "
                "infinitesimal-jackknife variance (wider) because the forest has too few trees for the bias "
                "correction there; their predictions carry a warning",
        "advice": (f"{share:.0%} of the training patients get the wider, uncorrected jackknife band at some horizon: "
                   "the forest has too few trees for the bias correction (about 15 x n trees were needed at "
                   "n = 60 and 600; BENCHMARKS.md); raise models.rsf_trees, or use validation.forest_band = "
                   "\"refits\"") if share > 0 else "none: every training patient's band is bias-corrected",
    }


def _calibration(kind: str, comparison: Comparison, config: TrainingConfig, data: TrainingData
                 ) -> tuple[dict[str, Any], Any]:
    """Calibration at each horizon of the chosen kind's out-of-fold predictions (first repeat) and its table."""
    from .calibration import calibration_table

    v = config.validation
    table = calibration_table(data.y, comparison.first_repeat_at(kind, v.horizons), v.horizons,
                              groups=v.calibration_groups)
    section = {"method": f"out-of-fold predictions of the comparison's first repeat ({v.folds}-fold) vs "
                         "Kaplan-Meier by risk group",
               "table": table.to_dict(orient="records")}
    return section, table


def _figures(chosen: Candidate, calibration: Any, coefficients: Any, config: TrainingConfig,
             data: TrainingData) -> dict[str, Any]:
    """The run's plots: calibration, Kaplan-Meier by pCE and LMD (when binary covariates), HR forest plot."""
    from .plots import plot_calibration, plot_forest, plot_km_by

    figures = {"calibration.png": plot_calibration(calibration, time_unit=config.data.time_unit)}
    for name in ("pce", "lmd"):
        if name in config.features.binary:
            figures[f"km_by_{name}.png"] = plot_km_by(data.y, data.X[name].to_numpy(dtype=bool), name,
                                                      time_unit=config.data.time_unit)
    if coefficients is not None:
        table = coefficients.rename(columns={"exp(coef)": "hr", "exp(coef) lower 95%": "ci_lower",
                                             "exp(coef) upper 95%": "ci_upper"})
        figures["hazard_ratios.png"] = plot_forest(table)
    return figures


def _extras(chosen: Candidate, data: TrainingData) -> dict[str, Any]:
    from cnslrisk.model.diagnostics import proportional_hazards_test

    from .fit import coefficient_table

    table = coefficient_table(chosen)
    extras: dict[str, Any] = {"coefficient_table": table}
    if table is not None:
        ph = proportional_hazards_test(chosen.pipeline, data.X, data.y)
        extras["proportional_hazards"] = {str(k): {c: float(v) for c, v in row.items()} for k, row in ph.iterrows()}
    return extras


def _artifact_bytes(candidate: Candidate, config: TrainingConfig, data: TrainingData) -> int:
    """Size on disk of a candidate's stored form (what the registry would hold for it)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        _risk_model(candidate, config, data).save(tmp)
        return sum(f.stat().st_size for f in Path(tmp).rglob("*") if f.is_file())


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
    if isinstance(config, TrainingConfig):
        check_for_training(config)
    else:
        config = load_config(config, overrides, training=True)
    data = load_training_data(config)
    with use_compute(config.compute, config.n_jobs):  # where the refits run: local processes or a Dask cluster
        return _train(config, data, progress)


class _Stopwatch:
    """Seconds of each stage of a run (``run.seconds.<stage>`` in its metrics, beside ``<kind>.seconds.*``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        key = f"run.seconds.{stage}"
        self.seconds[key] = self.seconds.get(key, 0.0) + now - self._last
        self._last = now


def _train(config: TrainingConfig, data: TrainingData, progress: Callable[[str, int], None] | None) -> TrainResult:
    """Compare, fit, validate, document, log and register, once the config and the cohort are checked."""
    watch = _Stopwatch()
    kinds = [kind for kind in MODEL_KINDS if kind in config.models.fit]  # simplest first
    comparison = compare_candidates(kinds, config, data, progress=progress)
    gate = config.promotion
    select_options = {"rule": config.selection.rule, "margin": config.selection.margin,
                      "slope_band": (gate.slope_lower, gate.slope_upper)}
    selection = select(comparison, kinds, **select_options)
    watch.lap("comparison")
    nested = None
    if config.selection.nested or config.selection.recalibrate:  # a recalibration is validated in the outer loop
        v = config.validation
        nested = nested_selection(comparison_factories(kinds, config), kinds, data.X, data.y, horizons=v.horizons,
                                  folds=v.folds, repeats=v.repeats, seed=config.seed, select_options=select_options,
                                  recalibrate=config.selection.recalibrate, n_jobs=config.n_jobs,
                                  progress=None if progress is None else partial(progress, "nested selection"))
        watch.lap("nested_selection")
    candidates = {kind: fit_candidate(kind, config, data, progress=progress) for kind in kinds}
    chosen = candidates[selection.chosen]
    model = _risk_model(chosen, config, data)
    recalibration = _recalibrate(model, chosen.kind, comparison, data) if config.selection.recalibrate else None
    watch.lap("fit_and_bootstrap")
    if chosen.kind != "cox":  # the unpenalised Cox model has the delta method; the others need refits
        model.band = fit_band(chosen.kind, config, data)
        watch.lap("band")
    pattern_validation = None
    if data.cause is not None:
        model.pattern_split = config.pattern.incidence == "split"
        model.pattern, pattern_validation = fit_pattern(config, data, progress=progress,
                                                        survival_kind=chosen.kind if model.pattern_split else None)
        watch.lap("pattern")
    calibration, calibration_table = _calibration(chosen.kind, comparison, config, data)
    watch.lap("calibration")
    extras = _extras(chosen, data)
    if pattern_validation is not None:
        extras["pattern_validation"] = pattern_validation
        extras["pattern_model"] = pattern_section(model.pipeline, model.pattern, data.X, config.validation.horizons,
                                                  config.pattern_features, split=model.pattern_split)
    sample_size = sample_size_section(chosen, config, data, cox=candidates.get("cox"))
    watch.lap("diagnostics")
    if config.landmark.time is not None:
        from .landmark import fit_landmark

        model.landmark, extras["post_response"] = fit_landmark(config, data, progress=progress)
        watch.lap("landmark")
    card = build_card(chosen, candidates, comparison, selection, config, data, model, sample_size=sample_size,
                      calibration=calibration, extras=extras)
    if nested is not None:
        card["selection"]["nested"] = nested
    if recalibration is not None:
        card["selection"]["recalibration"] = recalibration
    if model.band is None and hasattr(model.pipeline[-1], "predict_summary"):  # a forest's jackknife band
        card["model"]["band_check"] = _band_check(model, data)
        if card["model"]["band_check"]["conservative_share"] > 0:
            card["limitations"].append(card["model"]["band_check"]["advice"])
    for kind, candidate in candidates.items():
        card["candidates"][kind]["artifact_bytes"] = _artifact_bytes(candidate, config, data)
    watch.lap("card")
    figures = _figures(chosen, calibration_table, extras["coefficient_table"], config, data)
    figures["paired_differences.png"] = plot_paired_differences(selection.paired)
    watch.lap("plots")
    groups = model.risk_group(model.pipeline.predict(data.X))
    card["risk_groups"] = {"cutpoints": list(model.risk_cutpoints),
                           "definition": "tertiles of the training risk scores",
                           "training_shares": {g: float(np.mean(groups == g)) for g in ("low", "intermediate", "high")}}
    model.metadata["card"] = card
    watch.lap("card")

    registry.use_tracking(config.mlflow.tracking_uri, config.mlflow.experiment)
    tags = {"cnslrisk.source": data.provenance["source"], "cnslrisk.sha256": data.provenance["sha256"],
            "cnslrisk.chosen_model": chosen.kind, **_environment()}
    with registry.start_run(tags=tags) as run:
        run.log_params({k: v for k, v in _flatten("", config.to_dict()).items() if k != "source"})
        run.log_params({"cohort.n": data.n, "cohort.events": data.events})
        metrics = {**_run_metrics(candidates, comparison), **watch.seconds}
        run.log_metrics(metrics)
        run.log_table("comparison.csv", comparison.to_frame())
        run.log_json("config.json", config.to_dict())
        run.log_figures(figures)
        ref = registry.log_risk_model(model, registered_name=config.mlflow.registered_model,
                                      input_example=synthetic_example(model), extra_files=card_files(card))
        card["model"].update(name=ref.name, version=ref.version)
        run.log_json("model_card.json", card)
        registry.tag_version(ref, card)
        aliases = [registry.CHALLENGER]
        registry.set_alias(ref.name, registry.CHALLENGER, ref.version)
        # a first version becomes champion only when it beats the null model and is calibrated
        if selection.champion_eligible and registry.alias_version(ref.name, registry.CHAMPION) is None:
            registry.set_alias(ref.name, registry.CHAMPION, ref.version)
            aliases.append(registry.CHAMPION)
        watch.lap("registry")
        run.log_metrics({"run.seconds.registry": watch.seconds["run.seconds.registry"]})
        metrics["run.seconds.registry"] = watch.seconds["run.seconds.registry"]
    return TrainResult(run_id=run.run_id, name=ref.name, version=ref.version, model_type=chosen.kind,
                       metrics=metrics, aliases=tuple(aliases), card=card)
