"""The promotion gate: move the ``champion`` alias to the challenger only when it is no worse."""

from __future__ import annotations

from dataclasses import dataclass

from .config import PromotionConfig
from .registry import CHALLENGER, CHAMPION, alias_version, set_alias

__all__ = ["PromotionDecision", "promote", "decide"]

_C_TAG = "validation.corrected_c_index"
_SLOPE_TAG = "validation.corrected_calibration_slope"


@dataclass(frozen=True)
class PromotionDecision:
    """What ``promote`` decided and why."""

    promoted: bool
    reason: str
    name: str
    challenger: str
    champion_before: str | None
    forced: bool = False


def decide(
    challenger_c: float, challenger_slope: float, champion_c: float | None, gate: PromotionConfig
) -> tuple[bool, str]:
    """Apply the gate to optimism-corrected figures; returns (promote?, reason).

    The challenger must have a corrected calibration slope inside ``[slope_lower, slope_upper]``
    and a corrected C no worse than the champion's by more than ``c_index_margin``.
    """
    if not gate.slope_lower <= challenger_slope <= gate.slope_upper:
        return False, (f"challenger's corrected calibration slope {challenger_slope:.3f} is outside "
                       f"[{gate.slope_lower:g}, {gate.slope_upper:g}]")
    if champion_c is None:
        return True, "no champion yet: the first model that passes the calibration gate becomes champion"
    if challenger_c < champion_c - gate.c_index_margin:
        return False, (f"challenger's corrected C {challenger_c:.3f} is worse than the champion's {champion_c:.3f} "
                       f"by more than the margin {gate.c_index_margin:g}")
    return True, (f"challenger's corrected C {challenger_c:.3f} vs champion's {champion_c:.3f} (margin "
                  f"{gate.c_index_margin:g}) and corrected slope {challenger_slope:.3f} within "
                  f"[{gate.slope_lower:g}, {gate.slope_upper:g}]")


def promote(
    name: str, *, gate: PromotionConfig, version: str | None = None, force: bool = False
) -> PromotionDecision:
    """Move ``champion`` of the registered model ``name`` to ``version`` (default: the ``challenger``).

    The decision and its reason are recorded as tags on the challenger version; ``force``
    promotes whatever the gate says and is recorded as forced.

    Raises
    ------
    ValueError
        When there is no challenger, or the version lacks validation figures.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    challenger = version or alias_version(name, CHALLENGER)
    if challenger is None:
        raise ValueError(f"registered model {name}: no version has the alias {CHALLENGER!r}; run cnslrisk train first")
    champion = alias_version(name, CHAMPION)
    if champion == challenger:
        return PromotionDecision(False, f"version {challenger} is already the champion", name, challenger, champion)
    figures = client.get_model_version(name, challenger).tags
    if _C_TAG not in figures:
        raise ValueError(f"registered model {name} version {challenger}: no {_C_TAG} tag; was it trained by cnslrisk?")
    champion_c = float(client.get_model_version(name, champion).tags[_C_TAG]) if champion else None
    promoted, reason = decide(float(figures[_C_TAG]), float(figures[_SLOPE_TAG]), champion_c, gate)
    if force and not promoted:
        promoted, reason = True, f"FORCED despite the gate: {reason}"
    if promoted:
        set_alias(name, CHAMPION, challenger)
    for key, value in (("promotion.decision", "promoted" if promoted else "refused"),
                       ("promotion.reason", reason), ("promotion.forced", str(force).lower())):
        client.set_model_version_tag(name, challenger, key, value)
    return PromotionDecision(promoted, reason, name, challenger, champion, forced=force)
