"""The pieces of the cohort contract that the checks are made of: a field, a problem, the error, the spellings.

:mod:`cnslrisk.model.contract` builds schemas from them and re-exports them; the column checks
(:mod:`cnslrisk.model._checks`) use them without going through the schema.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

__all__ = ["Field", "Problem", "CohortValidationError", "BOOLEAN_TRUE", "BOOLEAN_FALSE", "MISSING", "dictionary_json"]

_MAX_SHOWN = 20


@lru_cache(maxsize=1)
def dictionary_json() -> dict[str, Any]:
    """The data dictionary as parsed JSON (``data/data_dictionary.json``), read once."""
    text = resources.files("cnslrisk.data").joinpath("data_dictionary.json").read_text("utf-8")
    return json.loads(text)


BOOLEAN_TRUE: frozenset[str] = frozenset(dictionary_json()["boolean_spellings"]["true"])
BOOLEAN_FALSE: frozenset[str] = frozenset(dictionary_json()["boolean_spellings"]["false"])
MISSING: frozenset[str] = frozenset(dictionary_json()["missing_spellings"])


@dataclass(frozen=True)
class Field:
    """One column of a cohort: its type, allowed values and clinical meaning."""

    name: str
    type: str
    required: bool = True
    role: str = "baseline"
    unit: str | None = None
    description: str = ""
    levels: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    min_exclusive: bool = False
    unique: bool = False
    label: str | None = None

    @property
    def title(self) -> str:
        """The label shown to people (forms, cards): ``label`` when given, else the column name."""
        return self.label or self.name

    def expected(self) -> str:
        """Describe in words what a valid value of this field looks like."""
        return self._expected

    @cached_property
    def _expected(self) -> str:  # once per field: every check of a column words its rules with it
        if self.type == "boolean":
            return "one of {true, false}"
        if self.type == "category":
            return "one of {" + ", ".join(self.levels) + "}" if self.levels else "a category label"
        if self.type in ("number", "integer"):
            kind = "a whole number" if self.type == "integer" else "a number"
            low = "" if self.min is None else (f" > {self.min:g}" if self.min_exclusive else f" >= {self.min:g}")
            high = "" if self.max is None else f" <= {self.max:g}"
            unit = f" ({self.unit})" if self.unit else ""
            return f"{kind}{low}{' and' if low and high else ''}{high}{unit}"
        return "a text value"


@dataclass(frozen=True)
class Problem:
    """One reason a cohort is invalid.

    ``row`` is the 1-based data row (header and ``#`` comment lines not counted); ``None`` for
    problems of the file or of a whole column.
    """

    expected: str
    row: int | None = None
    field: str | None = None
    value: Any = None
    patient_id: str | None = None

    def message(self, *, redact: bool = False) -> str:
        """Format as ``row 12 (patient P-012), field age: -5 is below ...``.

        With ``redact=True`` the patient identifier and the offending value are left out, so the
        message can leave the machine (API responses, logs).
        """
        where = []
        if self.row is not None:
            patient = "" if redact or self.patient_id is None else f" (patient {self.patient_id})"
            where.append(f"row {self.row}{patient}")
        if self.field is not None:
            where.append(f"field {self.field}")
        head = ", ".join(where)
        value = "" if redact or self.value is None else f"{self.value!r} "
        body = f"{value}{self.expected}" if value else self.expected
        return f"{head}: {body}" if head else body


class CohortValidationError(ValueError):
    """Raised once with every problem found in a cohort (the message shows the first 20)."""

    def __init__(self, problems: Sequence[Problem], *, redact: bool = False):
        self.problems = list(problems)
        lines = [p.message(redact=redact) for p in self.problems[:_MAX_SHOWN]]
        more = len(self.problems) - len(lines)
        text = f"{len(self.problems)} problem(s) in cohort:\n  " + "\n  ".join(lines)
        if more:
            text += f"\n  ... and {more} more"
        super().__init__(text)
