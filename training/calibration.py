"""Calibration at fixed horizons: predicted survival against Kaplan-Meier survival by risk group.

:func:`calibration_table` compares, at each horizon, the mean predicted survival of each group of
patients formed by quantiles of predicted risk with the group's Kaplan-Meier estimate and its
95 % confidence interval (log-log), plus one row ``all`` for calibration-in-the-large.
Predictions may be apparent (model fitted to the same data) or cross-validated
(:func:`out_of_fold_survival`), which is the honest choice for a small cohort.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sksurv.nonparametric import kaplan_meier_estimator

from .crossval import Factory, fold_splits, run_chunked
from .metrics import horizon_label

__all__ = ["calibration_table", "out_of_fold_survival", "risk_groups"]

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


def _oof_chunk(factory: Factory, X: pd.DataFrame, y: np.ndarray, horizons: Sequence[float], tasks: list[Any]) -> list:
    out = []
    for _, _, train, test in tasks:
        est = factory().fit(X.iloc[train], y[train])
        out.append(np.asarray(est.predict_survival(X.iloc[test], horizons), dtype=float))
    return out


def out_of_fold_survival(
    factory: Factory,
    X: pd.DataFrame,
    y: np.ndarray,
    horizons: Sequence[float],
    folds: int = 5,
    seed: int = 0,
    *,
    strata: np.ndarray | None = None,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Cross-validated predicted survival: each patient predicted by the model not fitted to them.

    Uses one repeat of stratified K-fold with exactly the folds of the first repeat of
    :func:`~cnslrisk.training.crossval.cross_validate` with the same ``seed`` and ``strata``.

    Parameters
    ----------
    factory : callable
        Returns a new, unfitted estimator with ``fit`` and ``predict_survival``.
    X : DataFrame, shape = (n_samples, n_features)
        Covariates.
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    horizons : sequence of float
        Horizons.
    folds : int, default: 5
        Number of folds.
    seed : int, default: 0
        Seed (as in ``cross_validate``).
    strata : array-like, shape = (n_samples,), optional
        Labels to stratify on; default the event indicator.
    n_jobs : int, default: 1
        Parallel jobs (joblib).

    Returns
    -------
    survival : DataFrame, shape = (n_samples, len(horizons))
        Out-of-fold S(h|x), index of ``X``, one column per horizon named ``survival_<h>``.
    """
    strata = np.asarray(y[y.dtype.names[0]] if strata is None else strata)
    tasks = fold_splits(strata, folds, 1, seed)
    parts = run_chunked(lambda c: _oof_chunk(factory, X, y, horizons, c), tasks, n_jobs, None)
    out = np.empty((y.shape[0], len(horizons)))
    for (_, _, _, test), part in zip(tasks, parts, strict=True):
        out[test] = part
    return pd.DataFrame(out, index=X.index, columns=[f"survival_{horizon_label(h)}" for h in horizons])
