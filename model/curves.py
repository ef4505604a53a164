"""Point predictions read off a survival curve: survival at the horizons and the median time.

The median is the first time on a grid where ``S(t|x) <= 0.5`` (NaN when the curve stays above:
"not reached"). A general model has to evaluate its whole curve on the grid for that. For a
proportional-hazards model, ``S(t|x) = exp(-r H0(t))`` with ``r = exp(lp)`` and ``H0`` nondecreasing,
so the crossing is found by binary search on ``H0`` for each row and then confirmed on the exact
survival values, without the ``n x grid`` curve: the same answer at a fraction of the cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .estimators._breslow import step_lookup

__all__ = ["first_time_at_or_below", "predict_with_median"]

_SEARCH_FROM = 256  # rows; below, the whole curve on the grid costs less than the search's own steps


def first_time_at_or_below(survival_on_grid: np.ndarray, grid: np.ndarray, level: float = 0.5) -> np.ndarray:
    """First ``grid`` time where each row's curve is at or below ``level``; NaN when it never is.

    Parameters
    ----------
    survival_on_grid : ndarray, shape (n_samples, n_grid)
        Nonincreasing curves evaluated at ``grid``.
    grid : ndarray, shape (n_grid,)
        Ascending times.
    level : float, default=0.5

    Returns
    -------
    ndarray, shape (n_samples,)
    """
    below = survival_on_grid <= level
    return np.where(below.any(axis=1), grid[below.argmax(axis=1)], np.nan)


def _proportional_hazards_crossing(relative_hazard: np.ndarray, cum_hazard: np.ndarray, grid: np.ndarray,
                                   level: float) -> np.ndarray:
    """:func:`first_time_at_or_below` of ``exp(-relative_hazard * cum_hazard)`` without building the curves."""
    size = grid.size
    if size == 0:
        return np.full(relative_hazard.size, np.nan)

    def below(rows: np.ndarray, at: np.ndarray) -> np.ndarray:  # the curve's own value, as the general path has it
        return np.exp(-(relative_hazard[rows] * cum_hazard[at])) <= level

    with np.errstate(divide="ignore", over="ignore"):
        index = np.searchsorted(cum_hazard, -np.log(level) / relative_hazard, side="left")
    # the search works on -log(level) / r, whose rounding may put it one step off the exact comparison
    while True:
        rows = np.flatnonzero(index > 0)
        early = rows[below(rows, index[rows] - 1)]
        index[early] -= 1
        rows = np.flatnonzero(index < size)
        late = rows[~below(rows, index[rows])]
        index[late] += 1
        if early.size == 0 and late.size == 0:
            break
    return np.where(index < size, grid[np.minimum(index, size - 1)], np.nan)


def predict_with_median(estimator: Any, encoded: np.ndarray, times: np.ndarray, grid: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Risk score, survival at ``times`` and median time on ``grid`` of a fitted survival estimator.

    Parameters
    ----------
    estimator : fitted estimator
        With ``predict_with_survival``; a Cox-type model (with ``cum_baseline_hazard_``) takes the
        binary-search path from 256 rows on (the same medians), any other evaluates its curve on ``grid``.
    encoded : ndarray, shape (n_samples, n_features)
        Checked, encoded covariates.
    times : ndarray, shape (n_times,)
    grid : ndarray, shape (n_grid,)
        Ascending times the median is read from (the training event times).

    Returns
    -------
    risk : ndarray, shape (n_samples,)
    survival : ndarray, shape (n_samples, n_times)
    median : ndarray, shape (n_samples,)
        NaN where the curve stays above 0.5 on the grid.
    """
    if not hasattr(estimator, "cum_baseline_hazard_") or len(encoded) < _SEARCH_FROM:
        risk, survival = estimator.predict_with_survival(encoded, np.concatenate([times, grid]), check_input=False)
        return risk, survival[:, :times.size], first_time_at_or_below(survival[:, times.size:], grid)
    risk, survival = estimator.predict_with_survival(encoded, times, check_input=False)
    cum_hazard = step_lookup(estimator.unique_times_, estimator.cum_baseline_hazard_, grid)
    return risk, survival, _proportional_hazards_crossing(np.exp(risk), cum_hazard, grid, 0.5)
