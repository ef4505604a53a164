"""The whole selection validated in an outer loop: what choosing the best of several candidates is worth.

Picking the best of several candidates on the same out-of-fold figures is itself optimistic: the winner's
figures are the maximum of noisy estimates. With ``selection.nested = true`` training repeats the entire
procedure (the out-of-fold comparison of every candidate, the selection rule, the fit of the chosen kind)
on the training part of each split of an outer 5 x 2 stratified K-fold, and scores the chosen model on the
held-out part with the comparison's own definitions (:func:`~cnslrisk.training.comparison.held_out_figures`).
The mean over the outer folds, with the corrected repeated-CV interval, is the figure to expect from the
procedure on new patients. It costs about ten times the comparison.

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

from .comparison import compare, corrected_interval, held_out_figures
from .crossval import Factory, fold_splits, survival_grid
from .selection import select

__all__ = ["nested_selection", "OUTER_FOLDS", "OUTER_REPEATS"]

OUTER_FOLDS, OUTER_REPEATS = 5, 2
_REPORTED = ("c_index", "ibs", "calibration_slope")


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
    n_jobs : int, default=1
        Parallel jobs of each inner comparison.
    progress : callable, optional
        Called with 1 as each outer fold finishes.

    Returns
    -------
    dict
        The card's ``selection.nested`` section: the outer design, how often each kind was chosen, and
        ``c_index``, ``ibs``, ``calibration_slope`` as {mean, ci_lower, ci_upper} over the outer folds.
    """
    times, t_ref = survival_grid(horizons), float(max(horizons))
    outer = fold_splits(y[y.dtype.names[0]], OUTER_FOLDS, OUTER_REPEATS, seed + 1)
    chosen, figures = [], []
    for _, _, train, test in outer:
        X_train, y_train = X.iloc[train], y[train]
        comparison = compare(factories, X_train, y_train, horizons=horizons, folds=folds, repeats=repeats, seed=seed,
                             n_jobs=n_jobs)
        kind = select(comparison, candidates, **select_options).chosen
        model = factories[kind]().fit(X_train, y_train)
        predicted = np.asarray(model.predict_survival(X.iloc[test], times), dtype=float)
        chosen.append(kind)
        figures.append(held_out_figures(y_train, y[test], predicted, times, horizons, t_ref))
        if progress is not None:
            progress(1)
    n_test = len(y) / OUTER_FOLDS
    sizes = {"n_test": n_test, "n_train": len(y) - n_test}
    section: dict[str, Any] = {
        "design": f"outer {OUTER_FOLDS}-fold x {OUTER_REPEATS} stratified cross-validation around the comparison, "
                  "the selection rule and the fit",
        "chosen": dict(Counter(chosen)),
    }
    for metric in _REPORTED:
        values = np.asarray([f[metric] for f in figures], dtype=float)
        point = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        lower, upper = corrected_interval(values, point, **sizes)
        section[metric] = {"mean": point, "ci_lower": lower, "ci_upper": upper}
    return section
