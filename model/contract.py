"""The cohort data contract: fields, types, bounds and the one validator every entry point calls.

The canonical CNSL fields live in ``data/data_dictionary.json``. A :class:`Schema` is built from
that dictionary (:func:`data_dictionary`) or, for a cohort described by a training config, from the
config (:meth:`Schema.for_columns`): a column keeps the rules the modeller declared for it (the
config's ``[fields]``), else those of the data dictionary in use (the CNSL one by default, or the
modeller's own file, :func:`read_dictionary`), else it is checked by the kind the config gives it.
A trained model stores its schema (:meth:`Schema.to_dict`), so scoring checks what training checked.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path
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
    "read_dictionary",
    "field_from_dict",
    "check_cohort",
    "to_surv",
    "BOOLEAN_TRUE",
    "BOOLEAN_FALSE",
    "MISSING",
]

FIELD_TYPES = ("boolean", "category", "number", "integer", "string")
_FIELD_KEYS = {f.name: f for f in dataclasses.fields(Field)}


def _kind_ok(key: str, value: Any) -> bool:
    if key in ("min", "max"):
        return value is None or (isinstance(value, int | float) and not isinstance(value, bool))
    if key in ("required", "min_exclusive", "unique"):
        return isinstance(value, bool)
    if key == "levels":
        return isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
    if key in ("unit", "label"):
        return value is None or isinstance(value, str)
    return isinstance(value, str)


def field_from_dict(entry: Mapping[str, Any]) -> Field:
    """One field from its dictionary entry (the format of ``data/data_dictionary.json``).

    Raises
    ------
    ValueError
        Naming the field and the key that is unknown, missing or of the wrong kind.
    """
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(f"a field entry has no name (text): {dict(entry)!r}")
    for key, value in entry.items():
        if key not in _FIELD_KEYS:
            raise ValueError(f"field {name}: unknown key {key!r}; expected one of {', '.join(_FIELD_KEYS)}")
        if not _kind_ok(key, value):
            raise ValueError(f"field {name}: key {key} has the wrong kind of value ({value!r})")
    if entry.get("type") not in FIELD_TYPES:
        raise ValueError(f"field {name}: type {entry.get('type')!r} is not one of {{{', '.join(FIELD_TYPES)}}}")
    return Field(**{**entry, "levels": tuple(entry.get("levels", ()))})


def field_to_dict(spec: Field) -> dict[str, Any]:
    """A field as its dictionary entry (keys at their default left out)."""
    out = {"name": spec.name, "type": spec.type}
    for key, definition in _FIELD_KEYS.items():
        value = getattr(spec, key)
        if key not in out and value != definition.default:
            out[key] = list(value) if key == "levels" else value
    return out


def read_dictionary(path: str | os.PathLike[str]) -> dict[str, Field]:
    """A modeller's own data dictionary: a JSON file ``{"fields": [{"name": ..., "type": ...}, ...]}``.

    Each entry takes the keys of the bundled ``data/data_dictionary.json`` (name, label, type, unit,
    levels, min, max, min_exclusive, required, role, unique, description).

    Raises
    ------
    OSError
        When the file cannot be read.
    ValueError
        When it is not JSON or an entry is malformed (the message names the field and key).
    """
    try:
        spec = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from None
    except FileNotFoundError:
        raise ValueError("no such file") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("fields"), list):
        raise ValueError('not a data dictionary: expected {"fields": [...]} as in data/data_dictionary.json')
    fields = [field_from_dict(entry) for entry in spec["fields"]]
    return {f.name: f for f in fields}


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
    imputed : tuple of str
        Required fields whose missing values the model fills by its declared imputation
        (``features.impute = "median"``): an explicit gap passes the check; the column must still be given.
    missing_note : str
        Appended to the "missing value" problem of the other fields (why a scoring schema refuses a gap).
    """

    fields: tuple[Field, ...]
    id: str | None = "patient_id"
    time: str | None = "pfs1_months"
    event: str | None = "pfs1_event"
    cause: str | None = "pattern"
    censored: str = "none"
    post_progression: tuple[str, ...] = field(default=())
    passthrough: tuple[str, ...] = field(default=())
    imputed: tuple[str, ...] = field(default=())
    missing_note: str = ""

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
        response: str | None = None,
        rules: Mapping[str, Field] | None = None,
        dictionary: Mapping[str, Field] | None = None,
    ) -> Schema:
        """Build a schema for a cohort described by a training config.

        A column takes the rules declared for it in ``rules`` (a config's ``[fields]``), else those of
        ``dictionary`` (default: the bundled CNSL data dictionary; ``{}`` for none), else it is checked
        by the kind the config declares for it (binary: a boolean; categorical: any label; numeric:
        any finite number; time: a number > 0). Outcome columns and covariates are required (a
        model cannot use a missing covariate); the id and the post-infusion ``response`` are not.
        The dictionary's other names are known pass-through columns.
        """
        known = data_dictionary().by_name() if dictionary is None else dict(dictionary)
        declared = dict(rules or {})

        def make(name: str, kind: str, role: str, **extra: Any) -> Field:
            if name in declared:
                return replace(declared[name], role=role)
            if name in known:
                return replace(known[name], required=True)
            return Field(name=name, type=kind, role=role, **extra)

        fields: dict[str, Field] = {}
        if id:
            fields[id] = replace(make(id, "string", "identifier"), required=False, unique=True)
        if time:
            fields[time] = make(time, "number", "outcome", min=0.0, min_exclusive=True, unit=time_unit)
        if event:
            fields[event] = make(event, "boolean", "outcome")
        if cause:
            spec = make(cause, "category", "relapse pattern")
            levels = spec.levels if cause in declared or cause in known else ()
            fields[cause] = replace(spec, levels=levels, required=event is None)
        for name in binary:
            fields[name] = make(name, "boolean", "baseline")
        for name in categorical:
            fields[name] = make(name, "category", "baseline")
        for name in numeric:
            fields[name] = make(name, "number", "baseline")
        if response:
            fields[response] = replace(make(response, "category", "post-infusion"), required=False)
        passthrough = tuple(name for name in known if name not in fields)
        return cls(tuple(fields.values()), id=id, time=time, event=event, cause=cause, censored=censored,
                   passthrough=passthrough)

    def to_dict(self) -> dict[str, Any]:
        """The schema as plain JSON: its rules and column roles, never a value of any row.

        Returns
        -------
        dict
            ``fields`` (dictionary entries), ``id``, ``time``, ``event``, ``cause``, ``censored``,
            ``post_progression`` and ``passthrough``.
        """
        return {"fields": [field_to_dict(f) for f in self.fields], "id": self.id, "time": self.time,
                "event": self.event, "cause": self.cause, "censored": self.censored,
                "post_progression": list(self.post_progression), "passthrough": list(self.passthrough)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Schema:
        """Rebuild a schema written by :meth:`to_dict`."""
        return cls(tuple(field_from_dict(entry) for entry in d["fields"]), id=d["id"], time=d["time"],
                   event=d["event"], cause=d["cause"], censored=d["censored"],
                   post_progression=tuple(d.get("post_progression", ())), passthrough=tuple(d.get("passthrough", ())))

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
    fields = tuple(field_from_dict(entry) for entry in dictionary_json()["fields"])
    post = tuple(f.name for f in fields if f.role == "post-progression")
    return Schema(fields, post_progression=post)


def check_cohort(df: pd.DataFrame, schema: Schema | None = None, **kwargs: Any) -> pd.DataFrame:
    """Validate a cohort against ``schema`` (default: the data dictionary); see :meth:`Schema.check`."""
    return (schema or data_dictionary()).check(df, **kwargs)


def to_surv(df: pd.DataFrame, time: str = "pfs1_months", event: str = "pfs1_event") -> np.ndarray:
    """Return the outcome as scikit-survival's structured array of (bool event, float time)."""
    from sksurv.util import Surv

    return Surv.from_arrays(event=df[event].to_numpy(dtype=bool), time=df[time].to_numpy(dtype=float))
