"""External validation of a registered model on a cohort it has never seen.

:func:`evaluate_model` computes, without touching MLflow: Harrell's and Uno's C and the
time-dependent AUC with bootstrap 95 % CIs; per horizon the calibration-in-the-large (observed
Kaplan-Meier survival minus mean predicted survival, with the Kaplan-Meier log-log CI), the
calibration slope, the Brier score and the grouped calibration table; the integrated Brier score;
the decision curve; the relapse-pattern model per cause; the case mix; and optionally the same
point figures per period with flags. :func:`evaluate` loads the model and cohort, runs it, logs an
evaluation run linked to the model version and appends a ``validated_on.<k>`` tag to that version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import cnslrisk.registry as registry
from cnslrisk.model.outputs import json_safe
from cnslrisk.model.predictor import RiskModel

from .config import FeaturesConfig, TrainingConfig, load_config
from .data import TrainingData, load_training_data
from .decision_curve import DEFAULT_THRESHOLDS, decision_curve
from .metrics import horizon_label, score_predictions, slope_with_se
from .monitor import case_mix, period_labels, period_table
from .performance import pattern_figures, point_figures

# point_figures and slope_with_se live in .performance and .metrics; named here as they were before
__all__ = ["EvaluationResult", "cohort_config", "load_cohort", "slope_with_se", "point_figures", "evaluate_model",
           "evaluation_figures", "write_outputs", "evaluate"]


@dataclass(frozen=True)
class EvaluationResult:
    """What an evaluation produced: JSON-safe figures and aggregate tables (never a patient row).

    Attributes
    ----------
    summary : dict
        The ``--json`` figures (keys documented in docs/interface.md).
    calibration : DataFrame
        :func:`~cnslrisk.training.calibration.calibration_table` of the cohort.
    decision_curve : DataFrame
        :func:`~cnslrisk.training.decision_curve.decision_curve` of the cohort.
    case_mix : DataFrame
        :func:`~cnslrisk.training.monitor.case_mix` of the cohort.
    periods : DataFrame or None
        Point figures per period with a ``flag`` column, when periods were given.
    """

    summary: dict[str, Any]
    calibration: pd.DataFrame
    decision_curve: pd.DataFrame
    case_mix: pd.DataFrame
    periods: pd.DataFrame | None = None
    time_unit: str = "months"


def cohort_config(model: RiskModel, cohort: str | os.PathLike[str], config: TrainingConfig | None = None
                  ) -> TrainingConfig:
    """The config that reads ``cohort`` for ``model``: outcome columns from ``config``, covariates from the model.

    The config maps the outcome and id column names (``[data]``); the covariates are those the model
    was trained on, by their canonical names.
    """
    config = config if config is not None else load_config()
    f = model.features
    features = FeaturesConfig(binary=tuple(f["binary"]), categorical=tuple(f["categorical"]),
                              numeric=tuple(f["numeric"]))
    return replace(config, data=replace(config.data, path=Path(cohort)), features=features)


def load_cohort(model: RiskModel, cohort: str | os.PathLike[str], config: TrainingConfig | None = None
                ) -> TrainingData:
    """Read and validate a cohort for ``model`` (see :func:`cohort_config`); raises CohortValidationError."""
    return load_training_data(cohort_config(model, cohort, config), contract=model.contract)


def _bootstrap(y: np.ndarray, risk: np.ndarray, survival: np.ndarray, times: np.ndarray, horizons: Sequence[float],
               resamples: int, seed: int) -> dict[str, list[float]]:
    """Percentile 95 % CIs of Harrell's C, Uno's C and AUC(h) over resamples of the cohort's rows."""
    rng = np.random.default_rng(seed)
    names = ["c_index", "uno_c", *[f"auc_{horizon_label(h)}" for h in horizons]]
    draws: dict[str, list[float]] = {n: [] for n in names}
    n = y.shape[0]
    for _ in range(resamples):
        idx = rng.integers(0, n, n)
        metrics = score_predictions(y[idx], y[idx], risk[idx], survival[idx], times, horizons)["metrics"]
        for name in names:
            draws[name].append(metrics[name])
    out = {}
    for name, values in draws.items():
        v = np.asarray(values, dtype=float)
        v = v[np.isfinite(v)]
        out[name] = list(np.percentile(v, [2.5, 97.5])) if v.size >= 10 else [np.nan, np.nan]
    return out


def evaluate_model(
    model: RiskModel,
    data: TrainingData,
    *,
    censored: str = "none",
    bootstrap: int = 200,
    seed: int = 0,
    groups: int = 4,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    periods: np.ndarray | None = None,
    citl_band: float = 0.1,
    slope_band: tuple[float, float] = (0.7, 1.3),
) -> EvaluationResult:
    """Evaluate a fitted model on a validated cohort, without MLflow.

    The figures are defined in :func:`~cnslrisk.training.performance.point_figures`; here they get
    bootstrap CIs, the decision curve, the pattern model's figures, the case mix and the periods.

    Parameters
    ----------
    model : RiskModel
    data : TrainingData
        The cohort (:func:`load_cohort`).
    censored : str, default: "none"
        The censored value of the cause column (pattern model).
    bootstrap : int, default: 200
        Resamples for the percentile CIs of the discrimination figures (0: none).
    seed : int, default: 0
    groups : int, default: 4
        Risk groups of the calibration table.
    thresholds : sequence of float, optional
        Threshold risks of the decision curve.
    periods : ndarray of str, optional
        A period label per row: adds the point figures per period, flagged by ``citl_band`` and
        ``slope_band`` (:func:`~cnslrisk.training.monitor.flag_periods`).

    Returns
    -------
    EvaluationResult

    References
    ----------
    .. [1] Royston P, Altman DG. External validation of a Cox prognostic model: principles and methods.
           BMC Med Res Methodol 2013;13:33.
    .. [2] Steyerberg EW. Clinical Prediction Models, 2nd ed. Springer 2019, chapters 15 and 19.
    """
    point = point_figures(model, data.X, data.y, groups=groups)
    summary = point["summary"]
    horizons = tuple(float(h) for h in model.horizons)
    if bootstrap:
        cis = _bootstrap(data.y, point["risk"], point["grid_survival"], point["times"], horizons, bootstrap, seed)
        summary["c_index_ci"], summary["uno_c_ci"] = cis["c_index"], cis["uno_c"]
        for label in summary["horizons"]:
            summary["horizons"][label]["auc_ci"] = cis[f"auc_{label}"]
    summary["bootstrap"] = {"resamples": bootstrap, "seed": seed, "method": "percentile, rows resampled"}
    summary["pattern"] = pattern_figures(model, data, censored)
    curve = decision_curve(data.y, 1.0 - point["survival"], horizons, thresholds)
    mix = case_mix(model, data.X)
    table = None
    if periods is not None:
        table = period_table(model, data.X, data.y, periods, groups=groups, citl_band=citl_band, slope_band=slope_band)
        summary["periods"] = table.to_dict(orient="records")
    summary["cohort"] = {k: data.provenance.get(k) for k in ("source", "sha256", "n", "events", "follow_up_max",
                                                             "time_unit")}
    summary["model"] = {"type": model.kind, **model.metadata.get("model", {})}
    return EvaluationResult(json_safe(summary), point["calibration"], curve, mix, table, model.time_unit)


def evaluation_figures(result: EvaluationResult) -> dict[str, Any]:
    """The evaluation's plots: grouped calibration and decision curves (matplotlib figures)."""
    from .decision_curve import plot_decision_curve
    from .plots import plot_calibration

    return {"calibration.png": plot_calibration(result.calibration, time_unit=result.time_unit),
            "decision_curve.png": plot_decision_curve(result.decision_curve, time_unit=result.time_unit)}


def write_outputs(result: EvaluationResult, out: str | os.PathLike[str]) -> Path:
    """Write summary.json, the aggregate tables (CSV) and the plots (PNG) to ``out`` (created)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2))
    tables = {"calibration": result.calibration, "decision_curve": result.decision_curve, "case_mix": result.case_mix,
              "periods": result.periods}
    for name, table in tables.items():
        if table is not None:
            table.to_csv(out / f"{name}.csv", index=False)
    for name, figure in evaluation_figures(result).items():
        figure.savefig(out / name)
    return out


def _metrics(summary: dict[str, Any]) -> dict[str, float]:
    flat = {k: summary[k] for k in ("c_index", "uno_c", "ibs", "calibration_slope")}
    for label, v in summary["horizons"].items():
        for key in ("calibration_in_the_large", "calibration_slope", "brier", "auc"):
            flat[f"{key}_{label}"] = v[key]
    return {k: float(v) for k, v in flat.items() if v is not None}


def _record(result: EvaluationResult, info: dict[str, Any]) -> str:
    """Log the evaluation run (aggregates only) and append it to the model version's validation history."""
    s, name, version = result.summary, info.get("name"), info.get("version")
    tags = {"cnslrisk.evaluation": "external", "cnslrisk.cohort.sha256": s["cohort"]["sha256"],
            "cnslrisk.cohort.source": s["cohort"]["source"], "cnslrisk.model_uri": info["model_uri"]}
    if name:
        tags.update({"cnslrisk.model.name": name, "cnslrisk.model.version": str(version)})
    with registry.start_run(f"evaluate {name or 'model'} v{version or '?'}", tags=tags) as run:
        run.log_params({"cohort.n": s["cohort"]["n"], "cohort.events": s["cohort"]["events"],
                        "bootstrap": s["bootstrap"]["resamples"]})
        run.log_metrics(_metrics(s))
        run.log_json("evaluation.json", s)
        for table in ("calibration", "decision_curve", "case_mix", "periods"):
            frame = getattr(result, table)
            if frame is not None:
                run.log_table(f"{table}.csv", frame)
        run.log_figures(evaluation_figures(result))
    if name and version:
        registry.record_evaluation(name, version, {
            "date": datetime.now(UTC).strftime("%Y-%m-%d"), "run_id": run.run_id, **s["cohort"],
            "c_index": s["c_index"], "calibration_slope": s["calibration_slope"],
            "calibration_in_the_large": {h: v["calibration_in_the_large"] for h, v in s["horizons"].items()}})
    return run.run_id


def evaluate(
    model_uri: str,
    cohort: str | os.PathLike[str],
    *,
    config: TrainingConfig | str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    bootstrap: int = 200,
    period_column: str | None = None,
    citl_band: float = 0.1,
    log: bool = True,
) -> EvaluationResult:
    """Evaluate a registered model on a cohort, log an evaluation run and record it on the model version.

    Parameters
    ----------
    model_uri : str
        Any MLflow model URI of a cnslrisk model.
    cohort : path-like
        CSV or Parquet with the model's covariates and the outcome columns the config names.
    config : TrainingConfig or path, optional
        Maps column names (``[data]``) and gives the tracking store, seed and the slope band
        (``[promotion]``); default the bundled config.
    out : path-like, optional
        Folder for summary.json, tables and plots.
    bootstrap : int, default: 200
    period_column : str, optional
        A year or date column of the cohort file: adds the figures per year, flagged outside the bands.
    citl_band : float, default: 0.1
        Largest acceptable |calibration-in-the-large| of a period.
    log : bool, default: True
        Whether to log the MLflow run and the ``validated_on.<k>`` version tag.

    Returns
    -------
    EvaluationResult
        ``summary["run_id"]`` names the evaluation run when logged.
    """
    from cnslrisk.model import read_cohort

    config = config if isinstance(config, TrainingConfig) else load_config(config)
    registry.use_tracking(config.mlflow.tracking_uri, config.mlflow.experiment)
    model, info = registry.load_risk_model(model_uri)
    data = load_cohort(model, cohort, config)
    periods = None
    if period_column is not None:
        raw = read_cohort(cohort)
        if period_column not in raw:
            raise ValueError(f"cohort {cohort}: period column {period_column} is not in the file")
        periods = period_labels(raw[period_column].reset_index(drop=True))
    gate = config.promotion
    result = evaluate_model(model, data, censored=config.data.censored, bootstrap=bootstrap, seed=config.seed,
                            groups=config.validation.calibration_groups, periods=periods, citl_band=citl_band,
                            slope_band=(gate.slope_lower, gate.slope_upper))
    if log:
        result.summary["run_id"] = _record(result, info)
    if out is not None:
        write_outputs(result, out)
    return result
