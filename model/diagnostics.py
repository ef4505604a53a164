"""Proportional-hazards check for a fitted Cox model: the Grambsch-Therneau scaled Schoenfeld residual test."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import chi2, rankdata
from sklearn.utils.validation import check_is_fitted
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import check_array_survival

from .estimators._breslow import RiskSets, partial_likelihood, step_lookup

__all__ = ["proportional_hazards_test"]


def proportional_hazards_test(model: Any, X: Any, y: np.ndarray, *, time_transform: str = "km") -> pd.DataFrame:
    """Test each covariate of a fitted Cox model, and all jointly, for non-proportional hazards.

    Schoenfeld residuals ``s_k = x_k - xbar(t_k)`` are taken at each event (``xbar`` the
    risk-weighted covariate mean, averaged over Efron's tie terms as in the fit) and scaled,
    ``s*_k = d V s_k`` with ``d`` the number of events and ``V`` the coefficient variance.
    With ``g_k`` the transformed event time centred on its mean, the per-covariate statistic is
    ``T_j = (sum_k g_k s*_kj)^2 / (d V_jj sum_k g_k^2)`` (chi-squared, 1 df) and the global one
    ``T = u' V u d / sum_k g_k^2`` with ``u = sum_k g_k s_k`` (chi-squared, p df). This is the
    Grambsch-Therneau approximation R's ``cox.zph`` used before survival 3.0 and lifelines'
    ``proportional_hazard_test`` uses; R >= 3.0 computes an exact score test instead, which
    differs slightly.

    Parameters
    ----------
    model : CoxPH or SurvivalPipeline ending in CoxPH
        Fitted model.
    X : array-like or pandas.DataFrame
        The training data (raw cohort for a pipeline, encoded covariates for a bare CoxPH).
    y : structured array, shape (n_samples,)
        Event indicator and time of the training data.
    time_transform : {"km", "rank"}, default="km"
        ``"km"``: ``g = 1 - KM(t)`` (R's default; KM just after ``t``); ``"rank"``: ranks of the
        event times among the events, ties averaged (lifelines' default).

    Returns
    -------
    pandas.DataFrame
        Columns ``test_statistic``, ``df``, ``p``; one row per covariate plus ``"global"``.

    References
    ----------
    .. [1] Grambsch, P. M. and Therneau, T. M. (1994). Proportional hazards tests and diagnostics
       based on weighted residuals. Biometrika, 81(3), 515-526.
    .. [2] Therneau, T. M. and Grambsch, P. M. (2000). Modeling Survival Data: Extending the Cox
       Model. Springer, section 6.2.
    """
    if time_transform not in ("km", "rank"):
        raise ValueError(
            f"parameter time_transform of proportional_hazards_test must be one of {{km, rank}}; got {time_transform!r}"
        )
    cox = model.steps[-1][1] if hasattr(model, "steps") else model
    if not hasattr(cox, "variance_matrix_"):
        raise ValueError(f"proportional_hazards_test: {type(cox).__name__} is not a fitted CoxPH")
    check_is_fitted(cox, "coef_")
    Z = np.asarray(model[:-1].transform(X) if hasattr(model, "steps") else X, dtype=float) - cox.x_mean_
    event, time = check_array_survival(Z, y)
    risk = RiskSets.build(time, event)
    fit = partial_likelihood(Z, cox.coef_, risk, ties=cox.ties, with_information=False)
    rows = risk.order[risk.event_rows]
    resid = Z[rows] - fit.event_mean[risk.event_group]
    event_times = time[rows]
    if time_transform == "km":
        km_times, km = kaplan_meier_estimator(event, time)
        g = 1.0 - step_lookup(km_times, km, event_times, before=1.0)
    else:
        g = rankdata(event_times)
    g = g - g.mean()
    d, V = rows.size, cox.variance_matrix_
    u = g @ resid
    per = (d * (u @ V)) ** 2 / (d * np.diag(V) * np.sum(g**2))
    overall = float(u @ V @ u * d / np.sum(g**2))
    statistic = np.append(per, overall)
    dof = np.append(np.ones(per.size, dtype=int), per.size)
    names = [str(n) for n in cox.summary_.index]
    if hasattr(model, "steps") and len(model.steps) > 1:
        names = [str(n) for n in model[:-1].get_feature_names_out()]
    return pd.DataFrame(
        {"test_statistic": statistic, "df": dof, "p": chi2.sf(statistic, dof)},
        index=pd.Index([*names, "global"], name="covariate"),
    )
