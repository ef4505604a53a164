"""Words and numbers as a clinician reads them: field labels with units, level labels, durations, percentages.

Every output a person reads (the web page through ``GET /v1/model`` and the plain-language field, the
``cnslrisk score`` summary) takes its wording from here, so that a figure is rounded and named the same
way everywhere:

- a field's label is the contract's ``label`` when the model's contract carries one, else the data
  dictionary's description without its trailing parenthesis (``pce`` → "Peripherally
  contrast-enhancing CNS lesion on MRI at infusion"); never the raw column name unless nothing else exists;
- a level's label is the contract's ``level_labels`` entry when given, else the level with underscores
  as spaces (``local_and_distant`` → "local and distant");
- probabilities in whole percent (``<1 %`` and ``>99 %`` at the ends), durations to one decimal at most
  with a singular unit for 1 ("1 month", "1.5 months", "3 months").
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from cnslrisk.model.contract import Field, data_dictionary

__all__ = ["field_label", "level_label", "cause_label", "value_text", "with_unit", "number_text", "duration",
           "percent", "band_text", "join_words"]

_TRAILING_NOTE = re.compile(r"\s*\([^()]*\)\s*$")


def field_label(spec: Field) -> str:
    """The clinical label of a field (see the module docstring), without its unit."""
    label = getattr(spec, "label", None)
    if label:
        return str(label)
    described = _TRAILING_NOTE.sub("", spec.description or "").strip()
    return described or spec.name.replace("_", " ")


def level_label(spec: Field | None, level: Any) -> str:
    """The label of one level of a category field (``local_and_distant`` → "local and distant")."""
    labels: Mapping[str, str] = (getattr(spec, "level_labels", None) or {}) if spec is not None else {}
    return str(labels.get(str(level)) or str(level).replace("_", " "))


@lru_cache(maxsize=256)  # a handful of causes, asked for dozens of times per plain-language field
def cause_label(cause: str) -> str:
    """A relapse-pattern value as words, by the data dictionary's ``pattern`` field ("local and distant")."""
    if cause == "death":  # the dictionary's meaning of this value: death before any CNS progression
        return "death without CNS progression"
    return level_label(data_dictionary().by_name().get("pattern"), cause)


def number_text(value: float, kind: str = "number") -> str:
    """A measured value as written in a chart note: whole numbers for integers, else one decimal at most."""
    if kind == "integer":
        return f"{math.floor(value + 0.5):d}"
    return f"{_half_up(value, 1):g}"


def value_text(spec: Field, value: Any) -> str:
    """One entered value with its unit or level label: ``True`` → "yes", 71.5 → "71.5 years", ``"CR"`` → "CR"."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    if spec.type == "boolean":
        return "yes" if value in (True, 1, 1.0, "true") else "no"
    if spec.type in ("number", "integer"):
        return with_unit(spec, number_text(float(value), spec.type))
    if spec.type == "category":
        return level_label(spec, value)
    return str(value)


def with_unit(spec: Field, text: str) -> str:
    """A number with its field's unit, left out where the label already names it ("ECOG performance status 2",
    not "2 ECOG grade"; "Prior lines of therapy 3", not "3 lines of therapy")."""
    if not spec.unit:
        return text
    named = set(field_label(spec).lower().split()) & set(spec.unit.lower().split())
    return text if named else f"{text} {spec.unit}"


def _half_up(value: float, digits: int) -> float:
    """Round half away from zero (as a person does, and as JavaScript's Math.round for positive values)."""
    scale = 10**digits
    return math.copysign(math.floor(abs(value) * scale + 0.5) / scale, value)


def duration(value: float | None, unit: str) -> str:
    """``1.0`` → "1 month", ``1.52`` → "1.5 months", ``None`` → "not reached" (a median beyond follow-up)."""
    if value is None or not math.isfinite(value):
        return "not reached"
    rounded = _half_up(value, 1)
    singular = unit[:-1] if unit.endswith("s") else unit
    return f"{rounded:g} {singular if rounded == 1 else unit}"


def percent(p: float | None) -> str:
    """A probability in whole percent: "43 %", "<1 %", ">99 %"; "n/a" when missing."""
    if p is None or not math.isfinite(p):
        return "n/a"
    if p < 0.005:
        return "<1 %"
    if p >= 0.995:
        return ">99 %"
    return f"{math.floor(p * 100 + 0.5):d} %"


def band_text(lower: float | None, upper: float | None) -> str:
    """A 95 % band as "9 % – 54 %" ("n/a" when the model has none)."""
    if lower is None or upper is None:
        return "n/a"
    return f"{percent(lower)} – {percent(upper)}"


def join_words(items: list[str]) -> str:
    """``["a", "b", "c"]`` → "a, b and c"."""
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
