"""Column-wise, vectorized checks behind :meth:`Schema.check`; problems are collected, not raised one by one."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .contract import BOOLEAN_FALSE, BOOLEAN_TRUE, MISSING, CohortValidationError, Field, Problem

if TYPE_CHECKING:
    from .contract import Schema

__all__ = ["check_frame"]

_OUTCOME_ROLES = ("outcome", "relapse pattern", "post-infusion", "post-progression")


def _as_text(values: pd.Series) -> pd.Series:
    """Raw values as stripped strings (``true``/``false`` for booleans), missing entries as None.

    Typed numeric columns (Parquet, JSON numbers) are returned as they are, NaN meaning missing.
    Homogeneous columns are converted in vectorised code, which keeps a million-row batch fast;
    mixed object columns (JSON records) go value by value.
    """
    kind = pd.api.types.infer_dtype(values, skipna=True)
    missing = values.isna().to_numpy()
    if kind in ("string", "empty"):
        text = values.astype(object).where(~missing, "").str.strip()
    elif kind == "boolean" and not values.dtype == object:
        text = pd.Series(np.where(values.fillna(False).to_numpy(dtype=bool), "true", "false"), index=values.index)
    elif pd.api.types.is_integer_dtype(values.dtype) or pd.api.types.is_float_dtype(values.dtype):
        return values  # typed numbers stay numbers: no text round trip (messages format them when needed)
    else:
        text = values.astype(object).map(lambda v: "" if v is None or v is pd.NA or v != v else _plain(v).strip())
    text = text.astype(object)
    return text.where(~(missing | text.isin(MISSING).to_numpy()), None)


def _numbers_as_text(values: pd.Series) -> pd.Series:
    """Typed numbers as labels (``1`` for 1.0), for category and text fields coded as numbers."""
    numbers = values.to_numpy(dtype=float, na_value=np.nan)
    finite = np.isfinite(numbers)
    safe = np.where(finite, numbers, 0.0)
    whole = finite & (np.floor(safe) == safe) & (np.abs(safe) < 2**53)
    text = np.where(whole, np.where(whole, safe, 0).astype(np.int64).astype(str), numbers.astype(str))
    return pd.Series(text, index=values.index, dtype=object).where(finite, None)


def _plain(value: object) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Collector:
    def __init__(self, ids: pd.Series | None):
        self.problems: list[Problem] = []
        self._ids = ids

    def add_rows(self, mask: np.ndarray, field: str, raw: pd.Series | None, expected: str) -> None:
        for position in np.flatnonzero(mask):
            patient = None if self._ids is None else self._ids.iloc[position]
            value = None if raw is None else raw.iloc[position]
            value = value if value is None or isinstance(value, str) else _plain(value)
            self.problems.append(Problem(expected, row=int(position) + 1, field=field, value=value, patient_id=patient))


def _convert(spec: Field, text: pd.Series, report: _Collector) -> pd.Series:
    present = text.notna().to_numpy()
    if spec.type == "boolean":
        # 1 and 0 also match 1.0 / 0.0 from typed numeric columns (equal keys hash alike)
        lookup = {**{s: True for s in BOOLEAN_TRUE}, **{s: False for s in BOOLEAN_FALSE}, 1: True, 0: False}
        parsed = text.map(lookup)
        bad = present & parsed.isna().to_numpy()
        report.add_rows(bad, spec.name, text, "is not one of {true, false}")
        return parsed.astype("boolean")
    if spec.type in ("number", "integer"):
        parsed = pd.to_numeric(text, errors="coerce").astype(float)
        values = parsed.to_numpy()
        bad_type = present & ~np.isfinite(values)
        report.add_rows(bad_type, spec.name, text, f"is not {spec.expected()}")
        ok = present & ~bad_type
        if spec.type == "integer":
            fractional = ok & (np.floor(values) != values)
            report.add_rows(fractional, spec.name, text, "is not a whole number")
            ok &= ~fractional
        if spec.min is not None:
            low = ok & ((values <= spec.min) if spec.min_exclusive else (values < spec.min))
            rule = f"must be greater than {spec.min:g}" if spec.min_exclusive else f"is below the minimum {spec.min:g}"
            report.add_rows(low, spec.name, text, rule)
        if spec.max is not None:
            report.add_rows(ok & (values > spec.max), spec.name, text, f"is above the maximum {spec.max:g}")
        return parsed.where(ok)
    if spec.type == "category" and spec.levels:
        bad = present & ~text.isin(spec.levels).to_numpy()
        report.add_rows(bad, spec.name, text, f"is not {spec.expected()}")
        return text.where(~bad)
    return text


def _finalise(spec: Field, parsed: pd.Series) -> pd.Series:
    """Narrow a checked column to its final dtype."""
    complete = not parsed.isna().any()
    if spec.type == "boolean":
        return parsed.astype(bool) if complete else parsed
    if spec.type == "integer":
        return parsed.astype("int64") if complete else parsed.astype("Int64")
    if spec.type == "number":
        return parsed.astype("float64")
    return parsed.astype(object)


def check_frame(schema: Schema, df: pd.DataFrame, *, require_outcome: bool, allow_unknown: bool) -> pd.DataFrame:
    if df.shape[0] == 0:
        raise CohortValidationError([Problem("the cohort is empty: expected at least one data row")])
    specs = schema.by_name()
    columns = [str(c) for c in df.columns]
    header: list[Problem] = []
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    for name in duplicated:
        header.append(Problem("appears more than once in the header", field=name))
    if duplicated:
        raise CohortValidationError(header)
    if not allow_unknown:
        allowed = ", ".join([*specs, *schema.passthrough])
        for name in columns:
            if name not in specs and name not in schema.passthrough:
                header.append(Problem(f"unknown column; expected one of {{{allowed}}}", field=name))
    needed = {s.name for s in schema.fields if s.required and (require_outcome or s.role not in _OUTCOME_ROLES)}
    for name in needed - set(columns):
        header.append(Problem(f"required column is missing; expected {specs[name].expected()}", field=name))

    texts = {name: _as_text(df[name]) for name in columns if name in specs}
    for name, text in texts.items():
        if specs[name].type in ("string", "category") and text.dtype != object:
            texts[name] = _numbers_as_text(text)
    report = _Collector(texts.get(schema.id) if schema.id else None)
    report.problems.extend(header)
    parsed = {name: _convert(specs[name], text, report) for name, text in texts.items()}
    for name in needed & set(texts):
        missing = texts[name].isna().to_numpy()
        if name == schema.time and schema.event in parsed:
            event_true = parsed[schema.event].fillna(False).to_numpy(dtype=bool)
            report.add_rows(missing & event_true, name, None, "missing value: event without time")
            missing &= ~event_true
        report.add_rows(missing, name, None, f"missing value; expected {specs[name].expected()}")
    for name, text in texts.items():
        if specs[name].unique:
            duplicate = text.notna().to_numpy() & text.duplicated(keep="first").to_numpy()
            report.add_rows(duplicate, name, text, "is a duplicate identifier (each row must have its own)")
    _check_outcomes(schema, parsed, texts, report)
    if report.problems:
        report.problems.sort(key=lambda p: (p.row is not None, p.row or 0))
        raise CohortValidationError(report.problems)
    out = df.copy()
    for name, values in parsed.items():
        out[name] = _finalise(specs[name], values)
    return out


def _check_outcomes(
    schema: Schema, parsed: dict[str, pd.Series], texts: dict[str, pd.Series], report: _Collector
) -> None:
    """Cross-field rules: event and cause agree; post-progression data only after a progression."""
    event = parsed.get(schema.event) if schema.event else None
    cause = parsed.get(schema.cause) if schema.cause else None
    if event is not None and cause is not None:
        known = event.notna().to_numpy() & cause.notna().to_numpy()
        is_event = event.fillna(False).to_numpy(dtype=bool)
        censored = (cause == schema.censored).to_numpy()
        report.add_rows(known & ~is_event & ~censored, schema.cause, texts[schema.cause],
                        f"is given for a censored patient ({schema.event} is false); expected {schema.censored!r}")
        report.add_rows(known & is_event & censored, schema.cause, texts[schema.cause],
                        f"means no event, but {schema.event} is true")
    if not schema.post_progression or cause is None:
        return
    no_progression = cause.isin([schema.censored, "death"]).to_numpy()
    for name in schema.post_progression:
        if name in texts:
            given = texts[name].notna().to_numpy()
            report.add_rows(given & no_progression, name, texts[name],
                            f"is given for a patient without CNS progression ({schema.cause} is none or death)")
    for time, flag in (("pfs2_months", "pfs2_event"), ):
        if time in texts and flag in texts:
            report.add_rows(texts[flag].notna().to_numpy() & texts[time].isna().to_numpy() & ~no_progression,
                            time, None, f"missing value: {flag} given without {time}")
