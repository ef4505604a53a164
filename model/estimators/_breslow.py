"""Risk-set sums, the Cox partial likelihood and the Breslow baseline shared by the linear Cox estimators.

Everything here is vectorised over rows: the risk-set sums are reverse cumulative sums over the
rows sorted by time, and tied event times are handled by expanding each event into its own term
(Efron) instead of looping in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RiskSets", "PartialLikelihood", "partial_likelihood", "breslow_baseline", "efron_increments", "step_lookup"]


@dataclass(frozen=True)
class RiskSets:
    """The risk-set structure of a right-censored sample, built once per fit.

    Attributes
    ----------
    order : ndarray of int, shape (n_samples,)
        Row order that sorts the sample by time (stable).
    unique_times : ndarray, shape (n_event_times,)
        Distinct event times, ascending.
    n_events : ndarray, shape (n_event_times,)
        Number of events at each distinct event time.
    start : ndarray of int, shape (n_event_times,)
        Position (in sorted order) of the first row still at risk at each event time.
    event_rows : ndarray of int, shape (n_events_total,)
        Sorted positions of the rows with an event.
    event_group : ndarray of int, shape (n_events_total,)
        Index of each event's distinct event time.
    efron_fraction : ndarray, shape (n_events_total,)
        ``l / d`` for the ``l``-th of ``d`` events tied at one time (0 for the first one).
    """

    order: np.ndarray
    unique_times: np.ndarray
    n_events: np.ndarray
    start: np.ndarray
    event_rows: np.ndarray
    event_group: np.ndarray
    efron_fraction: np.ndarray

    @classmethod
    def build(cls, time: np.ndarray, event: np.ndarray) -> RiskSets:
        """Build the risk sets of ``(time, event)``."""
        order = np.argsort(time, kind="mergesort")
        t_sorted = time[order]
        e_sorted = event[order].astype(bool)
        event_rows = np.flatnonzero(e_sorted)
        unique_times, event_group, n_events = np.unique(t_sorted[event_rows], return_inverse=True, return_counts=True)
        start = np.searchsorted(t_sorted, unique_times, side="left")
        first_of_group = np.concatenate(([0], np.cumsum(n_events)[:-1]))
        rank_in_group = np.arange(event_rows.size) - first_of_group[event_group]
        fraction = rank_in_group / n_events[event_group]
        return cls(order, unique_times, n_events, start, event_rows, event_group, fraction)


def _reverse_cumsum(values: np.ndarray) -> np.ndarray:
    return np.cumsum(values[::-1], axis=0)[::-1]


@dataclass(frozen=True)
class PartialLikelihood:
    """Value, gradient and observed information of the Cox log partial likelihood at one ``beta``.

    Attributes
    ----------
    loglik : float
        Log partial likelihood.
    gradient : ndarray, shape (n_features,)
        Score vector.
    information : ndarray, shape (n_features, n_features)
        Observed information (minus the Hessian).
    event_mean : ndarray, shape (n_event_times, n_features)
        Risk-weighted covariate mean at each event time, averaged over the tie terms (the
        quantity Schoenfeld residuals are taken against).
    """

    loglik: float
    gradient: np.ndarray
    information: np.ndarray
    event_mean: np.ndarray


def partial_likelihood(
    Z: np.ndarray, beta: np.ndarray, risk: RiskSets, *, ties: str = "efron", with_information: bool = True
) -> PartialLikelihood:
    """Cox log partial likelihood with Efron's or Breslow's handling of tied event times.

    With ``d`` events tied at time ``t``, Efron's approximation replaces the risk-set sum
    ``S0`` in the ``l``-th term (``l = 0..d-1``) by ``S0 - (l/d) D0``, where ``D0`` sums the
    risk weights of the tied events; the same is done for the first and second moments.
    Breslow's approximation uses ``S0`` for every term.

    Parameters
    ----------
    Z : ndarray, shape (n_samples, n_features)
        Covariates (any centring; the likelihood is invariant to it).
    beta : ndarray, shape (n_features,)
        Coefficients.
    risk : RiskSets
        Risk sets of the sample.
    ties : {"efron", "breslow"}, default="efron"
        Handling of tied event times.
    with_information : bool, default=True
        Whether to compute the information matrix (skipped for likelihood-only calls).

    Returns
    -------
    PartialLikelihood
        Log-likelihood, score, observed information and event-time covariate means.

    References
    ----------
    .. [1] Efron, B. (1977). The efficiency of Cox's likelihood function for censored data.
       Journal of the American Statistical Association, 72(359), 557-565.
    """
    Zs = Z[risk.order]
    eta = Zs @ beta
    eta = eta - eta.max()  # a common shift cancels in every term; it only prevents overflow
    w = np.exp(eta)
    n_groups, n_features = risk.unique_times.size, Z.shape[1]
    frac = risk.efron_fraction if ties == "efron" else np.zeros_like(risk.efron_fraction)
    rows, group = risk.event_rows, risk.event_group
    at = risk.start[group]

    wz = w[:, None] * Zs
    d0 = np.bincount(group, weights=w[rows], minlength=n_groups)
    d1 = np.zeros((n_groups, n_features))
    np.add.at(d1, group, wz[rows])
    den = _reverse_cumsum(w)[at] - frac * d0[group]
    num1 = _reverse_cumsum(wz)[at] - frac[:, None] * d1[group]
    zbar = num1 / den[:, None]

    loglik = float(np.sum(eta[rows]) - np.sum(np.log(den)))
    gradient = np.sum(Zs[rows] - zbar, axis=0)
    event_mean = np.zeros((n_groups, n_features))
    np.add.at(event_mean, group, zbar)
    event_mean /= risk.n_events[:, None]
    if not with_information:
        return PartialLikelihood(loglik, gradient, np.empty((0, 0)), event_mean)
    wzz = wz[:, :, None] * Zs[:, None, :]
    d2 = np.zeros((n_groups, n_features, n_features))
    np.add.at(d2, group, wzz[rows])
    num2 = _reverse_cumsum(wzz)[at] - frac[:, None, None] * d2[group]
    information = np.sum(num2 / den[:, None, None], axis=0) - zbar.T @ zbar
    return PartialLikelihood(loglik, gradient, information, event_mean)


def breslow_baseline(Z: np.ndarray, beta: np.ndarray, risk: RiskSets) -> dict[str, np.ndarray]:
    """Breslow estimate of the baseline cumulative hazard and the sums its variance needs.

    With centred covariates ``Z`` (so the baseline is that of a patient at the training means),
    ``S0_j = sum_{i in R_j} exp(Z_i beta)`` and ``h_j = d_j / S0_j`` at each distinct event
    time ``t_j``. Returned as cumulative sums over event times:

    - ``cum_hazard``: ``H0(t_j) = sum_{k<=j} h_k`` (Breslow 1972);
    - ``cum_var``: ``sum_{k<=j} d_k / S0_k^2``;
    - ``cum_mean``: ``A(t_j) = sum_{k<=j} zbar_k h_k`` with ``zbar_k = S1_k / S0_k``.

    These are the per-event-time quantities of the Tsiatis variance (see
    :func:`cnslrisk.model.estimators.cox.CoxPH.predict_survival_interval`).

    Parameters
    ----------
    Z : ndarray, shape (n_samples, n_features)
        Covariates centred on the training means.
    beta : ndarray, shape (n_features,)
        Coefficients.
    risk : RiskSets
        Risk sets of the sample.

    Returns
    -------
    dict
        ``cum_hazard`` (n_event_times,), ``cum_var`` (n_event_times,), ``cum_mean``
        (n_event_times, n_features).

    References
    ----------
    .. [1] Breslow, N. E. (1972). Discussion of "Regression models and life-tables" by D. R. Cox.
       Journal of the Royal Statistical Society B, 34(2), 216-217.
    """
    Zs = Z[risk.order]
    w = np.exp(Zs @ beta)
    s0 = _reverse_cumsum(w)[risk.start]
    s1 = _reverse_cumsum(w[:, None] * Zs)[risk.start]
    hazard = risk.n_events / s0
    return {
        "cum_hazard": np.cumsum(hazard),
        "cum_var": np.cumsum(risk.n_events / s0**2),
        "cum_mean": np.cumsum(s1 / s0[:, None] * hazard[:, None], axis=0),
    }


def efron_increments(Z: np.ndarray, beta: np.ndarray, risk: RiskSets) -> np.ndarray:
    """Baseline hazard increments with Efron's handling of ties (R ``survfit.coxph`` ``ctype = 2``).

    At an event time with ``d`` tied events the increment is ``sum_{l=0}^{d-1} 1 / (S0 - (l/d) D0)``
    (``S0`` the risk set's sum of ``exp(z b)``, ``D0`` the tied events' share of it), which is the
    baseline R's riskRegression takes for a Cox model fitted with Efron's ties; without ties it is
    Breslow's ``1 / S0``.

    Returns
    -------
    ndarray, shape (n_event_times,)
    """
    Zs = Z[risk.order]
    w = np.exp(Zs @ beta)
    group = risk.event_group
    tied = np.bincount(group, weights=w[risk.event_rows], minlength=risk.unique_times.size)
    denominator = _reverse_cumsum(w)[risk.start[group]] - risk.efron_fraction * tied[group]
    return np.bincount(group, weights=1.0 / denominator, minlength=risk.unique_times.size)


def step_lookup(
    unique_times: np.ndarray, values: np.ndarray, times: np.ndarray, *, axis: int = 0, before: float = 0.0
) -> np.ndarray:
    """Evaluate right-continuous step functions that jump at ``unique_times``.

    Parameters
    ----------
    unique_times : ndarray, shape (n_steps,)
        Ascending jump times.
    values : ndarray
        Value from each jump on, with the steps along ``axis``.
    times : array-like, shape (n_times,)
        Where to evaluate.
    axis : int, default=0
        Axis of ``values`` that runs over the steps (1 for one function per row).
    before : float, default=0.0
        Value before the first jump.

    Returns
    -------
    ndarray
        ``values`` with the step axis replaced by ``times``.
    """
    index = np.searchsorted(unique_times, np.asarray(times, dtype=float), side="right")
    shape = list(values.shape)
    shape[axis] = 1
    padded = np.concatenate([np.full(shape, before), values], axis=axis)
    return np.take(padded, index, axis=axis)
