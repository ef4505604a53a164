"""The promotion gate: move the ``champion`` alias to the challenger only when it is no worse on the SAME data.

Figures from two different cohorts are never compared as if they were one. The challenger's
out-of-fold C (from training's comparison, the same definition for every model type) is compared with

- the champion's out-of-fold C when both were trained on the same cohort (same SHA-256);
- otherwise the champion's external C on the challenger's training cohort, which the caller
  passes as ``cohort`` (identified by its SHA-256; only its hash is stored with a model);

and, when a ``holdout`` cohort is given, both models are also evaluated externally on it (C and
calibration slope). The challenger's out-of-fold calibration slope must lie in the configured band,
and a challenger that did not beat the Kaplan-Meier null model out of fold is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cnslrisk.registry import (
    CHALLENGER,
    CHAMPION,
    alias_version,
    load_risk_model,
    set_alias,
    set_version_tags,
    version_tags,
)

from .config import PromotionConfig

if TYPE_CHECKING:
    from .config import TrainingConfig

__all__ = ["PromotionDecision", "promote", "decide"]

_C_TAG = "validation.cv_c_index"
_SLOPE_TAG = "validation.cv_calibration_slope"
_BEATS_NULL_TAG = "selection.beats_null"
_SHA_TAG = "training_data.sha256"


@dataclass(frozen=True)
class PromotionDecision:
    """What ``promote`` decided and why (``basis`` names the data each comparison used)."""

    promoted: bool
    reason: str
    name: str
    challenger: str
    champion_before: str | None
    forced: bool = False
    basis: str = ""


def decide(
    challenger_c: float, challenger_slope: float, champion_c: float | None, gate: PromotionConfig,
    *, basis: str = "out-of-fold C of both on the same training cohort",
) -> tuple[bool, str]:
    """Apply the gate to two figures of the SAME data; returns (promote?, reason).

    The challenger must have an out-of-fold calibration slope inside ``[slope_lower, slope_upper]``
    and a C no worse than the champion's by more than ``c_index_margin``; ``basis`` says which
    figures are compared and is repeated in the reason.
    """
    if not gate.slope_lower <= challenger_slope <= gate.slope_upper:
        return False, (f"challenger's out-of-fold calibration slope {challenger_slope:.3f} is outside "
                       f"[{gate.slope_lower:g}, {gate.slope_upper:g}]")
    if champion_c is None:
        return True, "no champion yet: the first model that passes the calibration gate becomes champion"
    if challenger_c < champion_c - gate.c_index_margin:
        return False, (f"challenger's C {challenger_c:.3f} is worse than the champion's {champion_c:.3f} "
                       f"by more than the margin {gate.c_index_margin:g} ({basis})")
    return True, (f"challenger's C {challenger_c:.3f} vs champion's {champion_c:.3f} (margin "
                  f"{gate.c_index_margin:g}; {basis}) and out-of-fold slope {challenger_slope:.3f} within "
                  f"[{gate.slope_lower:g}, {gate.slope_upper:g}]")


def _external(name: str, version: str, path: str | os.PathLike[str], config: TrainingConfig | None
              ) -> tuple[float, float, str]:
    """Harrell's C and the calibration slope at the last horizon of a registered version on a cohort, and its hash.

    The same definitions as training's out-of-fold comparison, whose figures the gate compares them with.
    """
    from cnslrisk.model.outputs import horizon_label

    from .evaluate import load_cohort, point_figures

    model, _ = load_risk_model(f"models:/{name}/{version}")
    data = load_cohort(model, path, config)
    summary = point_figures(model, data.X, data.y)["summary"]
    last = summary["horizons"][horizon_label(max(model.horizons))]
    return summary["c_index"], last["calibration_slope"], data.provenance["sha256"]


def _training_comparison(name: str, challenger: str, champion: str, tags: dict[str, str], champion_tags: dict[str, str],
                         cohort: str | os.PathLike[str] | None, config: TrainingConfig | None
                         ) -> tuple[float | None, str]:
    """The champion's C on the challenger's training cohort, or None and why it cannot be had."""
    sha, champion_sha = tags.get(_SHA_TAG), champion_tags.get(_SHA_TAG)
    if cohort is not None:
        from cnslrisk.model import read_cohort

        given = read_cohort(cohort).attrs["sha256"]
        if given != sha:
            raise ValueError(f"cohort {cohort}: sha256 {given[:12]} is not the challenger's training cohort "
                             f"({(sha or 'unknown')[:12]}); pass it as the held-out cohort instead")
        if champion_sha != sha:
            c = _external(name, champion, cohort, config)[0]
            return c, f"champion's external C on the challenger's training cohort {sha[:12]}"
    if champion_sha == sha and _C_TAG in champion_tags:
        return float(champion_tags[_C_TAG]), f"out-of-fold C of both on the same training cohort {sha[:12]}"
    return None, (f"champion (trained on {(champion_sha or 'unknown')[:12]}) and challenger (trained on "
                  f"{(sha or 'unknown')[:12]}) have different training cohorts; their figures are not comparable: "
                  "pass the challenger's training cohort (--cohort) to evaluate the champion on it")


def _holdout_comparison(name: str, challenger: str, champion: str | None, holdout: str | os.PathLike[str],
                        gate: PromotionConfig, config: TrainingConfig | None, trained_on: set[str | None]
                        ) -> tuple[bool, str]:
    from cnslrisk.model import read_cohort

    if read_cohort(holdout).attrs["sha256"] in trained_on:
        raise ValueError(f"holdout {holdout}: one of the two models was trained on this cohort; a held-out cohort "
                         "must be new to both (pass a model's training cohort as --cohort)")
    c_new, slope_new, sha = _external(name, challenger, holdout, config)
    where = f"held-out cohort {sha[:12]}"
    if not gate.slope_lower <= slope_new <= gate.slope_upper:
        return False, f"challenger's calibration slope on the {where} {slope_new:.3f} is outside the band"
    if champion is None:
        return True, f"challenger's C on the {where} {c_new:.3f}"
    c_old = _external(name, champion, holdout, config)[0]
    ok = c_new >= c_old - gate.c_index_margin
    return ok, (f"on the {where}: challenger's C {c_new:.3f} vs champion's {c_old:.3f} "
                f"({'within' if ok else 'worse than'} the margin {gate.c_index_margin:g})")


def promote(
    name: str, *, gate: PromotionConfig, version: str | None = None, force: bool = False,
    cohort: str | os.PathLike[str] | None = None, holdout: str | os.PathLike[str] | None = None,
    config: TrainingConfig | None = None,
) -> PromotionDecision:
    """Move ``champion`` of the registered model ``name`` to ``version`` (default: the ``challenger``).

    Parameters
    ----------
    name : str
        Registered model name.
    gate : PromotionConfig
        Margin on C and band for the calibration slope.
    version : str, optional
        Default: the version with alias ``challenger``.
    force : bool, default: False
        Promote whatever the gate says (recorded as forced).
    cohort : path-like, optional
        The challenger's training cohort (checked by SHA-256): needed when the champion was trained on
        another cohort, to evaluate the champion on it.
    holdout : path-like, optional
        A cohort neither model was trained on: both are evaluated on it and must pass too.
    config : TrainingConfig, optional
        Maps the cohort's column names.

    Returns
    -------
    PromotionDecision
        The decision, its reason and basis are also recorded as tags on the challenger version.

    Raises
    ------
    ValueError
        When there is no challenger, the version lacks validation figures (and no held-out cohort is
        given), or ``cohort`` is not the challenger's training cohort.
    """
    challenger = version or alias_version(name, CHALLENGER)
    if challenger is None:
        raise ValueError(f"registered model {name}: no version has the alias {CHALLENGER!r}; run cnslrisk train first")
    champion = alias_version(name, CHAMPION)
    if champion == challenger:
        return PromotionDecision(False, f"version {challenger} is already the champion", name, challenger, champion)
    tags = version_tags(name, challenger)
    if _C_TAG not in tags and holdout is None:
        raise ValueError(f"registered model {name} version {challenger}: no {_C_TAG} tag; was it trained by cnslrisk? "
                         "(a recalibrated version is compared on a held-out cohort: pass --holdout)")
    verdicts: list[tuple[bool, str]] = []
    bases: list[str] = []
    if tags.get(_BEATS_NULL_TAG) == "false":
        verdicts.append((False, "the challenger does not beat the Kaplan-Meier null model out of fold (see its "
                                "model card's selection section)"))
    if _C_TAG in tags:
        champion_c, basis = None, "no champion"
        if champion is not None:
            champion_tags = version_tags(name, champion)
            champion_c, basis = _training_comparison(name, challenger, champion, tags, champion_tags, cohort, config)
        if champion is not None and champion_c is None:
            verdicts.append((False, basis))
        else:
            verdicts.append(decide(float(tags[_C_TAG]), float(tags[_SLOPE_TAG]), champion_c, gate, basis=basis))
        bases.append(basis)
    if holdout is not None:
        # a recalibrated version was also fitted (its baseline) on its recalibration cohort
        versions = [tags] + ([version_tags(name, champion)] if champion is not None else [])
        trained_on = {t.get(key) for t in versions for key in (_SHA_TAG, "recalibration.cohort_sha256")} - {None}
        verdicts.append(_holdout_comparison(name, challenger, champion, holdout, gate, config, trained_on))
        bases.append("both external on a held-out cohort")
    promoted = all(ok for ok, _ in verdicts)
    reason = "; ".join(text for _, text in verdicts)
    if force and not promoted:
        promoted, reason = True, f"FORCED despite the gate: {reason}"
    if promoted:
        set_alias(name, CHAMPION, challenger)
    set_version_tags(name, challenger, {
        "promotion.decision": "promoted" if promoted else "refused", "promotion.reason": reason[:4900],
        "promotion.forced": str(force).lower(), "promotion.basis": "; ".join(bases)})
    return PromotionDecision(promoted, reason, name, challenger, champion, forced=force, basis="; ".join(bases))
