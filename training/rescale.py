"""The slope update of a fitted Cox model: what recalibration to a cohort and out-of-fold recalibration share."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.estimators._breslow import RiskSets, breslow_baseline

__all__ = ["rescale_cox"]


def rescale_cox(pipeline: Any, X: pd.DataFrame, y: np.ndarray, slope: float) -> Any:
    """A copy of a fitted Cox-type pipeline with coefficients ``slope x b``, its baseline re-estimated on (X, y).

    The ``slope`` update of :func:`recalibrate_model` (van Houwelingen 2000): the covariate effects keep
    their ratios and the Breslow baseline is refitted with ``slope x lp`` as offset; a
    :class:`~cnslrisk.model.estimators.cox.CoxPH` keeps the sums its delta-method band needs (its
    variance matrix times ``slope**2``).

    Parameters
    ----------
    pipeline : fitted pipeline
        ``encode`` -> a Cox-type estimator with ``to_dict`` / ``from_dict``.
    X : DataFrame
        Covariates the baseline is re-estimated on (the encoder picks its columns).
    y : structured array
        Outcome with fields ``event`` and ``time``.
    slope : float
        Positive factor on the linear predictor.

    Returns
    -------
    pipeline
        A new pipeline; ``pipeline`` is unchanged.
    """
    estimator = pipeline[-1]
    Z = np.asarray(pipeline[:-1].transform(X), dtype=float) - estimator.x_mean_
    params = estimator.to_dict()
    coef = slope * np.asarray(params["coef"], dtype=float)
    baseline = breslow_baseline(Z, coef, RiskSets.build(y["time"], y["event"]))
    params.update(coef=coef.tolist(), unique_times=np.unique(y["time"][y["event"]]).tolist(),
                  cum_baseline_hazard=baseline["cum_hazard"].tolist())
    if "cum_baseline_var" in params:  # CoxPH keeps the sums its confidence band needs
        params.update(cum_baseline_var=baseline["cum_var"].tolist(), cum_risk_mean=baseline["cum_mean"].tolist(),
                      variance_matrix=(slope**2 * np.asarray(params["variance_matrix"])).tolist())
    rescaled = copy.deepcopy(pipeline)
    rescaled.steps[-1] = ("model", type(estimator).from_dict(params))
    return rescaled
