"""The cohort data contract: fields, types, bounds and the one validator every entry point calls.

The canonical fields live in ``data/data_dictionary.json``. A :class:`Schema` is built from
that dictionary (:func:`data_dictionary`) or, for a cohort with other column names, from a
training config (:meth:`Schema.for_columns`): fields named in the dictionary keep its rules,
other columns are checked by the kind the config declares for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Any

import numpy as np
import pandas as pd

from ._checks import check_frame, check_records
from .fields import BOOLEAN_FALSE, BOOLEAN_TRUE, MISSING, CohortValidationError, Field, Problem, dictionary_json

__all__ = [
    "Field",
    "Problem",
    "CohortValidationError",
    "Schema",
    "data_dictionary",
    "check_cohort",
    "to_surv",
    "BOOLEAN_TRUE",
    "BOOLEAN_FALSE",
    "MISSING",
]


def _field_from_json(entry: Mapping[str, Any]) -> Field:
    return Field(
        name=entry["name"],
        type=entry["type"],
        required=entry.get("required", True),
        role=entry.get("role", "baseline"),
        unit=entry.get("unit"),
        description=entry.get("description", ""),
        levels=tuple(entry.get("levels", ())),
        min=entry.get("min"),
        max=entry.get("max"),
        min_exclusive=entry.get("min_exclusive", False),
        unique=entry.get("unique", False),
    )


@dataclass(frozen=True)
class Schema:
    """A set of fields plus the names of the outcome columns, checked together.

    Parameters
    ----------
    fields : tuple of Field
        The columns a cohort may have.
    id, time, event, cause : str or None
        Which columns hold the identifier, the outcome time, the event indicator and the
        competing event type. ``event`` may be None when ``cause`` is given (then
        event = cause != censored).
    censored : str
        The value of ``cause`` that means no event.
    post_progression : tuple of str
        Fields that may only be filled after a CNS progression.
    passthrough : tuple of str
        Known columns that are accepted but neither checked nor converted (e.g. the data
        dictionary's other fields when scoring: a full cohort row may be sent, only the
        model's covariates matter).
    """

    fields: tuple[Field, ...]
    id: str | None = "patient_id"
    time: str | None = "pfs1_months"
    event: str | None = "pfs1_event"
    cause: str | None = "pattern"
    censored: str = "none"
    post_progression: tuple[str, ...] = field(default=())
    passthrough: tuple[str, ...] = field(default=())

    def __getitem__(self, name: str) -> Field:
        return self.by_name()[name]

    def by_name(self) -> dict[str, Field]:
        """Fields keyed by column name."""
        return dict(self._by_name)

    @cached_property
    def _by_name(self) -> dict[str, Field]:
        return {f.name: f for f in self.fields}

    @property
    def names(self) -> list[str]:
        """Column names, in dictionary order."""
        return [f.name for f in self.fields]

    @classmethod
    def for_columns(
        cls,
        *,
        binary: Iterable[str] = (),
        categorical: Iterable[str] = (),
        numeric: Iterable[str] = (),
        id: str | None = None,
        time: str | None = None,
        event: str | None = None,
        cause: str | None = None,
        censored: str = "none",
        time_unit: str | None = None,
    ) -> Schema:
        """Build a schema for a cohort described by a training config.

        Columns that carry a data-dictionary name keep the dictionary's rules; any other
        column is checked by the kind declared for it (binary: a boolean; categorical: any
        label; numeric: any finite number). Outcome columns are required; features are too,
        since a model cannot use a missing covariate.
        """
        canonical = data_dictionary().by_name()

        def make(name: str, kind: str, role: str, **extra: Any) -> Field:
            if name in canonical:
                return replace(canonical[name], required=True)
            return Field(name=name, type=kind, role=role, **extra)

        fields: dict[str, Field] = {}
        if id:
            fields[id] = replace(make(id, "string", "identifier"), required=False, unique=True)
        if time:
            fields[time] = make(time, "number", "outcome", min=0.0, min_exclusive=True, unit=time_unit)
        if event:
            fields[event] = make(event, "boolean", "outcome")
        if cause:
            levels = canonical[cause].levels if cause in canonical else ()
            fields[cause] = replace(make(cause, "category", "relapse pattern"), levels=levels, required=event is None)
        for name in binary:
            fields[name] = make(name, "boolean", "baseline")
        for name in categorical:
            fields[name] = make(name, "category", "baseline")
        for name in numeric:
            fields[name] = make(name, "number", "baseline")
        return cls(tuple(fields.values()), id=id, time=time, event=event, cause=cause, censored=censored)

    def check(self, df: pd.DataFrame, *, require_outcome: bool = True, allow_unknown: bool = False) -> pd.DataFrame:
        """Validate ``df`` and return it with every column converted to its type.

        Parameters
        ----------
        df : pandas.DataFrame
            The cohort as read (strings from CSV, typed values from Parquet or JSON).
        require_outcome : bool, default=True
            Whether outcome and post-infusion columns must be present (False when scoring).
        allow_unknown : bool, default=False
            Whether columns that are not in the schema are tolerated (they are passed through
            unchecked, e.g. a registry's own columns carried along in batch scoring).

        Returns
        -------
        pandas.DataFrame
            Booleans as ``bool`` (``boolean`` when an optional column has gaps), numbers as
            ``float64``, integers as ``int64`` (``Int64`` with gaps), categories and text as
            ``object``.

        Raises
        ------
        CohortValidationError
            With every problem found: missing or unknown columns, wrong types, out-of-range
            values, unknown categories, duplicate identifiers and inconsistent outcomes.
        """
        return check_frame(self, df, require_outcome=require_outcome, allow_unknown=allow_unknown)

    def check_records(self, records: Sequence[Mapping[str, Any]], *, require_outcome: bool = True,
                      allow_unknown: bool = False) -> dict[str, Any]:
        """Validate JSON-like records (an API body) without building a DataFrame.

        The same rules and messages as :meth:`check` on ``pandas.DataFrame(records)``; one record is
        checked in microseconds, which is what keeps a one-patient API request fast.

        Parameters
        ----------
        records : sequence of dict
            One dict per row, field name to JSON value (a key may be absent).
        require_outcome, allow_unknown : bool
            As in :meth:`check`.

        Returns
        -------
        dict of str to array
            Each column the records carry (first-seen order), converted as :meth:`check` converts it.

        Raises
        ------
        CohortValidationError
            As :meth:`check`.
        """
        return check_records(self, records, require_outcome=require_outcome, allow_unknown=allow_unknown)


@lru_cache(maxsize=1)
def data_dictionary() -> Schema:
    """The canonical cohort schema read from ``data/data_dictionary.json``."""
    spec = dictionary_json()
    fields = tuple(_field_from_json(entry) for entry in spec["fields"])
    post = tuple(f.name for f in fields if f.role == "post-progression")
    return Schema(fields, post_progression=post)


def check_cohort(df: pd.DataFrame, schema: Schema | None = None, **kwargs: Any) -> pd.DataFrame:
    """Validate a cohort against ``schema`` (default: the data dictionary); see :meth:`Schema.check`."""
    return (schema or data_dictionary()).check(df, **kwargs)


def to_surv(df: pd.DataFrame, time: str = "pfs1_months", event: str = "pfs1_event") -> np.ndarray:
    """Return the outcome as scikit-survival's structured array of (bool event, float time)."""
    from sksurv.util import Surv

    return Surv.from_arrays(event=df[event].to_numpy(dtype=bool), time=df[time].to_numpy(dtype=float))
