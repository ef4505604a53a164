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
from scipy.stats import norm

import cnslrisk.registry as registry
from cnslrisk.model.estimators._breslow import RiskSets, partial_likelihood
from cnslrisk.model.outputs import json_safe
from cnslrisk.model.predictor import RiskModel

from .calibration import calibration_table
from .config import FeaturesConfig, TrainingConfig, load_config
from .crossval import survival_grid
from .data import TrainingData, load_training_data
from .decision_curve import DEFAULT_THRESHOLDS, decision_curve
from .metrics import calibration_slope, horizon_label, score_predictions
from .monitor import case_mix, period_labels, period_table
from .pattern_validation import aalen_johansen, wolbers_c

__all__ = ["EvaluationResult", "cohort_config", "load_cohort", "slope_with_se", "point_figures",
           "evaluate_model", "evaluation_figures", "write_outputs", "evaluate"]

_Z = float(norm.ppf(0.975))


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
    return load_training_data(cohort_config(model, cohort, config))


def slope_with_se(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Calibration slope (:func:`~cnslrisk.training.metrics.calibration_slope`) and its standard error.

    The standard error is 1 / sqrt(observed information) of the one-covariate Cox partial
    likelihood (Efron ties) at the estimate.

    Returns
    -------
    slope, se : float

    Raises
    ------
    ValueError
        When the score is not finite, all samples are censored or the fit does not converge.
    """
    x = np.asarray(score, dtype=float)[:, None]
    if not np.isfinite(x).all():
        raise ValueError("the score is not finite (a predicted survival of 0 or 1)")
    slope = calibration_slope(y, x[:, 0])
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    info = partial_likelihood(x - x.mean(), np.array([slope]), RiskSets.build(time, event)).information[0, 0]
    return slope, float(1.0 / np.sqrt(info))


def _censor_at(y: np.ndarray, h: float) -> np.ndarray:
    event, time = y.dtype.names
    out = y.copy()
    beyond = out[time] > h
    out[event][beyond], out[time][beyond] = False, h
    return out


def _try(fn: Any, reasons: dict[str, str], name: str) -> Any:
    try:
        return fn()
    except (ValueError, FloatingPointError) as exc:
        reasons[name] = str(exc)
        return (np.nan, np.nan)


def _slope_entry(y: np.ndarray, score: np.ndarray, reasons: dict[str, str], name: str) -> dict[str, Any]:
    slope, se = _try(lambda: slope_with_se(y, score), reasons, name)
    return {"calibration_slope": slope, "calibration_slope_se": se,
            "calibration_slope_ci": [slope - _Z * se, slope + _Z * se]}


def _reference_time(model: RiskModel, y: np.ndarray) -> float:
    """t_ref of a forest's slope: the card's bootstrap reference time when stored, else the median event time."""
    stored = model.metadata.get("card", {}).get("validation", {}).get("bootstrap", {}).get("reference_time")
    return float(stored) if stored is not None else float(np.median(y["time"][y["event"]]))


def point_figures(model: RiskModel, X: pd.DataFrame, y: np.ndarray, *, groups: int = 4) -> dict[str, Any]:
    """Point figures without resampling: C, slopes, calibration-in-the-large, Brier, AUC, IBS.

    Overall calibration slope: Cox regression of the outcome on the linear predictor (linear
    models) or on log(-log S(t_ref|x)) (forests; t_ref as in the training bootstrap: the card's
    ``reference_time`` when stored, else the cohort's median event time). Slope at horizon h: the same
    with follow-up censored at h, on log(-log S(h|x)) (for a Cox model equal to the slope on the
    linear predictor over [0, h]). Calibration-in-the-large at h: Kaplan-Meier S(h) minus mean
    predicted S(h) (negative: the model predicts too much survival), CI from the Kaplan-Meier log-log
    interval with the predictions held fixed; ``observed_expected`` is the ratio of observed to mean
    predicted risk (1 - S). The IPCW metrics use the cohort's own censoring distribution.

    Returns
    -------
    figures : dict
        ``summary`` (the JSON part), ``calibration`` (table), ``survival``, ``times``, ``risk``.
    """
    horizons = tuple(float(h) for h in model.horizons)
    covariates = X[model.feature_columns]
    times = survival_grid(horizons)
    risk = np.asarray(model.pipeline.predict(covariates), dtype=float)
    survival = np.asarray(model.pipeline.predict_survival(covariates, times), dtype=float)
    at_h = survival[:, [int(np.flatnonzero(times == h)[0]) for h in horizons]]
    scores = score_predictions(y, y, risk, survival, times, horizons)
    reasons = dict(scores["reasons"])
    linear = model.kind in ("cox", "coxnet")
    with np.errstate(divide="ignore", invalid="ignore"):
        loglog = np.log(-np.log(at_h))
        t_ref = _reference_time(model, y)
        overall_score = risk if linear else np.log(-np.log(model.pipeline.predict_survival(covariates, [t_ref])[:, 0]))
    table = calibration_table(y, at_h, horizons, groups=groups)
    summary: dict[str, Any] = {"c_index": scores["metrics"]["c_index"], "uno_c": scores["metrics"]["uno_c"],
                               "ibs": scores["metrics"]["ibs"],
                               **_slope_entry(y, overall_score, reasons, "calibration_slope"),
                               "calibration_slope_on": "linear predictor" if linear else f"log(-log S({t_ref:g}|x))",
                               "horizons": {}}
    for j, h in enumerate(horizons):
        label = horizon_label(h)
        row = table[(table["horizon"] == h) & (table["group"] == "all")].iloc[0]
        pred, obs = float(row["predicted"]), float(row["observed"])
        if row["reason"]:
            reasons[f"calibration_in_the_large_{label}"] = row["reason"]
        score = risk if linear else loglog[:, j]
        summary["horizons"][label] = {
            "calibration_in_the_large": obs - pred,
            "calibration_in_the_large_ci": [row["observed_lower"] - pred, row["observed_upper"] - pred],
            "observed": obs, "predicted": pred,
            "observed_expected": (1.0 - obs) / (1.0 - pred) if pred < 1 else np.nan,
            **_slope_entry(_censor_at(y, h), score, reasons, f"calibration_slope_{label}"),
            "brier": scores["metrics"][f"brier_{label}"], "auc": scores["metrics"][f"auc_{label}"],
        }
    summary["reasons"], summary["notes"] = reasons, [scores["note"]] if scores["note"] else []
    return {"summary": summary, "calibration": table, "survival": at_h, "times": times, "risk": risk,
            "grid_survival": survival}


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


def _pattern(model: RiskModel, data: TrainingData, censored: str) -> dict[str, Any]:
    """Per cause and horizon: Aalen-Johansen observed vs mean predicted incidence and Wolbers' C."""
    if model.pattern is None or data.cause is None:
        return {}
    estimator, horizons = model.pattern[-1], np.asarray(model.horizons, dtype=float)
    cif = estimator.predict_cumulative_incidence(model.pattern[:-1].transform(data.X[model.feature_columns]),
                                                 horizons)
    causes = [str(c) for c in estimator.causes_]
    time = data.y["time"]
    observed = aalen_johansen(time, data.cause, causes, horizons)
    out: dict[str, Any] = {}
    for k, cause in enumerate(causes):
        out[cause] = {}
        for j, h in enumerate(horizons):
            reasons: dict[str, str] = {}
            marker = cif[:, k, j]
            c = _try(lambda m=marker, h=h, cause=cause: (wolbers_c(time, data.cause, m, cause, h, censored),),
                     reasons, "wolbers_c")[0]
            pred = float(marker.mean())
            out[cause][horizon_label(h)] = {"observed": observed[k, j], "predicted": pred,
                                            "calibration_in_the_large": observed[k, j] - pred,
                                            "wolbers_c": c, "reasons": reasons}
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
    """Evaluate a fitted model on a validated cohort (no MLflow; see :func:`point_figures` for definitions).

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
    summary["pattern"] = _pattern(model, data, censored)
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
