"""The model card's description of a relapse-pattern model: how it is estimated and how its incidences are made.

The incidences shown beside a survival curve split that curve's risk between the causes
(:mod:`cnslrisk.model.coherent`). The card says so, records how each cause's model was estimated
(ordinary Cox, Firth's penalty and why, or an explicit ridge) and how far the pattern model's own
product-limit incidences, which 0.1 showed, were from one minus the survival beside them on the
training cohort.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.coherent import split_incidence
from cnslrisk.model.outputs import horizon_label

__all__ = ["coherence_gaps", "pattern_section", "SPLIT_METHOD", "CAUSE_SPECIFIC_METHOD"]

SPLIT_METHOD = (
    "the survival model's risk split between the causes: dF_k(t_j) = [S(t_(j-1)) - S(t_j)] x dL_k(t_j) / "
    "sum_l dL_l(t_j), with S the survival model's curve on its event-time grid and dL_k the cause-specific "
    "hazard increments of the pattern model (the shares of its last event time carried forward where it has "
    "none); so the incidences add up to 1 - S(t) and never decrease")
CAUSE_SPECIFIC_METHOD = (
    "the pattern model's own product-limit (Aalen-Johansen type) incidences from its cause-specific hazards "
    "([pattern] incidence = \"cause_specific\"): they need not add up to 1 - S(t) of the survival model beside "
    "them (coherence.after says by how much)")


def coherence_gaps(survival: Any, pattern: Any, X: pd.DataFrame | dict[str, Any], horizons: tuple[float, ...]
                   ) -> dict[str, Any]:
    """``max |sum_k F_k(t|x) - (1 - S(t|x))|`` over rows and the survival model's grid up to the last horizon.

    Parameters
    ----------
    survival, pattern : fitted pipelines
        ``encode`` -> survival model; ``encode`` -> :class:`~cnslrisk.model.pattern.CauseSpecificCox`.
    X : DataFrame
        Covariates (each encoder picks its columns).
    horizons : tuple of float

    Returns
    -------
    dict
        ``product_limit`` (the pattern model's own incidences) and ``split`` (what is shown), each
        ``{"max": ..., "at_horizons": {h: max over rows}}``.
    """
    estimator, model = survival[-1], pattern[-1]
    encoded = survival.named_steps["encode"].encode(X)
    pattern_encoded = pattern.named_steps["encode"].encode(X)
    grid = np.asarray(estimator.unique_times_, dtype=float)
    times = np.unique(np.r_[grid[grid <= max(horizons)], horizons])
    surv = estimator.predict_survival(encoded, times, check_input=False)
    product_limit = model.predict_cumulative_incidence(pattern_encoded, times, check_input=False)
    split = split_incidence(lambda lo, hi, at: estimator.predict_survival(encoded[lo:hi], at, check_input=False),
                            grid, model, model.relative_hazards(pattern_encoded, check_input=False), times)
    at = np.searchsorted(times, horizons)

    def gap(incidence: np.ndarray) -> dict[str, Any]:
        difference = np.abs(incidence.sum(axis=1) - (1.0 - surv))
        return {"max": float(difference.max()),
                "at_horizons": {horizon_label(h): float(difference[:, j].max()) for h, j in zip(horizons, at,
                                                                                                strict=True)}}

    return {"product_limit": gap(product_limit), "split": gap(split)}


def pattern_section(survival: Any, pattern: Any, X: pd.DataFrame, horizons: tuple[float, ...],
                    features: list[str], *, split: bool = True) -> dict[str, Any]:
    """The card's ``pattern_model`` section (also the post-response model's).

    ``split`` says whether the incidences shown are the split ones (else the pattern model's own).
    """
    model = pattern[-1]
    penalties = model.penalties()
    kinds = {entry["penalty"] for entry in penalties.values()}
    if kinds == {"ridge"}:
        estimation = f"ridge-penalised (alpha {model.alpha:g}, asked for in the config)"
    else:
        estimation = ("unpenalised (maximum partial likelihood); Firth's penalised likelihood (Heinze & Schemper "
                      "2001) only for a cause whose partial likelihood is monotone (separation), named in penalties")
    gaps = coherence_gaps(survival, pattern, X, horizons)
    return {
        "type": f"cause-specific Cox models (Efron ties), {estimation}",
        "features": features,
        "causes": [str(c) for c in model.causes_],
        "penalties": penalties,
        "incidence": SPLIT_METHOD if split else CAUSE_SPECIFIC_METHOD,
        "coherence": {
            "before": {**gaps["product_limit"],
                       "what": "max |sum of the pattern model's own product-limit incidences - (1 - survival)| over "
                               "the training cohort and the survival model's event times up to the last horizon "
                               "(how far the two panels were apart when they were separate fits, as in 0.1)"},
            "after": ({**gaps["split"], "what": "the same for the incidences shown (rounding only)"} if split else
                      {**gaps["product_limit"], "what": "the same for the incidences shown: the pattern model's own"}),
        },
        "likely_pattern": "argmax of the cumulative incidences at the last horizon",
    }
