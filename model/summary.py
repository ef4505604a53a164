"""The lifelines-style coefficient table of a Cox model: coefficients, hazard ratios, Wald CIs and p-values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["coefficient_table", "summary"]


def coefficient_table(coef: np.ndarray, se: np.ndarray, names: Sequence[str], *, level: float = 0.95) -> pd.DataFrame:
    """Wald inference for log hazard ratios, one row per covariate.

    The interval is ``coef ± z_{(1+level)/2} se`` and is exponentiated for the hazard ratio;
    ``z = coef / se`` with a two-sided normal p-value.

    Parameters
    ----------
    coef : ndarray, shape (n_features,)
        Log hazard ratios.
    se : ndarray, shape (n_features,)
        Their standard errors.
    names : sequence of str
        Covariate names (the index).
    level : float, default=0.95
        Confidence level; it also sets the column labels (``coef lower 95%``).

    Returns
    -------
    pandas.DataFrame
        Columns ``coef, exp(coef), se(coef), coef lower 95%, coef upper 95%, exp(coef) lower 95%,
        exp(coef) upper 95%, z, p, -log2(p)``, as lifelines' ``CoxPHFitter.summary`` names them.

    References
    ----------
    .. [1] Davidson-Pilon, C. lifelines: survival analysis in Python. JOSS 4(40), 1317 (2019).
    """
    if not 0 < level < 1:
        raise ValueError(f"parameter level of coefficient_table must be in (0, 1); got {level!r}")
    coef = np.asarray(coef, dtype=float)
    se = np.asarray(se, dtype=float)
    crit = norm.ppf(0.5 + level / 2)
    z = coef / se
    p = 2 * norm.sf(np.abs(z))
    pct = f"{100 * level:g}%"
    lower, upper = coef - crit * se, coef + crit * se
    table = pd.DataFrame(
        {
            "coef": coef,
            "exp(coef)": np.exp(coef),
            "se(coef)": se,
            f"coef lower {pct}": lower,
            f"coef upper {pct}": upper,
            f"exp(coef) lower {pct}": np.exp(lower),
            f"exp(coef) upper {pct}": np.exp(upper),
            "z": z,
            "p": p,
            "-log2(p)": -np.log2(p),
        },
        index=pd.Index([str(n) for n in names], name="covariate"),
    )
    return table


def summary(model: Any, *, level: float = 0.95) -> pd.DataFrame:
    """Coefficient table of a fitted :class:`~cnslrisk.model.estimators.CoxPH` or of a pipeline ending in one.

    Parameters
    ----------
    model : CoxPH or SurvivalPipeline
        Fitted model; for a pipeline the names come from its feature encoder.
    level : float, default=0.95
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        See :func:`coefficient_table`.
    """
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if not hasattr(final, "standard_errors_"):
        raise ValueError(
            f"summary: {type(final).__name__} has no standard errors; only a fitted CoxPH gives a coefficient table"
        )
    names = final.summary_.index
    if hasattr(model, "steps") and len(model.steps) > 1:
        names = model[:-1].get_feature_names_out()
    return coefficient_table(final.coef_, final.standard_errors_, names, level=level)
