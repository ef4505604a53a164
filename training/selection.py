"""The declared rule that picks the model to register from one out-of-fold comparison, and the null-model check.

Default rule (``ibs``): among the candidates whose out-of-fold calibration slope lies inside the
promotion gate's band, the one with the lowest out-of-fold integrated Brier score; candidates within
``margin`` of the lowest count as equal and the simplest of them wins (cox < coxnet < rsf). At the
sizes this tool is used at (tens to hundreds of events) every paired interval between candidates
contains 0, so the margin, not the interval, breaks ties. When no candidate's slope is inside the
band, the least miscalibrated one (slope nearest 1 on the log scale) is chosen and the run says so;
it is registered but never made champion.

Rule ``c_index``: the same with the highest out-of-fold Harrell's C.

A candidate **beats the null model** (the training Kaplan-Meier curve for everyone) when the
one-sided 95 % corrected lower bound of its out-of-fold Harrell's C is above 0.5 and its integrated
Brier score is no worse than the null model's. Without that, no champion is set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .comparison import NULL, PUBLISHED, Comparison

__all__ = ["Selection", "select", "RULES", "DEFAULT_MARGIN"]

RULES = ("ibs", "c_index")
# the smallest out-of-fold IBS difference worth a more complex model: about a tenth of the spread between
# knowing nothing (about 0.25) and a well-discriminating model here, and under the fold-to-fold SE at n = 60
DEFAULT_MARGIN = {"ibs": 0.005, "c_index": 0.01}


@dataclass(frozen=True)
class Selection:
    """What the rule decided and why.

    Attributes
    ----------
    rule : str
        The rule in words (for the card and the run log).
    chosen : str
        The chosen kind.
    reason : str
        Why, with the figures.
    beats_null : bool
        Whether the chosen candidate beats the null model (see the module docstring).
    calibrated : bool
        Whether its out-of-fold calibration slope lies in the band.
    champion_eligible : bool
        ``beats_null and calibrated``: only then may training make it champion.
    paired : dict
        ``"<kind>_vs_<kind>"`` -> metric -> {mean, ci_lower, ci_upper}: every candidate and reference
        against the null model and against the chosen candidate.
    notes : list of str
        Further statements (e.g. the published model doing better than the chosen one).
    """

    rule: str
    chosen: str
    reason: str
    beats_null: bool
    calibrated: bool
    paired: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def champion_eligible(self) -> bool:
        return self.beats_null and self.calibrated

    def to_dict(self) -> dict[str, Any]:
        """The card's ``selection`` section."""
        return {"rule": self.rule, "chosen": self.chosen, "reason": self.reason, "beats_null": self.beats_null,
                "calibrated": self.calibrated, "champion_eligible": self.champion_eligible,
                "paired": self.paired, "notes": list(self.notes)}


def _describe(rule: str, margin: float, band: tuple[float, float]) -> str:
    measure = "integrated Brier score (lowest)" if rule == "ibs" else "Harrell's C (highest)"
    return (f"out-of-fold {measure} among candidates with out-of-fold calibration slope in "
            f"[{band[0]:g}, {band[1]:g}]; differences within {margin:g} go to the simpler model "
            "(cox < coxnet < rsf); champion only if it beats the Kaplan-Meier null model")


def select(
    comparison: Comparison,
    candidates: Sequence[str],
    *,
    rule: str = "ibs",
    margin: float | None = None,
    slope_band: tuple[float, float] = (0.7, 1.3),
) -> Selection:
    """Apply the selection rule to a comparison.

    Parameters
    ----------
    comparison : Comparison
        Out-of-fold figures of the candidates and of the ``null`` model (required).
    candidates : sequence of str
        The selectable kinds, simplest first.
    rule : {"ibs", "c_index"}, default="ibs"
    margin : float, optional
        Differences within it go to the simpler model; default :data:`DEFAULT_MARGIN` of the rule.
    slope_band : (float, float), default=(0.7, 1.3)
        Acceptable out-of-fold calibration slopes (the promotion gate's band).

    Returns
    -------
    Selection
    """
    if rule not in RULES:
        raise ValueError(f"parameter rule of select must be one of {{{', '.join(RULES)}}}; got {rule!r}")
    if NULL not in comparison.kinds:
        raise ValueError("the comparison must include the null model")
    margin = DEFAULT_MARGIN[rule] if margin is None else float(margin)
    low, high = slope_band
    metric, sign = ("ibs", 1.0) if rule == "ibs" else ("c_index", -1.0)
    figure = {k: comparison.figure(k, metric)["mean"] for k in (*candidates, NULL)}
    slope = {k: comparison.figure(k, "calibration_slope")["mean"] for k in candidates}
    calibrated = [k for k in candidates if np.isfinite(slope[k]) and low <= slope[k] <= high]
    pool = [k for k in calibrated if np.isfinite(figure[k])]
    if pool:
        best = min(sign * figure[k] for k in pool)
        chosen = next(k for k in pool if sign * figure[k] <= best + margin)
        reason = (f"{chosen}: out-of-fold {metric} {figure[chosen]:.3f}, the best among candidates calibrated "
                  f"in [{low:g}, {high:g}] ({', '.join(f'{k} {figure[k]:.3f}' for k in pool)}; within {margin:g} "
                  f"counts as equal); calibration slope {slope[chosen]:.2f}")
    else:
        distance = {k: abs(np.log(slope[k])) if np.isfinite(slope[k]) and slope[k] > 0 else np.inf for k in candidates}
        chosen = min(candidates, key=lambda k: distance[k])
        reason = (f"no candidate's out-of-fold calibration slope lies in [{low:g}, {high:g}] "
                  f"({', '.join(f'{k} {slope[k]:.2f}' for k in candidates)}): {chosen} is the least miscalibrated; "
                  "it is registered but not made champion")
    c_lower = comparison.lower_bound(chosen, "c_index")
    chosen_ibs, null_ibs = (comparison.figure(k, "ibs")["mean"] for k in (chosen, NULL))
    beats = bool(np.isfinite(c_lower) and c_lower > 0.5 and chosen_ibs <= null_ibs)
    reason += (f"; against the null model: C lower 95 % bound {c_lower:.3f} (must exceed 0.5), IBS "
               f"{chosen_ibs:.3f} vs {null_ibs:.3f} -> {'beats' if beats else 'does NOT beat'} the null model")
    paired = {f"{k}_vs_{NULL}": comparison.paired(k, NULL) for k in comparison.kinds if k != NULL}
    paired.update({f"{k}_vs_{chosen}": comparison.paired(k, chosen) for k in comparison.kinds
                   if k not in (chosen, NULL)})
    notes = []
    if PUBLISHED in comparison.kinds:
        published = comparison.figure(PUBLISHED, metric)["mean"]
        if np.isfinite(published) and sign * published < sign * figure[chosen] - margin:
            notes.append(f"the published model (Cox on pCE and LMD) has a better out-of-fold {metric} "
                         f"({published:.3f}) than the chosen {chosen} ({figure[chosen]:.3f}): consider training it "
                         "(features.binary = [\"pce\", \"lmd\"], no other covariates)")
    return Selection(rule=_describe(rule, margin, slope_band), chosen=chosen, reason=reason, beats_null=beats,
                     calibrated=chosen in calibrated, paired=paired, notes=tuple(notes))
