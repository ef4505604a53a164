"""Survival statistics of the report: Kaplan-Meier medians with 95 % CIs, log-rank tests, Cox tables."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sksurv.compare import compare_survival
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from cnslrisk.model.estimators import CoxPH
from cnslrisk.model.features import FeatureEncoder
from cnslrisk.model.summary import coefficient_table
from cnslrisk.training.sample_size import assess_sample_size

__all__ = ["km_summary", "logrank", "cox_models", "SAMPLE_SIZE_TIMEPOINT"]

SAMPLE_SIZE_TIMEPOINT = 6.0  # months: the time point of Riley's criterion (iii), the middle default horizon
_TOL = 1e-10  # a Kaplan-Meier value within this of 0.5 counts as having reached it (cumulative-product rounding)


def _first_at_or_below(time: np.ndarray, values: np.ndarray, level: float = 0.5) -> float | None:
    hit = np.flatnonzero(values <= level + _TOL)
    return float(time[hit[0]]) if hit.size else None


def km_summary(event: np.ndarray, time: np.ndarray) -> dict[str, Any]:
    """Size, events and Kaplan-Meier median with its 95 % confidence interval.

    The median is the first time the estimate is at or below 0.5 (lifelines' convention; R's
    survfit takes the midpoint of a flat stretch at exactly 0.5). Its interval is Brookmeyer and
    Crowley's, read off the pointwise log(-log) band: the lower limit is the first time the lower
    band is at or below 0.5, the upper limit the first time the upper band is. A value that is not
    reached is None.

    Parameters
    ----------
    event : ndarray of bool, shape (n_samples,)
        Event indicator.
    time : ndarray of float, shape (n_samples,)
        Observed times.

    Returns
    -------
    dict
        ``n``, ``events``, ``median``, ``median_lower``, ``median_upper``.

    References
    ----------
    .. [1] Kaplan, E. L. and Meier, P. (1958). Nonparametric estimation from incomplete observations.
       JASA, 53(282), 457-481.
    .. [2] Brookmeyer, R. and Crowley, J. (1982). A confidence interval for the median survival time.
       Biometrics, 38(1), 29-41.
    """
    event, time = np.asarray(event, dtype=bool), np.asarray(time, dtype=float)
    out: dict[str, Any] = {"n": int(time.size), "events": int(event.sum()),
                           "median": None, "median_lower": None, "median_upper": None}
    if not event.any():
        return out
    t, s, band = kaplan_meier_estimator(event, time, conf_type="log-log")
    out.update(median=_first_at_or_below(t, s), median_lower=_first_at_or_below(t, band[0]),
               median_upper=_first_at_or_below(t, band[1]))
    return out


def logrank(event: np.ndarray, time: np.ndarray, groups: Sequence[Any]) -> dict[str, Any]:
    """Log-rank test of equal survival across the groups present.

    Parameters
    ----------
    event, time : ndarray, shape (n_samples,)
        Outcome.
    groups : array-like, shape (n_samples,)
        Group label of each patient.

    Returns
    -------
    dict
        ``chi2``, ``df`` and ``p``; all None with a ``note`` when fewer than two groups are present
        or there is no event.

    References
    ----------
    .. [1] Mantel, N. (1966). Evaluation of survival data and two new rank order statistics arising
       in its consideration. Cancer Chemotherapy Reports, 50(3), 163-170.
    """
    labels = np.asarray(groups).astype(str)
    if np.unique(labels).size < 2 or not np.asarray(event, dtype=bool).any():
        return {"chi2": None, "df": None, "p": None, "note": "not testable (fewer than two groups or no event)"}
    chi2, p = compare_survival(Surv.from_arrays(event=event, time=time), labels)
    return {"chi2": float(chi2), "df": int(np.unique(labels).size - 1), "p": float(p)}


def _kinds(columns: Sequence[str], types: dict[str, str]) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {"binary": [], "categorical": [], "numeric": []}
    for name in columns:
        kind = {"boolean": "binary", "category": "categorical"}.get(types[name], "numeric")
        kinds[kind].append(name)
    return kinds


def _fit(df: pd.DataFrame, columns: Sequence[str], types: dict[str, str]) -> dict[str, Any]:
    data = df.dropna(subset=list(columns))
    encoder = FeatureEncoder(**_kinds(columns, types))
    X = encoder.fit_transform(data[list(columns)])
    y = Surv.from_arrays(event=data["pfs1_event"].to_numpy(bool), time=data["pfs1_months"].to_numpy(float))
    out: dict[str, Any] = {"n": int(len(data)), "events": int(y["event"].sum()), "terms": {}, "note": ""}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            model = CoxPH().fit(X, y)
        except ValueError as exc:
            out["note"] = f"not estimable: {exc}"
            return out
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        out["note"] = "did not converge (a covariate may separate events); estimates unreliable"
    with np.errstate(over="ignore"):  # a diverging coefficient gives an infinite HR bound (reported as None)
        table = coefficient_table(model.coef_, model.standard_errors_, encoder.get_feature_names_out())
    for term, row in table.iterrows():
        out["terms"][term] = {"coef": row["coef"], "hr": row["exp(coef)"], "se": row["se(coef)"],
                              "ci_lower": row["exp(coef) lower 95%"], "ci_upper": row["exp(coef) upper 95%"],
                              "p": row["p"]}
    out["parameters"] = int(table.shape[0])
    out["linear_predictor"] = model.predict(X)
    out["y"] = y
    return out


def cox_models(df: pd.DataFrame, covariates: Sequence[str], types: dict[str, str]) -> dict[str, Any]:
    """Univariable Cox models of each covariate and the multivariable model of all, for CNS-PFS1.

    Each model is fitted (Efron ties, Wald CIs) on the patients with no missing value in its
    covariates. The sample-size caveat counts events per parameter of the multivariable model and
    Riley et al.'s minimum n at :data:`SAMPLE_SIZE_TIMEPOINT` months.

    Parameters
    ----------
    df : pandas.DataFrame
        Checked cohort (``pfs1_months``, ``pfs1_event`` and the covariates).
    covariates : sequence of str
        Covariate columns, in display order.
    types : dict of str to str
        Data-dictionary type of each covariate (boolean, category, number, integer).

    Returns
    -------
    dict
        ``univariable`` (covariate -> model), ``multivariable`` (model) and ``sample_size``; a model
        is ``n``, ``events``, ``terms`` (term -> coef, hr, se, ci_lower, ci_upper, p) and ``note``.

    References
    ----------
    .. [1] Riley, R. D. et al. (2019). Minimum sample size for developing a multivariable prediction
       model: Part II - binary and time-to-event outcomes. Stat Med, 38(7), 1276-1296.
    .. [2] Peduzzi, P. et al. (1995). Importance of events per independent variable in proportional
       hazards regression analysis II. J Clin Epidemiol, 48(12), 1503-1510.
    """
    univariable = {name: _public(_fit(df, [name], types)) for name in covariates}
    full = _fit(df, covariates, types)
    size: dict[str, Any] = {"events": full["events"], "parameters": full.get("parameters")}
    if "parameters" in full:
        result = assess_sample_size(full["y"], parameters=full["parameters"], timepoint=SAMPLE_SIZE_TIMEPOINT,
                                    linear_predictor=full["linear_predictor"])
        size.update(events_per_parameter=result.events_per_parameter, riley_minimum_n=result.minimum,
                    adequate=result.adequate, timepoint=SAMPLE_SIZE_TIMEPOINT)
    return {"univariable": univariable, "multivariable": _public(full), "sample_size": size}


def _public(model: dict[str, Any]) -> dict[str, Any]:
    """A fitted model's summary without the per-patient arrays (which never leave this module)."""
    return {k: v for k, v in model.items() if k not in ("linear_predictor", "y")}
