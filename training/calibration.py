"""Calibration at fixed horizons: predicted survival against Kaplan-Meier survival by risk group.

:func:`calibration_table` compares, at each horizon, the mean predicted survival of each group of
patients formed by quantiles of predicted risk with the group's Kaplan-Meier estimate and its
95 % confidence interval (log-log), plus one row ``all`` for calibration-in-the-large.
Predictions may be apparent (model fitted to the same data) or out of fold (training uses the
comparison's first repeat, :mod:`.comparison`), which is the honest choice for a small cohort.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sksurv.nonparametric import kaplan_meier_estimator

from .metrics import calibration_slope, censor_at

__all__ = ["calibration_table", "calibration_slope_at", "calibration_in_the_large", "risk_groups"]

# predicted survival is kept this far from 0 and 1 before log(-log S): a model that predicts certainty
# would otherwise give an infinite score (the slope then shows the miscalibration instead of failing)
SURVIVAL_CLIP = 1e-6

COLUMNS = [
    "horizon",
    "group",
    "n",
    "events",
    "predicted",
    "observed",
    "observed_lower",
    "observed_upper",
    "difference",
    "reason",
]


def risk_groups(risk: np.ndarray, groups: int) -> np.ndarray:
    """Group numbers 1..k by quantiles of ``risk`` (1 = lowest risk); tied risks stay in one group.

    With many ties (a model on a few binary covariates) fewer than ``groups`` groups are formed.

    Parameters
    ----------
    risk : ndarray, shape = (n_samples,)
        Predicted risk.
    groups : int
        Number of quantile groups wanted.

    Returns
    -------
    group : ndarray of int, shape = (n_samples,)
        Consecutive group numbers starting at 1.
    """
    edges = np.unique(np.quantile(risk, np.linspace(0, 1, groups + 1)))
    raw = np.searchsorted(edges[1:-1], risk, side="left")
    return np.unique(raw, return_inverse=True)[1] + 1


def _km_at(event: np.ndarray, time: np.ndarray, h: float) -> tuple[float, float, float, str]:
    """Kaplan-Meier S(h) with its 95 % log-log interval, or nan and a reason when not estimable."""
    if time.max() < h and not event[time == time.max()].any():
        return np.nan, np.nan, np.nan, f"no patient of the group is followed to horizon {h:g}"
    times, surv, ci = kaplan_meier_estimator(event, time, conf_type="log-log")
    i = np.searchsorted(times, h, side="right") - 1
    if i < 0 or surv[i] == 1.0:
        return 1.0, np.nan, np.nan, ""
    return float(surv[i]), float(ci[0, i]), float(ci[1, i]), ""


def calibration_slope_at(y: np.ndarray, survival_at_ref: np.ndarray, reference_time: float, *,
                         groups: np.ndarray | None = None) -> float:
    """Calibration slope of any survival model at a reference time.

    The coefficient of a Cox model (Efron ties) of the outcome, administratively censored at
    ``reference_time``, on log(-log S(t_ref|x)) with S clipped to [1e-6, 1 - 1e-6]. For a Cox model
    log(-log S(t_ref|x)) = log H0(t_ref) + x'b, so this is the slope of its linear predictor (up to
    the censoring at t_ref); for other model types it means the same thing: below 1, predictions are
    too extreme; above 1, too timid.

    Parameters
    ----------
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    survival_at_ref : ndarray, shape = (n_samples,)
        Predicted S(t_ref|x).
    reference_time : float
        t_ref, in the time unit of ``y``.
    groups : ndarray, shape = (n_samples,), optional
        Which model predicted each row (the fold of pooled out-of-fold predictions): the score is
        centred within each group, so that fold-to-fold noise in the models' baselines (a shift of
        all of a fold's predictions, which calibration-in-the-large measures) does not pass for spread.

    Returns
    -------
    slope : float

    Raises
    ------
    ValueError
        When no event occurs by t_ref, the predictions do not vary (within groups) or the fit does not converge.

    References
    ----------
    .. [1] Crowson CS, Atkinson EJ, Therneau TM. Assessing calibration of prognostic risk scores. Stat Methods
           Med Res 2016;25:1692-1706.
    """
    s = np.clip(np.asarray(survival_at_ref, dtype=float), SURVIVAL_CLIP, 1 - SURVIVAL_CLIP)
    score = np.log(-np.log(s))
    if groups is not None:
        index = np.unique(groups, return_inverse=True)[1]
        score = score - (np.bincount(index, score) / np.bincount(index))[index]
    if np.ptp(score) <= 1e-9:  # rounding noise of a constant prediction is not spread
        raise ValueError("the predictions do not vary")
    y_cut, _ = censor_at(y, float(reference_time), inclusive=False)
    return calibration_slope(y_cut, score)


def calibration_in_the_large(y: np.ndarray, survival_at_h: np.ndarray, horizon: float) -> float:
    """Mean predicted risk 1 - S(h|x) minus the Kaplan-Meier risk 1 - S_KM(h); nan when KM does not reach h."""
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    observed = _km_at(event, time, float(horizon))[0]
    return float(np.mean(1 - np.asarray(survival_at_h, dtype=float)) - (1 - observed))


def calibration_table(
    y: np.ndarray,
    survival: np.ndarray,
    horizons: Sequence[float],
    *,
    groups: int = 4,
) -> pd.DataFrame:
    """Predicted against observed survival at each horizon, by quantile group of predicted risk.

    At horizon h patients are grouped by quantiles of 1 - S(h|x) (:func:`risk_groups`). In each
    group the mean predicted survival is compared with the Kaplan-Meier estimate S(h) and its 95 %
    confidence interval (log-log transform, as R ``survfit``); the row ``group = "all"`` gives
    calibration-in-the-large (all patients). ``difference`` = observed - predicted. When the
    Kaplan-Meier estimate does not reach h (every patient of the group censored before it) the
    observed values are ``nan`` and ``reason`` says why; the interval is ``nan`` where S(h) = 1.

    Parameters
    ----------
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    survival : ndarray, shape = (n_samples, len(horizons))
        Predicted survival at each horizon (apparent or out-of-fold).
    horizons : sequence of float
        Horizons, in the time unit of ``y``.
    groups : int, default: 4
        Number of quantile groups (4 suits about 60 patients: 15 per group).

    Returns
    -------
    table : DataFrame
        Columns horizon, group (``"1"`` = lowest risk ... and ``"all"``), n, events (observed by h),
        predicted, observed, observed_lower, observed_upper, difference, reason.

    References
    ----------
    .. [1] Harrell FE. Regression Modeling Strategies, 2nd ed. Springer 2015, section 20.12 (``calibrate``).
    .. [2] Kalbfleisch JD, Prentice RL. The Statistical Analysis of Failure Time Data, 2nd ed. Wiley 2002
           (log-log confidence interval of the Kaplan-Meier estimate).
    """
    if not isinstance(groups, int | np.integer) or groups < 1:
        raise ValueError(f"parameter groups of calibration_table must be an int >= 1; got {groups!r}")
    survival = np.asarray(survival, dtype=float)
    if survival.shape != (y.shape[0], len(horizons)):
        raise ValueError(
            f"survival must have shape (n_samples, n_horizons) = ({y.shape[0]}, {len(horizons)}); got {survival.shape}"
        )
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    rows: list[tuple[Any, ...]] = []
    for j, h in enumerate(horizons):
        s = survival[:, j]
        g = risk_groups(1.0 - s, groups)
        members = [(str(k), g == k) for k in range(1, g.max() + 1)] + [("all", np.ones_like(g, dtype=bool))]
        for label, m in members:
            obs, lo, hi, reason = _km_at(event[m], time[m], float(h))
            pred = float(s[m].mean())
            n_events = int((event[m] & (time[m] <= h)).sum())
            rows.append((float(h), label, int(m.sum()), n_events, pred, obs, lo, hi, obs - pred, reason))
    return pd.DataFrame(rows, columns=COLUMNS)
