"""How a fitted model performs on one cohort, without resampling: the point figures of an evaluation.

:func:`point_figures` gives Harrell's and Uno's C, the calibration slopes with their standard
errors, calibration-in-the-large, Brier scores, AUCs and the integrated Brier score;
:func:`pattern_figures` the relapse-pattern model's observed and predicted incidences and
Wolbers' C. A figure that cannot be computed is NaN with its reason. Used by
:func:`~cnslrisk.training.evaluate.evaluate_model` for the whole cohort and by
:func:`~cnslrisk.training.monitor.period_table` per period.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from cnslrisk.model.predictor import RiskModel

from .calibration import calibration_table
from .crossval import survival_grid
from .data import TrainingData
from .metrics import censor_at, horizon_label, score_predictions, slope_with_se
from .pattern_validation import aalen_johansen, wolbers_c

__all__ = ["point_figures", "pattern_figures"]

_Z = float(norm.ppf(0.975))


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

    Harrell's and Uno's C and the AUC rank patients by the linear predictor (linear models) or by the
    predicted cumulative hazard at the last horizon (others), as training's comparison does. The slope at
    the last horizon is the comparison's ``calibration_slope`` (the promotion gate's figure).
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
    survival = np.asarray(model.pipeline.predict_survival(covariates, times), dtype=float)
    linear = model.kind in ("cox", "coxnet")
    # the rank metrics' score is training's comparison's: the cumulative hazard at the last horizon (a Cox
    # model's linear predictor orders patients the same way; a forest's ensemble mortality need not)
    risk = (np.asarray(model.pipeline.predict(covariates), dtype=float) if linear
            else -np.log(np.clip(survival[:, -1], 1e-300, None)))
    at_h = survival[:, [int(np.flatnonzero(times == h)[0]) for h in horizons]]
    scores = score_predictions(y, y, risk, survival, times, horizons)
    reasons = dict(scores["reasons"])
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
            **_slope_entry(censor_at(y, h, inclusive=False)[0], score, reasons, f"calibration_slope_{label}"),
            "brier": scores["metrics"][f"brier_{label}"], "auc": scores["metrics"][f"auc_{label}"],
        }
    summary["reasons"], summary["notes"] = reasons, [scores["note"]] if scores["note"] else []
    return {"summary": summary, "calibration": table, "survival": at_h, "times": times, "risk": risk,
            "grid_survival": survival}



def pattern_figures(model: RiskModel, data: TrainingData, censored: str) -> dict[str, Any]:
    """Per cause and horizon: Aalen-Johansen observed vs mean predicted incidence and Wolbers' C.

    Returns
    -------
    figures : dict
        cause -> horizon label -> ``observed``, ``predicted``, ``calibration_in_the_large``,
        ``wolbers_c`` and ``reasons``; empty without a pattern model or a cause column.
    """
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
