"""One coherent prediction: the survival model's risk of an event, split between the causes by the pattern model.

A survival model and a cause-specific (pattern) model fitted separately each imply an all-cause
risk, and the two disagree: shown side by side, the pattern incidences did not add up to one minus
the survival beside them. Here the survival model alone says how much risk there is and when, and
the pattern model only how it divides between the causes. With ``S`` the survival model's curve on
its event-time grid ``t_1 < t_2 < ...`` (``S(t_0) = 1``),

``dF_k(t_j|x) = [S(t_{j-1}|x) - S(t_j|x)] * pi_k(t_j|x)``,
``pi_k(t_j|x) = dL_k(t_j|x) / sum_l dL_l(t_j|x)``,

where ``dL_k(t_j|x) = exp(lp_k(x)) * [H0_k(t_j) - H0_k(t_{j-1})]`` is cause k's cause-specific hazard
over ``(t_{j-1}, t_j]`` (at ``t_j`` itself when both models are fitted on the same cohort, whose
event times are then the same). The sum telescopes, ``sum_k F_k(t|x) = 1 - S(t|x)``, and each
``F_k`` is non-decreasing because every term is non-negative. A ratio split of totals
(``F_k^pattern(t) / sum_l F_l^pattern(t) * (1 - S(t))``) has the first property but not the second.

Where the pattern model has no event in ``(t_{j-1}, t_j]`` (a recalibrated or forest survival model
whose grid differs from the pattern model's), the shares of the last interval that had one are
carried forward: the pattern model's hazards are piecewise constant between its event times, so
the latest estimate of how the hazard divides holds until the next one, and only information from
before ``t_j`` is used. Before the pattern model's first event time its first shares are used (the
nearest).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone
from sksurv.util import Surv

from ._checks import require_fitted
from .memo import derived_once
from .pattern import CauseSpecificCox, cause_text

__all__ = ["split_incidence", "interval_sources", "CoherentIncidence"]

_CELLS = 1 << 18  # rows x grid times held at once: memory stays bounded for any number of rows, and in the CPU cache


def interval_sources(pattern: CauseSpecificCox, grid: np.ndarray) -> np.ndarray:
    """The pattern model's baseline hazard increment of each cause over each interval of ``grid``.

    Returns
    -------
    ndarray, shape (n_grid, n_causes)
        Row j: ``H0_k(t_j) - H0_k(t_{j-1})``; an interval without a pattern event takes the last row
        that had one (the first such row before any).
    """
    cumulative = np.vstack([np.zeros(pattern.baseline_increments_.shape[1]),
                            np.cumsum(pattern.baseline_increments_, axis=0)])
    index = np.searchsorted(pattern.unique_times_, grid, side="right")
    increments = cumulative[index] - cumulative[np.r_[0, index[:-1]]]
    has = increments.sum(axis=1) > 0
    if not has.any():
        raise ValueError("split_incidence: the pattern model has no event time; it cannot share any risk")
    last = np.maximum.accumulate(np.where(has, np.arange(grid.size), -1))
    return increments[np.where(last >= 0, last, np.argmax(has))]


def split_incidence(survival_at: Callable[[int, int, np.ndarray], np.ndarray], grid: Any, pattern: CauseSpecificCox,
                    relative: np.ndarray, times: Any) -> np.ndarray:
    """Cumulative incidence of each cause: the survival model's risk split by cause-specific hazard shares.

    Parameters
    ----------
    survival_at : callable
        ``survival_at(lo, hi, grid_times)`` gives the survival model's ``S(t|x)`` of rows ``lo:hi`` at
        ``grid_times`` (the grid up to the last of ``times``), shape (hi - lo, len(grid_times)).
    grid : array-like, shape (n_grid,)
        The survival model's event times (where its curve steps), ascending.
    pattern : CauseSpecificCox
        Fitted; gives the causes and their baseline hazards.
    relative : ndarray, shape (n_causes, n_samples)
        ``exp(lp_k(x))`` of each row (:meth:`CauseSpecificCox.relative_hazards`).
    times : array-like, shape (n_times,)
        Where to evaluate.

    Returns
    -------
    ndarray, shape (n_samples, n_causes, n_times)
        ``F_k(t|x)``; they add up to ``1 - S(t|x)`` and are 0 before the first grid time.
    """
    grid = np.asarray(grid, dtype=float)
    times = np.atleast_1d(np.asarray(times, dtype=float))
    n_causes, n = relative.shape
    plan = _plan(pattern, grid, times)
    out = np.zeros((n_causes, times.size, n))  # rows on the last axis: each output column is contiguous
    if plan is None or n == 0:
        return out.transpose(2, 0, 1)
    base, stretch_base, which, shown, at = plan
    rows = max(1, _CELLS // at.size)
    for lo in range(0, n, rows):
        hi = min(n, lo + rows)
        survival = survival_at(lo, hi, at)
        drop = np.empty_like(survival)
        drop[:, 0] = 1.0 - survival[:, 0]
        np.subtract(survival[:, :-1], survival[:, 1:], out=drop[:, 1:])
        # dF_k = drop x r_k B_k / sum_l r_l B_l, summed over each stretch; einsum's own loops (not BLAS) keep a
        # row's sums in one order whatever the other rows
        total = np.einsum("kc,jk->cj", relative[:, lo:hi], base)
        weight = np.divide(drop, total, out=np.zeros_like(drop), where=total > 0)
        incidence = np.cumsum(np.einsum("cj,jsk->ksc", weight, stretch_base), axis=1)  # (K, S, c)
        incidence *= relative[:, None, lo:hi]
        out[:, :, lo:hi] = np.where(shown[None, :, None], incidence[:, which], 0.0)
    return out.transpose(2, 0, 1)


def _plan(pattern: CauseSpecificCox, grid: np.ndarray, times: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """(base, stretch_base, which, shown, grid used) of :func:`split_incidence`; None when no grid time is used.

    Derived from (pattern model, grid, horizons) alone, once: a scorer asks for the same few every call.
    """
    return derived_once(pattern, pattern.baseline_increments_, ("split plan", grid.tobytes(), times.tobytes()),
                        lambda: _derive_plan(pattern, grid, times))


def _derive_plan(pattern: CauseSpecificCox, grid: np.ndarray, times: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    used = int(np.searchsorted(grid, times.max(initial=-np.inf), side="right"))
    if used == 0:
        return None
    base = interval_sources(pattern, grid[:used])  # (J, K)
    # the sums are needed only at the horizons: sums over the stretches of grid times between them, then added up
    ends = np.searchsorted(grid[:used], times, side="right")  # grid times <= t: [0, end)
    stops = np.unique(ends[ends > 0])
    starts = np.r_[0, stops[:-1]]
    which = np.searchsorted(stops, ends)  # the stretch that ends at each horizon's end
    shown = ends > 0
    member = (np.arange(used)[:, None] >= starts[None, :]) & (np.arange(used)[:, None] < stops[None, :])
    stretch_base = member[:, :, None] * base[:, None, :]  # (J, S, K): B_jk where grid time j lies in stretch s
    return base, stretch_base, which, shown, grid[:used].copy()


class CoherentIncidence(BaseEstimator):
    """A survival pipeline and a pattern pipeline fitted together; incidences by :func:`split_incidence`.

    What a :class:`~cnslrisk.model.predictor.RiskModel` shows, as one estimator that cross-validation
    can refit (the pattern model's validation then judges the incidences that are displayed).

    Parameters
    ----------
    survival : SurvivalPipeline
        Unfitted ``encode`` -> survival model (with ``unique_times_`` and ``predict_survival``).
    pattern : Pipeline
        Unfitted ``encode`` -> :class:`CauseSpecificCox`.
    censored : str or int, default="none"
        The cause value meaning no event; the survival model's event is ``cause != censored``.

    Attributes
    ----------
    survival_, pattern_ : fitted pipelines
    causes_ : ndarray of str
    """

    def __init__(self, survival: Any, pattern: Any, *, censored: Any = "none"):
        self.survival = survival
        self.pattern = pattern
        self.censored = censored

    def fit(self, X: Any, y: np.ndarray) -> CoherentIncidence:
        """Fit both pipelines on ``X`` (each encoder picks its own columns); ``y`` from ``competing_outcome``."""
        event = cause_text(y["cause"]) != str(cause_text([self.censored])[0])
        self.survival_ = clone(self.survival).fit(X, Surv.from_arrays(event, y["time"]))
        self.pattern_ = clone(self.pattern).fit(X, y)
        self.causes_ = self.pattern_[-1].causes_
        return self

    def predict_cumulative_incidence(self, X: Any, times: Any) -> np.ndarray:
        """``F_k(t|x)``, shape (n_samples, n_causes, n_times); see :func:`split_incidence`."""
        require_fitted(self, "causes_")
        estimator, pattern = self.survival_[-1], self.pattern_[-1]
        encoded = self.survival_.named_steps["encode"].encode(X)
        relative = pattern.relative_hazards(self.pattern_.named_steps["encode"].encode(X), check_input=False)
        grid = np.asarray(estimator.unique_times_, dtype=float)

        def survival_at(lo: int, hi: int, at: np.ndarray) -> np.ndarray:
            return estimator.predict_survival(encoded[lo:hi], at, check_input=False)

        return split_incidence(survival_at, grid, pattern, relative, times)
