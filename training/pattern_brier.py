"""The Brier score of predicted cumulative incidences under competing risks, with censoring weights.

For cause ``k`` at horizon ``h`` (Graf et al. 1999 extended to competing risks, Schoop et al. 2011):

``BS_k(h) = 1/n sum_i w_i(h) (I(T_i <= h, cause_i = k) - F_k(h|x_i))^2``,

``w_i(h) = I(T_i <= h, any event) / G(T_i) + I(T_i > h) / G(h)``; patients censored before ``h`` get
weight 0, and a competing event before ``h`` counts as "not cause k" with its own weight. ``G`` is
the Kaplan-Meier estimate of the censoring distribution, taken at ``T_i`` as scikit-survival's
``brier_score`` takes it (the project's survival Brier score uses the same convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sksurv.nonparametric import CensoringDistributionEstimator
from sksurv.util import Surv

from cnslrisk.model.outputs import json_safe

__all__ = ["competing_brier", "pattern_brier"]


def competing_brier(time: np.ndarray, cause: np.ndarray, censored: str, causes: Sequence[str],
                    horizons: Sequence[float], incidence: np.ndarray) -> np.ndarray:
    """IPCW Brier score of predicted incidences ``incidence`` (n, K, H) for each cause and horizon, shape (K, H).

    References
    ----------
    .. [1] Graf E, Schmoor C, Sauerbrei W, Schumacher M. Assessment and comparison of prognostic
       classification schemes for survival data. Stat Med 1999;18:2529-2545.
    .. [2] Schoop R, Beyersmann J, Schumacher M, Binder H. Quantifying the predictive accuracy of
       time-to-event models in the presence of competing risks. Biom J 2011;53:88-112.
    """
    time = np.asarray(time, dtype=float)
    cause = np.asarray(cause).astype(str)
    event = cause != censored
    censoring = CensoringDistributionEstimator().fit(Surv.from_arrays(event, time))
    at_event = np.where(event, censoring.predict_proba(time), 1.0)
    out = np.full((len(causes), len(horizons)), np.nan)
    for j, h in enumerate(horizons):
        try:
            at_h = float(censoring.predict_proba(np.asarray([h]))[0])
        except ValueError:  # a horizon beyond the last observation: G(h) is not estimated there
            continue
        if at_h == 0:
            continue
        weight = np.where((time <= h) & event, 1.0 / at_event, np.where(time > h, 1.0 / at_h, 0.0))
        for k, name in enumerate(causes):
            observed = ((time <= h) & (cause == name)).astype(float)
            out[k, j] = float(np.mean(weight * (observed - incidence[:, k, j]) ** 2))
    return out


def pattern_brier(oof: np.ndarray, time: np.ndarray, cause: np.ndarray, causes: Sequence[str],
                  horizons: Sequence[float], censored: str) -> list[dict[str, Any]]:
    """Out-of-fold Brier score per cause and horizon: each repeat's pooled predictions, mean and sd over repeats.

    Undefined (None, with a reason) at a horizon where the censoring survival is 0 or not estimated.

    Parameters
    ----------
    oof : ndarray, shape (n_repeats, n_samples, n_causes, n_horizons)
        Out-of-fold cumulative incidences (NaN where a refit failed: those rows are left out of the repeat).

    Returns
    -------
    list of dict
        ``cause``, ``horizon``, ``mean``, ``sd`` (ddof=1, None for one repeat), ``repeats``.
    """
    values = []
    for r in range(oof.shape[0]):
        ok = np.isfinite(oof[r]).all(axis=(1, 2))
        values.append(competing_brier(time[ok], cause[ok], censored, causes, horizons, oof[r][ok]) if ok.any()
                      else np.full((len(causes), len(horizons)), np.nan))
    stacked = np.stack(values)
    rows = []
    for k, name in enumerate(causes):
        for j, h in enumerate(horizons):
            values = stacked[:, k, j]
            defined = bool(np.isfinite(values).all())
            rows.append({"cause": name, "horizon": float(h), "mean": json_safe(values.mean()) if defined else None,
                         "sd": json_safe(values.std(ddof=1)) if defined and values.size > 1 else None,
                         "repeats": int(values.size),
                         "reason": "" if defined else f"undefined at {h:g}: every refit failed, or no patient is "
                                                      "followed beyond it uncensored"})
    return rows
