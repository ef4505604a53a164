"""Column-wise checks behind :meth:`Schema.check` and :meth:`Schema.check_records`; problems are collected.

Both entry points hand plain numpy columns to one core (:func:`_check_columns`): a DataFrame's
columns as they are, a list of JSON records as one object array per field. The core uses numpy
operations only (no pandas Series), so one API record is checked in microseconds and a million-row
registry chunk in one vectorised pass per rule; the rules and their wording exist once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

from .fields import BOOLEAN_FALSE, BOOLEAN_TRUE, MISSING, CohortValidationError, Field, Problem

__all__ = ["check_frame", "check_records", "map_values", "require_fitted", "row_notes", "join_notes"]

_OUTCOME_ROLES = ("outcome", "relapse pattern", "post-infusion", "post-progression")
# above this many values a text column is normalised once per distinct value (it has few: categories,
# booleans) instead of value by value
_FACTORIZE_FROM = 256
_PLAIN_TYPES = frozenset({int, float, str, bool})
_BOOLEAN_TEXT = {**{s: 1.0 for s in BOOLEAN_TRUE}, **{s: 0.0 for s in BOOLEAN_FALSE}}


class SchemaLike(Protocol):
    """What the checks read of a :class:`cnslrisk.model.contract.Schema` (which calls them, so is not imported)."""

    fields: tuple[Field, ...]
    id: str | None
    time: str | None
    event: str | None
    cause: str | None
    censored: str
    post_progression: tuple[str, ...]
    passthrough: tuple[str, ...]
    imputed: tuple[str, ...]
    missing_note: str

    def by_name(self) -> dict[str, Field]: ...


def _plain(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:  # as _numbers_as_text
        return str(int(value))
    return str(value)


def _normalise(value: object) -> str | None:
    """One raw value as stripped text, None when missing (a missing spelling, None, NaN, pd.NA)."""
    if value is None or value is pd.NA or value != value:
        return None
    text = _plain(value).strip()
    return None if text in MISSING else text


def _as_text(values: np.ndarray) -> np.ndarray:
    """Raw values as an object array of stripped strings (``true``/``false`` for booleans), None when missing.

    Typed numeric columns (Parquet, JSON numbers) are returned as float arrays, NaN meaning missing:
    numbers need no text round trip (messages format them when needed).
    """
    if values.dtype.kind in "iuf":
        return values.astype(float, copy=False)
    if values.dtype.kind == "b":
        return np.where(values, "true", "false").astype(object)
    values = values.astype(object, copy=False)
    kind = _inferred_kind(values)
    if kind in ("integer", "floating", "mixed-integer-float"):  # JSON numbers: typed, as a DataFrame would hold them
        return np.fromiter((np.nan if v is None or v is pd.NA else v for v in values), dtype=float, count=values.size)
    if kind == "string" and values.size > _FACTORIZE_FROM:  # text: normalise the distinct values all at once
        positions, uniques = pd.factorize(values)  # missing -> position -1, which picks the appended None
        stripped = pd.Series(uniques, dtype=object).str.strip()
        return np.append(stripped.where(~stripped.isin(MISSING), None).to_numpy(dtype=object), None)[positions]
    # not once per distinct value for mixed types: factorize merges 1 and True, whose texts differ
    return map_values(values, _normalise, missing=None, dtype=object, distinct=kind == "empty")


def _inferred_kind(values: np.ndarray) -> str:
    """``pandas.api.types.infer_dtype(values, skipna=True)``, cheaper for a few values (one API record).

    Up to 256 ints, floats, strings and booleans (missing aside) are judged by their Python types:
    ``"floating"`` when all are numbers, ``"mixed"`` otherwise. That is infer_dtype's answer to the one
    question asked of so few values (numbers or not); whether to map once per distinct value only
    arises above 256 values, where infer_dtype itself answers.
    """
    if values.size <= _FACTORIZE_FROM:
        seen = {type(v) for v in values if not (v is None or v is pd.NA or (type(v) is float and v != v))}
        if seen <= _PLAIN_TYPES:
            return "floating" if seen and seen <= {int, float} else "mixed"
    return pd.api.types.infer_dtype(values, skipna=True)


def map_values(values: np.ndarray, function: Callable[[Any], Any], *, missing: Any, dtype: Any,
               distinct: bool = True) -> np.ndarray:
    """``function`` of each value of an object array, once per distinct value above 256 values.

    ``function`` must return ``missing`` for a missing value: ``pd.factorize`` sets those aside.
    """
    if distinct and values.size > _FACTORIZE_FROM:
        positions, uniques = pd.factorize(values)  # missing -> position -1, which picks the appended ``missing``
        return np.array([*(function(u) for u in uniques), missing], dtype=dtype)[positions]
    out = np.empty(values.size, dtype=dtype)
    out[:] = [function(v) for v in values]
    return out


def row_notes(flagged: np.ndarray, values: np.ndarray, message: Callable[[Any], str]) -> np.ndarray | None:
    """One note per row: ``message(value)`` where ``flagged``, ``""`` elsewhere; None when no row is flagged.

    Worded once per distinct value; ``values`` of flagged rows must not be missing (``pd.factorize``
    would set them aside).
    """
    rows = np.flatnonzero(flagged)
    if rows.size == 0:  # most rules, for most rows: nothing to word
        return None
    out = np.full(flagged.size, "", dtype=object)
    out[rows] = map_values(np.asarray(values)[rows], message, missing="", dtype=object)  # the flagged rows only
    return out


def join_notes(columns: Sequence[np.ndarray | None], n_rows: int) -> np.ndarray:
    """Row-wise ``"; "``-join of note columns (None: no notes), skipping empty notes."""
    out = np.full(n_rows, "", dtype=object)
    for column in columns:
        if column is None:
            continue
        rows = np.flatnonzero(column != "")
        if rows.size:
            earlier = out[rows]
            out[rows] = [f"{a}; {b}" if a else b for a, b in zip(earlier, column[rows], strict=True)]
    return out


def require_fitted(estimator: Any, attribute: str) -> None:
    """scikit-learn's ``check_is_fitted(estimator, attribute)``, without its per-call tag lookup.

    For the scoring paths, which call it several times per API request; raises the same error.
    """
    if not hasattr(estimator, attribute):
        raise NotFittedError(f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
                             "appropriate arguments before using this estimator.")


def _numbers_as_text(values: np.ndarray) -> np.ndarray:
    """Typed numbers as labels (``1`` for 1.0), for category and text fields coded as numbers."""
    finite = np.isfinite(values)
    safe = np.where(finite, values, 0.0)
    whole = finite & (np.floor(safe) == safe) & (np.abs(safe) < 2**53)
    text = np.where(whole, np.where(whole, safe, 0).astype(np.int64).astype(str), values.astype(str))
    return np.where(np.isnan(values), None, text.astype(object))


def _isin(text: np.ndarray, allowed: Sequence[str]) -> np.ndarray:
    """Set membership of an object array of text (missing: False), looked up once per distinct value."""
    return map_values(text, frozenset(allowed).__contains__, missing=False, dtype=bool)


def _present(text: np.ndarray) -> np.ndarray:
    return ~np.isnan(text) if text.dtype.kind == "f" else np.not_equal(text, None)


class _Collector:
    def __init__(self, ids: np.ndarray | None):
        self.problems: list[Problem] = []
        self._ids = ids

    def add_rows(self, mask: np.ndarray, field: str, raw: np.ndarray | None, expected: str) -> None:
        if not np.count_nonzero(mask):  # cheaper than mask.any() on the one-row arrays of an API record
            return
        for position in np.flatnonzero(mask):
            patient = None if self._ids is None else self._ids[position]
            value = None if raw is None else raw[position]
            value = value if value is None or isinstance(value, str) else _plain(value)
            self.problems.append(Problem(expected, row=int(position) + 1, field=field, value=value, patient_id=patient))


def _parse_boolean(text: np.ndarray) -> np.ndarray:
    """1.0 / 0.0 for true / false, NaN for anything else (typed 1 and 0 count as true and false)."""
    if text.dtype.kind == "f":
        return np.where(text == 1, 1.0, np.where(text == 0, 0.0, np.nan))
    return map_values(text, lambda v: _BOOLEAN_TEXT.get(v, np.nan), missing=np.nan, dtype=float)


def _convert(spec: Field, text: np.ndarray, present: np.ndarray, report: _Collector) -> np.ndarray:
    """Parse one column by its field's type, reporting every rule a value breaks; NaN / None where invalid."""
    if spec.type == "boolean":
        parsed = _parse_boolean(text)
        bad = present & np.isnan(parsed)
        report.add_rows(bad, spec.name, text, "is not one of {true, false}")
        return parsed
    if spec.type in ("number", "integer"):
        values = text if text.dtype.kind == "f" else pd.to_numeric(text, errors="coerce").astype(float)
        bad_type = present & ~np.isfinite(values)
        report.add_rows(bad_type, spec.name, text, f"is not {spec.expected()}")
        ok = present & ~bad_type
        if spec.type == "integer":  # comparisons with NaN and inf raise no floating-point warnings
            fractional = ok & (np.floor(values) != values)
            report.add_rows(fractional, spec.name, text, "is not a whole number")
            ok &= ~fractional
        if spec.min is not None:
            low = ok & ((values <= spec.min) if spec.min_exclusive else (values < spec.min))
            rule = f"must be greater than {spec.min:g}" if spec.min_exclusive else f"is below the minimum {spec.min:g}"
            report.add_rows(low, spec.name, text, rule)
        if spec.max is not None:
            report.add_rows(ok & (values > spec.max), spec.name, text, f"is above the maximum {spec.max:g}")
        return np.where(ok, values, np.nan)
    if spec.type == "category" and spec.levels:
        bad = present & ~_isin(text, spec.levels)
        report.add_rows(bad, spec.name, text, f"is not {spec.expected()}")
        return np.where(bad, None, text)
    return text


def _finalise(spec: Field, parsed: np.ndarray) -> Any:
    """A checked column in its final dtype (nullable pandas arrays only where an optional column has gaps)."""
    if spec.type in ("boolean", "integer", "number"):
        gaps = np.isnan(parsed)
        if spec.type == "number":
            return parsed
        if not np.count_nonzero(gaps):
            return parsed == 1.0 if spec.type == "boolean" else parsed.astype(np.int64)
        if spec.type == "boolean":
            return pd.arrays.BooleanArray(parsed == 1.0, gaps)
        return pd.arrays.IntegerArray(np.where(gaps, 0, parsed).astype(np.int64), gaps)
    return parsed


def _duplicated(text: np.ndarray) -> np.ndarray:
    """Present values already seen in an earlier row."""
    if text.size < 2:
        return np.zeros(text.size, dtype=bool)
    return _present(text) & pd.Series(text).duplicated(keep="first").to_numpy()


def _header(schema: SchemaLike, columns: Sequence[str], require_outcome: bool, allow_unknown: bool
            ) -> tuple[list[Problem], set[str]]:
    """Column-level problems (unknown, missing required) and the set of required columns."""
    specs = schema.by_name()
    header: list[Problem] = []
    if not allow_unknown:
        allowed = ", ".join([*specs, *schema.passthrough])
        for name in columns:
            if name not in specs and name not in schema.passthrough:
                header.append(Problem(f"unknown column; expected one of {{{allowed}}}", field=name))
    needed = {s.name for s in schema.fields if s.required and (require_outcome or s.role not in _OUTCOME_ROLES)}
    for name in sorted(needed - set(columns), key=list(specs).index):
        header.append(Problem(f"required column is missing; expected {specs[name].expected()}", field=name))
    return header, needed


def _check_columns(schema: SchemaLike, columns: Mapping[str, np.ndarray], *, require_outcome: bool,
                   allow_unknown: bool) -> dict[str, Any]:
    """Check raw columns (names in input order) and return the schema's columns converted to their types."""
    specs = schema.by_name()
    header, needed = _header(schema, list(columns), require_outcome, allow_unknown)
    texts = {name: _as_text(values) for name, values in columns.items() if name in specs}
    for name, text in texts.items():
        if specs[name].type in ("string", "category") and text.dtype.kind == "f":
            texts[name] = _numbers_as_text(text)
    report = _Collector(texts.get(schema.id) if schema.id else None)
    report.problems.extend(header)
    present = {name: _present(text) for name, text in texts.items()}
    parsed = {name: _convert(specs[name], text, present[name], report) for name, text in texts.items()}
    note = f"; {schema.missing_note}" if schema.missing_note else ""
    for name in needed & set(texts) - set(schema.imputed):
        missing = ~present[name]
        if name == schema.time and schema.event in parsed:
            event_true = parsed[schema.event] == 1.0
            report.add_rows(missing & event_true, name, None, "missing value: event without time")
            missing &= ~event_true
        report.add_rows(missing, name, None, f"missing value; expected {specs[name].expected()}{note}")
    for name, text in texts.items():
        if specs[name].unique:
            report.add_rows(_duplicated(text), name, text, "is a duplicate identifier (each row must have its own)")
    _check_outcomes(schema, parsed, texts, report)
    if report.problems:
        report.problems.sort(key=lambda p: (p.row is not None, p.row or 0))
        raise CohortValidationError(report.problems)
    return {name: _finalise(specs[name], values) for name, values in parsed.items()}


def _frame_column(values: pd.Series) -> np.ndarray:
    """A DataFrame column as a numpy array; nullable numbers become floats with NaN for the gaps."""
    if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_numeric_dtype(values.dtype) \
            and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=float, na_value=np.nan)
    return values.to_numpy()


def check_frame(schema: SchemaLike, df: pd.DataFrame, *, require_outcome: bool, allow_unknown: bool) -> pd.DataFrame:
    if df.shape[0] == 0:
        raise CohortValidationError([Problem("the cohort is empty: expected at least one data row")])
    columns = [str(c) for c in df.columns]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise CohortValidationError([Problem("appears more than once in the header", field=n) for n in duplicated])
    raw = {name: _frame_column(df[original]) for name, original in zip(columns, df.columns, strict=True)}
    checked = _check_columns(schema, raw, require_outcome=require_outcome, allow_unknown=allow_unknown)
    out = df.copy()
    for name, values in checked.items():
        out[name] = values
    return out


def check_records(schema: SchemaLike, records: Sequence[Mapping[str, Any]], *, require_outcome: bool,
                  allow_unknown: bool) -> dict[str, Any]:
    """Check JSON-like records; same rules and messages as :func:`check_frame` on ``DataFrame(records)``.

    Returns
    -------
    dict of str to array
        Every column the records carry, in first-seen order: the schema's converted as by
        :func:`check_frame`, the others as object arrays (None where a record lacks the key).
    """
    if not records:
        raise CohortValidationError([Problem("the cohort is empty: expected at least one data row")])
    names = list(dict.fromkeys(key for record in records for key in record))
    raw = {}
    for name in names:
        column = np.empty(len(records), dtype=object)
        column[:] = [record.get(name) for record in records]
        raw[name] = column
    checked = _check_columns(schema, raw, require_outcome=require_outcome, allow_unknown=allow_unknown)
    return {name: checked.get(name, raw[name]) for name in names}


def _check_outcomes(schema: SchemaLike, parsed: dict[str, np.ndarray], texts: dict[str, np.ndarray],
                    report: _Collector) -> None:
    """Cross-field rules: event and cause agree; post-progression data only after a progression."""
    event = parsed.get(schema.event) if schema.event else None
    cause = parsed.get(schema.cause) if schema.cause else None
    if event is not None and cause is not None:
        known = ~np.isnan(event) & _present(cause)
        is_event = event == 1.0
        censored = cause == schema.censored
        report.add_rows(known & ~is_event & ~censored, schema.cause, texts[schema.cause],
                        f"is given for a censored patient ({schema.event} is false); expected {schema.censored!r}")
        report.add_rows(known & is_event & censored, schema.cause, texts[schema.cause],
                        f"means no event, but {schema.event} is true")
    if not schema.post_progression or cause is None:
        return
    no_progression = _isin(cause, (schema.censored, "death"))
    for name in schema.post_progression:
        if name in texts:
            report.add_rows(_present(texts[name]) & no_progression, name, texts[name],
                            f"is given for a patient without CNS progression ({schema.cause} is none or death)")
    time, flag = "pfs2_months", "pfs2_event"
    if time in texts and flag in texts:
        report.add_rows(_present(texts[flag]) & ~_present(texts[time]) & ~no_progression,
                        time, None, f"missing value: {flag} given without {time}")
