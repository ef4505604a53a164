"""Decision-curve analysis for a survival model at fixed horizons (Vickers' survival extension).

At horizon h and threshold risk p_t a patient is "treated" when the predicted risk of an event by h,
1 - S(h|x), is at least p_t. Net benefit counts true positives and penalises false positives by the
odds of the threshold, with the true-positive fraction among the treated taken from the
Kaplan-Meier estimate in that group, so censored patients are handled as in the survival curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sksurv.nonparametric import kaplan_meier_estimator

from .metrics import horizon_label
from .plots import new_figure

__all__ = ["km_risk", "net_benefit", "decision_curve", "plot_decision_curve", "DEFAULT_THRESHOLDS"]

DEFAULT_THRESHOLDS = tuple(float(t) for t in np.round(np.arange(0.01, 0.991, 0.01), 2))
COLUMNS = ["horizon", "threshold", "n_treated", "observed_risk_treated", "model", "treat_all", "treat_none"]


def km_risk(event: np.ndarray, time: np.ndarray, horizon: float) -> float:
    """Kaplan-Meier risk 1 - S(h); ``nan`` when nobody is followed to h (or the group is empty).

    Parameters
    ----------
    event : ndarray of bool, shape (n_samples,)
    time : ndarray, shape (n_samples,)
    horizon : float

    Returns
    -------
    risk : float
    """
    if time.size == 0:
        return float("nan")
    if time.max() < horizon and not event[time == time.max()].any():
        return float("nan")
    times, surv = kaplan_meier_estimator(event, time)
    i = np.searchsorted(times, horizon, side="right") - 1
    return 0.0 if i < 0 else float(1.0 - surv[i])


def net_benefit(y: np.ndarray, risk: np.ndarray, horizon: float,
                thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """Net benefit of the model, of treating everyone and of treating no one at one horizon.

    With n patients, ``n_t`` of them with predicted risk ``>= p_t`` and ``F_t`` the Kaplan-Meier
    risk by h among those ``n_t``,

    ``NB_model(p_t) = F_t n_t / n - (1 - F_t) n_t / n * p_t / (1 - p_t)``,

    ``NB_all(p_t) = F - (1 - F) p_t / (1 - p_t)`` with F the Kaplan-Meier risk of all patients, and
    ``NB_none = 0``. With no treated patient the model's net benefit is 0. Without censoring before
    h, ``F_t n_t`` is the number of treated patients with an event by h and the formula is the
    binary-outcome net benefit (true positives - false positives * odds) / n.

    Parameters
    ----------
    y : structured array, shape (n_samples,)
        Outcome (bool event, float time).
    risk : ndarray, shape (n_samples,)
        Predicted risk of an event by ``horizon``, 1 - S(h|x), in [0, 1].
    horizon : float
        The horizon h.
    thresholds : sequence of float, default: 0.01, 0.02, ..., 0.99
        Threshold risks in (0, 1).

    Returns
    -------
    table : DataFrame
        Columns horizon, threshold, n_treated, observed_risk_treated, model, treat_all, treat_none.

    References
    ----------
    .. [1] Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating prediction
           models. Med Decis Making 2006;26:565-574.
    .. [2] Vickers AJ, Cronin AM, Elkin EB, Gonen M. Extensions to decision curve analysis, a novel
           method for evaluating diagnostic tests, prediction models and molecular markers. BMC Med
           Inform Decis Mak 2008;8:53 (survival outcomes via Kaplan-Meier).
    """
    p = np.asarray(thresholds, dtype=float)
    if p.size == 0 or ((p <= 0) | (p >= 1)).any():
        raise ValueError(f"parameter thresholds of net_benefit must lie in (0, 1); got {list(thresholds)}")
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    risk = np.asarray(risk, dtype=float)
    n = risk.size
    overall = km_risk(event, time, horizon)
    rows = []
    for t in p:
        treated = risk >= t
        n_t = int(treated.sum())
        f_t = km_risk(event[treated], time[treated], horizon) if n_t else float("nan")
        odds = t / (1.0 - t)
        model = 0.0 if n_t == 0 else f_t * n_t / n - (1.0 - f_t) * n_t / n * odds
        rows.append((float(horizon), float(t), n_t, f_t, model, overall - (1.0 - overall) * odds, 0.0))
    return pd.DataFrame(rows, columns=COLUMNS)


def decision_curve(y: np.ndarray, risk: np.ndarray, horizons: Sequence[float],
                   thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> pd.DataFrame:
    """:func:`net_benefit` at each horizon, stacked (``risk`` has one column per horizon).

    Parameters
    ----------
    y : structured array, shape (n_samples,)
    risk : ndarray, shape (n_samples, len(horizons))
        Predicted risk 1 - S(h|x) at each horizon.
    horizons : sequence of float
    thresholds : sequence of float, optional

    Returns
    -------
    table : DataFrame
        The columns of :func:`net_benefit`, one block per horizon.
    """
    risk = np.asarray(risk, dtype=float)
    return pd.concat([net_benefit(y, risk[:, j], h, thresholds) for j, h in enumerate(horizons)],
                     ignore_index=True)


def plot_decision_curve(table: pd.DataFrame, *, time_unit: str = "months") -> Figure:
    """Net benefit against threshold risk, one panel per horizon (model, treat all, treat none).

    Parameters
    ----------
    table : DataFrame
        Output of :func:`decision_curve`.
    time_unit : str, default: "months"

    Returns
    -------
    fig : Figure
    """
    horizons = list(dict.fromkeys(table["horizon"]))
    fig = new_figure(4.0 * len(horizons), 3.5)
    axes = fig.subplots(1, len(horizons), squeeze=False)[0]
    for ax, h in zip(axes, horizons, strict=True):
        part = table[table["horizon"] == h]
        ax.plot(part["threshold"], part["model"], label="model")
        ax.plot(part["threshold"], part["treat_all"], ls="--", label="treat all")
        ax.plot(part["threshold"], part["treat_none"], ls=":", color="grey", label="treat none")
        top = float(np.nanmax(part[["model", "treat_all"]].to_numpy())) if len(part) else 0.0
        ax.set(ylim=(-0.05, max(top, 0.0) + 0.05), xlabel="threshold risk", ylabel="net benefit",
               title=f"{horizon_label(h)} {time_unit}")
        ax.legend(fontsize="small")
    return fig
