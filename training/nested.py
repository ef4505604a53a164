"""The whole selection validated in an outer loop: what choosing the best of several candidates is worth.

Picking the best of several candidates on the same out-of-fold figures is itself optimistic: the winner's
figures are the maximum of noisy estimates. With ``selection.nested = true`` training repeats the entire
procedure (the out-of-fold comparison of every candidate, the selection rule, the fit of the chosen kind)
on the training part of each split of an outer 5 x 2 stratified K-fold, and scores the chosen model on the
held-out part with the comparison's own definitions (:func:`~cnslrisk.training.comparison.held_out_figures`):
C as the mean over the outer folds, the integrated Brier score and the calibration slope from each outer
repeat's pooled held-out predictions (the slope centred within folds), as the comparison does, because a
calibration slope estimated on one small test fold is biased away from 0 and a mean of such slopes with it.
The mean over the outer folds, with the corrected repeated-CV interval, is the figure to expect from the
procedure on new patients. It costs about ten times the comparison.

With ``recalibrate`` the procedure includes the out-of-fold recalibration of a chosen Cox model
(:func:`oof_slope`, :func:`~cnslrisk.training.rescale.rescale_cox`): each outer fold rescales its
model by the slope of its own inner comparison, so the outer figures judge the recalibrated models, and
the same models unrecalibrated are reported beside them.

References
----------
.. [1] Varma S, Simon R. Bias in error estimation when using cross-validation for model selection. BMC
       Bioinformatics 2006;7:91.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .comparison import Comparison, compare, corrected_interval, held_out_figures, pooled_metric
from .crossval import Factory, fold_splits, survival_grid
from .rescale import rescale_cox
from .selection import select

__all__ = ["nested_selection", "oof_slope", "OUTER_FOLDS", "OUTER_REPEATS", "RECALIBRATED_KINDS"]

# a Cox model's delta-method band follows the rescaling; a penalised model's bootstrap ensemble and a forest do not
RECALIBRATED_KINDS = ("cox",)

OUTER_FOLDS, OUTER_REPEATS = 5, 2
_REPORTED = ("c_index", "ibs", "calibration_slope")


def oof_slope(comparison: Comparison, kind: str) -> tuple[float, str | None]:
    """``kind``'s out-of-fold calibration slope, and why it is not rescaled by it (None when it is)."""
    slope = float(comparison.figure(kind, "calibration_slope")["mean"])
    if kind not in RECALIBRATED_KINDS:
        return slope, (f"not applied: a {kind} model has no delta-method band that follows a rescaled linear "
                       "predictor (only the unpenalised Cox model is recalibrated)")
    if not (np.isfinite(slope) and slope > 0):
        return slope, f"not applied: the out-of-fold calibration slope is {slope:.3g} (not a positive number)"
    return slope, None


def nested_selection(
    factories: Mapping[str, Factory],
    candidates: Sequence[str],
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    horizons: Sequence[float],
    folds: int,
    repeats: int,
    seed: int,
    select_options: Mapping[str, Any],
    recalibrate: bool = False,
    n_jobs: int = 1,
    progress: Callable[[int], Any] | None = None,
) -> dict[str, Any]:
    """Validate compare -> select -> fit in an outer 5 x 2 stratified K-fold.

    Parameters
    ----------
    factories : mapping of kind to callable
        Every candidate and reference kind of the comparison (``null`` included).
    candidates : sequence of str
        The selectable kinds, simplest first.
    X, y
        Covariates and outcome.
    horizons, folds, repeats, seed
        The inner comparison's settings (as in training); the outer splits use ``seed + 1``.
    select_options : mapping
        Keyword arguments of :func:`~cnslrisk.training.selection.select` (rule, margin, slope_band).
    recalibrate : bool, default=False
        Rescale a chosen Cox model by its inner comparison's out-of-fold calibration slope (:func:`oof_slope`).
    n_jobs : int, default=1
        Parallel jobs of each inner comparison.
    progress : callable, optional
        Called with 1 as each outer fold finishes.

    Returns
    -------
    dict
        The card's ``selection.nested`` section: the outer design, how often each kind was chosen, and
        ``c_index``, ``ibs``, ``calibration_slope`` as {mean, ci_lower, ci_upper} over the outer folds;
        with ``recalibrate``, ``recalibrated_folds`` and the same figures ``without_recalibration``.
    """
    times, t_ref = survival_grid(horizons), float(max(horizons))
    outer = fold_splits(y[y.dtype.names[0]], OUTER_FOLDS, OUTER_REPEATS, seed + 1)
    fold_of = np.empty((OUTER_REPEATS, len(y)), dtype=int)
    shown = np.full((OUTER_REPEATS, len(y), times.size), np.nan)  # each repeat's held-out predictions, pooled
    plain = shown.copy() if recalibrate else None  # the same before recalibration
    chosen, figures, unrecalibrated, slopes = [], [], [], []
    for repeat, fold, train, test in outer:
        X_train, y_train = X.iloc[train], y[train]
        comparison = compare(factories, X_train, y_train, horizons=horizons, folds=folds, repeats=repeats, seed=seed,
                             n_jobs=n_jobs)
        kind = select(comparison, candidates, **select_options).chosen
        model = factories[kind]().fit(X_train, y_train)
        predicted = np.asarray(model.predict_survival(X.iloc[test], times), dtype=float)
        chosen.append(kind)
        fold_of[repeat, test] = fold
        if recalibrate:
            plain[repeat, test] = predicted
            unrecalibrated.append(held_out_figures(y_train, y[test], predicted, times, horizons, t_ref))
            slope, not_applied = oof_slope(comparison, kind)
            if not_applied is None:
                slopes.append(slope)
                model = rescale_cox(model, X_train, y_train, slope)
                predicted = np.asarray(model.predict_survival(X.iloc[test], times), dtype=float)
        shown[repeat, test] = predicted
        figures.append(held_out_figures(y_train, y[test], predicted, times, horizons, t_ref))
        if progress is not None:
            progress(1)
    section: dict[str, Any] = {
        "design": f"outer {OUTER_FOLDS}-fold x {OUTER_REPEATS} stratified cross-validation around the comparison, "
                  "the selection rule and the fit" + (" and the out-of-fold recalibration" if recalibrate else ""),
        "chosen": dict(Counter(chosen)),
        **_summaries(figures, shown, fold_of, y, horizons),
    }
    if recalibrate:
        section["recalibrated_folds"] = {"count": len(slopes), "slopes": [float(s) for s in slopes]}
        section["without_recalibration"] = _summaries(unrecalibrated, plain, fold_of, y, horizons)
    return section


def _summaries(per_fold: list[dict[str, float]], pooled: np.ndarray, fold_of: np.ndarray, y: np.ndarray,
               horizons: Sequence[float]) -> dict[str, dict[str, float]]:
    """Each reported metric as the comparison defines it (pooled or fold mean) with its corrected interval."""
    times, t_ref = survival_grid(horizons), float(max(horizons))
    repeats = [held_out_figures(y, y, predicted, times, horizons, t_ref, groups=folds)
               for predicted, folds in zip(pooled, fold_of, strict=True)]
    n_test = len(y) / OUTER_FOLDS
    out = {}
    for metric in _REPORTED:
        folds = np.asarray([f[metric] for f in per_fold], dtype=float)
        source = np.asarray([r[metric] for r in repeats], dtype=float) if pooled_metric(metric) else folds
        point = float(np.nanmean(source)) if np.isfinite(source).any() else float("nan")
        lower, upper = corrected_interval(folds, point, n_test=n_test, n_train=len(y) - n_test)
        out[metric] = {"mean": point, "ci_lower": lower, "ci_upper": upper}
    return out
