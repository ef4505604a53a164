"""Inverse-probability-of-censoring-weighted (IPCW) metrics, computed once per test set.

scikit-survival's ``brier_score``, ``integrated_brier_score``, ``cumulative_dynamic_auc`` and
``concordance_index_ipcw`` each re-check their inputs and refit the censoring distribution (a
Kaplan-Meier estimate whose counts come from a Python loop over the samples) at every call; one
test set of the comparison made eight such calls, and at 60 patients they cost more than the
refits. :class:`CensoringSurvival` fits the censoring distribution once (counts by ``numpy.unique``)
and the metrics below reuse it for every horizon. Each follows scikit-survival's arithmetic
operation by operation, so the figures are the same numbers, not merely close
(``tests/training/test_ipcw.py`` compares them bit for bit); callers keep scikit-survival for inputs
it would reject, so its errors stay the errors.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .concordance import comparable_counts, concordance_from_counts

__all__ = ["km_counts", "kaplan_meier", "CensoringSurvival", "brier_scores", "dynamic_auc", "uno_c"]


def km_counts(event: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Distinct times with their events, numbers at risk and censored (scikit-survival's ``_compute_counts``).

    Parameters
    ----------
    event : ndarray of bool, shape (n_samples,)
    time : ndarray of float, shape (n_samples,)

    Returns
    -------
    times, n_events, n_at_risk, n_censored : ndarray
    """
    times, inverse, total = np.unique(time, return_inverse=True, return_counts=True)
    n_events = np.bincount(inverse[np.asarray(event, dtype=bool)], minlength=times.size)
    n_at_risk = time.size - np.cumsum(np.r_[0, total])[:-1]
    return times, n_events, n_at_risk, total - n_events


def kaplan_meier(event: np.ndarray, time: np.ndarray, reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier estimate at the distinct times (``reverse=True``: of the censoring distribution).

    The same numbers as :func:`sksurv.nonparametric.kaplan_meier_estimator` without confidence intervals.

    Returns
    -------
    times, survival : ndarray
    """
    times, n_events, n_at_risk, n_censored = km_counts(event, time)
    if reverse:
        n_at_risk = n_at_risk - n_events
        n_events = n_censored
    ratio = np.divide(n_events, n_at_risk, out=np.zeros(times.shape[0], dtype=float), where=n_events != 0)
    return times, np.cumprod(1.0 - ratio)


class CensoringSurvival:
    """The censoring survival G(t) of training outcomes (scikit-survival's ``CensoringDistributionEstimator``).

    Parameters
    ----------
    event, time : ndarray, shape (n_samples,)
        Training outcome.

    Attributes
    ----------
    unique_time_ : ndarray
        ``-inf`` and the distinct training times (only the latter when nothing is censored).
    prob_ : ndarray
        G at ``unique_time_``.
    """

    def __init__(self, event: np.ndarray, time: np.ndarray):
        if event.all():
            self.unique_time_ = np.unique(time)
            self.prob_ = np.ones(self.unique_time_.shape[0])
        else:
            unique_time, prob = kaplan_meier(event, time, reverse=True)
            self.unique_time_ = np.r_[-np.inf, unique_time]
            self.prob_ = np.r_[1.0, prob]

    def at(self, time: np.ndarray) -> np.ndarray:
        """G(t) at each ``time`` (0 after the last training time when G has reached 0 there)."""
        time = np.asarray(time, dtype=float)
        extends = time > self.unique_time_[-1]
        if self.prob_[-1] > 0 and extends.any():
            raise ValueError(f"time must be smaller than largest observed time point: {self.unique_time_[-1]}")
        out = np.empty(time.shape, dtype=float)
        out[extends] = 0.0
        valid = ~extends
        time = time[valid]
        idx = np.searchsorted(self.unique_time_, time)
        exact = np.absolute(self.unique_time_[idx] - time) < np.finfo(self.unique_time_.dtype).eps
        idx[~exact] -= 1
        out[valid] = self.prob_[idx]
        return out

    def weights(self, event: np.ndarray, time: np.ndarray) -> np.ndarray:
        """1 / G(T_i) for events, 0 for censored samples."""
        g = self.at(time[event])
        if (g == 0.0).any():
            raise ValueError("censoring survival function is zero at one or more time points")
        out = np.zeros(time.shape[0])
        out[event] = 1.0 / g
        return out


def brier_scores(censoring: CensoringSurvival, event: np.ndarray, time: np.ndarray, survival: np.ndarray,
                 times: np.ndarray) -> np.ndarray:
    """IPCW Brier score (Graf et al. 1999) at each of the increasing ``times`` (columns of ``survival``)."""
    prob_cens_t = censoring.at(times)
    prob_cens_t[prob_cens_t == 0] = np.inf
    prob_cens_y = censoring.at(time)
    prob_cens_y[prob_cens_y == 0] = np.inf
    out = np.empty(times.shape[0], dtype=float)
    for i, t in enumerate(times):
        est = survival[:, i]
        is_case = (time <= t) & event
        is_control = time > t
        out[i] = np.mean(np.square(est) * is_case.astype(int) / prob_cens_y
                         + np.square(1.0 - est) * is_control.astype(int) / prob_cens_t[i])
    return out


def dynamic_auc(censoring: CensoringSurvival, event: np.ndarray, time: np.ndarray, risk: np.ndarray,
                times: Sequence[float], tied_tol: float = 1e-8) -> np.ndarray:
    """Cumulative/dynamic AUC (Uno et al. 2007) of a time-independent ``risk`` at each of ``times``."""
    times = np.asarray(times, dtype=float)
    n, k = risk.shape[0], times.shape[0]
    ipcw = censoring.weights(event, time)
    order = np.argsort(-np.broadcast_to(risk[:, np.newaxis], (n, k)), axis=0)
    time_2d = np.take_along_axis(np.broadcast_to(time[:, np.newaxis], (n, k)), order, axis=0)
    event_2d = np.take_along_axis(np.broadcast_to(event[:, np.newaxis], (n, k)), order, axis=0)
    estimate = np.take_along_axis(np.broadcast_to(risk[:, np.newaxis], (n, k)), order, axis=0)
    ipcw = np.take_along_axis(np.broadcast_to(ipcw[:, np.newaxis], (n, k)), order, axis=0)
    is_case = (time_2d <= times) & event_2d
    is_control = time_2d > times
    is_tied = np.absolute(np.diff(np.concatenate((np.broadcast_to(np.inf, (1, k)), estimate)), axis=0)) <= tied_tol
    cumsum_tp = np.cumsum(is_case * ipcw, axis=0)
    true_pos = cumsum_tp / cumsum_tp[-1]
    false_pos = np.cumsum(is_control, axis=0) / is_control.sum(axis=0)
    out = np.empty(k, dtype=float)
    for j in range(k):
        drop = np.flatnonzero(is_tied[:, j]) - 1  # of tied scores only the last point of the ROC curve stays
        out[j] = np.trapezoid(np.r_[0, np.delete(true_pos[:, j], drop)], np.r_[0, np.delete(false_pos[:, j], drop)])
    return out


def uno_c(censoring: CensoringSurvival, event: np.ndarray, time: np.ndarray, risk: np.ndarray, tau: float,
          tied_tol: float = 1e-8) -> float:
    """Uno's C (2011) truncated at ``tau``: Harrell's pairs weighted by 1 / G(T_i)^2 for events before ``tau``."""
    before = time < tau
    ipcw = np.zeros(time.shape[0])
    ipcw[before] = censoring.weights(event[before], time[before])
    return concordance_from_counts(comparable_counts(event, time, risk, tied_tol), np.square(ipcw))
