"""``cnslrisk config init``: a commented starter training config written from a cohort file.

Each column's kind (binary, categorical, numeric, or left out) is inferred from its values and the
evidence is written beside it; the outcome columns and the time unit are the user's (a time unit is
never inferred); the horizons are the quartiles of the event times, rounded to two significant
figures, in that unit; validation, models and selection are the bundled config's. A column whose
name is one of the CNSL data dictionary's but whose values break its rules gets its own
``[fields.<column>]`` table (type and levels, never a range taken from the data). The file loads and
trains as written.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model import CohortValidationError, Schema, read_cohort
from cnslrisk.model.contract import data_dictionary
from cnslrisk.model.fields import BOOLEAN_FALSE, BOOLEAN_TRUE, MISSING

from .config import load_config

__all__ = ["ColumnKind", "infer_column", "starter_config", "nice_horizons"]

MAX_LEVELS = 20  # more distinct labels than this: an identifier or free text, not a category
_CENSORED_CODES = ("0", "none", "censored", "no event", "alive", "event-free")
_SHOWN = 4


@dataclass(frozen=True)
class ColumnKind:
    """What a column looks like: ``kind`` (binary, categorical, numeric; None: left out) and the evidence."""

    name: str
    kind: str | None
    evidence: str
    levels: tuple[str, ...] = ()


def _text(values: pd.Series) -> pd.Series:
    """Present values as stripped text (``1`` for 1.0), missing spellings dropped."""
    def plain(v: Any) -> str | None:
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, (bool, np.bool_)):
            return "true" if v else "false"
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        text = str(v).strip()
        return None if text in MISSING else text

    return values.map(plain).dropna()


def _counts(text: pd.Series) -> str:
    counts = text.value_counts()
    shown = ", ".join(f"{k} ({v})" for k, v in counts.head(_SHOWN).items())
    return shown + (f", ... ({len(counts) - _SHOWN} more)" if len(counts) > _SHOWN else "")


def infer_column(name: str, values: pd.Series) -> ColumnKind:
    """The kind of one covariate column, with the evidence in words.

    Two values that are boolean spellings (true/false, yes/no, 1/0, ...) make it binary; numbers with
    more than two values numeric; up to :data:`MAX_LEVELS` labels categorical. A column with gaps,
    one value, or more labels than that is left out, saying why.
    """
    text = _text(values)
    missing = len(values) - len(text)
    distinct = pd.unique(text)
    if len(distinct) == 0:
        return ColumnKind(name, None, "every value is missing")
    if missing:
        return ColumnKind(name, None, f"{missing} missing value(s); to use it, list it under [features] and set "
                                      "features.impute = \"median\"")
    if len(distinct) == 1:
        return ColumnKind(name, None, f"one value only ({distinct[0]})")
    spellings = BOOLEAN_TRUE | BOOLEAN_FALSE
    if len(distinct) == 2 and set(distinct) <= spellings and {*distinct} & BOOLEAN_TRUE and {*distinct} & BOOLEAN_FALSE:
        return ColumnKind(name, "binary", f"two values, read as true/false: {_counts(text)}")
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        note = (f"numbers from {numbers.min():g} to {numbers.max():g}, {len(distinct)} distinct")
        if len(distinct) <= 5:
            note += (f" (codes {', '.join(sorted(distinct, key=float))}: per unit; list it under categorical if "
                     "they are labels)")
        return ColumnKind(name, "numeric", note)
    if len(distinct) <= MAX_LEVELS and len(distinct) < len(text) / 2:
        levels = tuple(sorted(distinct))
        return ColumnKind(name, "categorical", f"{len(distinct)} labels: {_counts(text)}", levels)
    return ColumnKind(name, None, f"text with {len(distinct)} distinct values (an identifier or free text?)")


def nice_horizons(event_times: np.ndarray, longest: float) -> tuple[list[float], list[float]]:
    """The quartiles of the event times, rounded to two significant figures (three if two merge them).

    Returns
    -------
    horizons, quartiles : list of float
        The rounded horizons (increasing, within ``(0, longest)``) and the quartiles they come from.
    """
    quartiles = [float(q) for q in np.quantile(event_times, [0.25, 0.5, 0.75])]
    for digits in (2, 3, 4):
        rounded = []
        for q in quartiles:
            scale = 10 ** (math.floor(math.log10(q)) - digits + 1) if q > 0 else 1
            value = round(q / scale) * scale
            value = float(f"{value:.{digits}g}")
            while value >= longest and value > scale:
                value = float(f"{value - scale:.{digits}g}")
            rounded.append(value)
        horizons = sorted({h for h in rounded if 0 < h < longest})
        if len(horizons) == len(set(quartiles)):
            return horizons, quartiles
    return horizons, quartiles


def _problem(message: str) -> CohortValidationError:
    from cnslrisk.model import Problem

    return CohortValidationError([Problem(message)])


def _outcome(raw: pd.DataFrame, time: str, event: str | None, cause: str | None, censored: str | None
             ) -> tuple[np.ndarray, np.ndarray, str | None, str]:
    """Event times, event flags, the censored value and a comment line on how it was found."""
    for key, column in (("--time", time), ("--event", event), ("--cause", cause)):
        if column is not None and column not in raw:
            raise _problem(f"{key} {column}: no such column; the cohort has {', '.join(map(str, raw.columns))}")
    times = pd.to_numeric(_text(raw[time]).reindex(raw.index), errors="coerce")
    if times.isna().any() or (times < 0).any():
        bad = int((times.isna() | (times < 0)).sum())
        raise _problem(f"--time {time}: {bad} row(s) without a time >= 0; every row needs one")
    if cause is None:
        flags = _text(raw[event]).reindex(raw.index)
        values = set(flags.dropna())
        if not values <= BOOLEAN_TRUE | BOOLEAN_FALSE or flags.isna().any():
            raise _problem(f"--event {event}: values {sorted(values)} are not true/false (or 1/0); for a coded "
                           f"status give --cause {event} --censored VALUE instead")
        return times.to_numpy(), flags.isin(BOOLEAN_TRUE).to_numpy(), None, ""
    codes = _text(raw[cause]).reindex(raw.index)
    values = sorted(set(codes.dropna()))
    how = "given"
    if censored is None:
        usual = [v for v in values if v.lower() in _CENSORED_CODES]
        if len(usual) != 1:
            raise _problem(f"--cause {cause}: give --censored VALUE, the value meaning no event (values: "
                           f"{', '.join(values)})")
        censored, how = usual[0], "the one value of the cause column that is a usual code for no event; check it"
    if censored not in values:
        raise _problem(f"--censored {censored}: not a value of {cause} ({', '.join(values)})")
    counts = codes[codes != censored].value_counts()
    rare = [f"{k} ({v})" for k, v in counts.items() if v < 2]
    if rare:
        raise _problem(f"--cause {cause}: {', '.join(rare)}: fewer than the 2 events a cause-specific model needs; "
                       "merge those rows with another cause in the file")
    event_flags = (codes != censored).to_numpy()
    return times.to_numpy(), event_flags, censored, f"censored = {censored!r}: {how}"


def _breaks_dictionary(name: str, values: pd.Series) -> int:
    """How many values of a column with a CNSL dictionary name break that dictionary's rule (0 when none do)."""
    spec = data_dictionary().by_name().get(name)
    if spec is None:
        return 0
    try:
        Schema((spec,), id=None, time=None, event=None, cause=None).check(values.to_frame(name), require_outcome=False)
    except CohortValidationError as exc:
        return len(exc.problems)
    return 0


def _toml(value: Any) -> str:
    """A value in TOML (whole numbers without a decimal point)."""
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value)


def starter_config(cohort: str | os.PathLike[str], *, time: str, time_unit: str, event: str | None = None,
                   cause: str | None = None, censored: str | None = None,
                   out: str | os.PathLike[str] | None = None) -> str:
    """A commented starter config (TOML text) for ``cohort``; written to ``out`` when given.

    Parameters
    ----------
    cohort : path-like
        CSV or Parquet cohort.
    time, time_unit : str
        The follow-up time column and its unit (never inferred).
    event, cause : str
        Exactly one: a true/false event column, or a competing event type column.
    censored : str, optional
        The value of ``cause`` meaning no event; inferred only when exactly one value is a usual code for it.
    out : path-like, optional
        Where to write the config (refused if it exists); the cohort path in it is relative to its folder.

    Returns
    -------
    str
        The config text.

    Raises
    ------
    CohortValidationError, ValueError
        When the outcome columns cannot be used as given (saying why and what to give instead).
    """
    if (event is None) == (cause is None):
        raise ValueError("give exactly one of --event COL (true/false) or --cause COL (competing event types)")
    if not time_unit.strip():
        raise ValueError("--time-unit: give the unit of the time column, e.g. days")
    path = Path(cohort)
    raw = read_cohort(path)
    times, flags, censored, censored_note = _outcome(raw, time, event, cause, censored)
    if not flags.any():
        raise _problem(f"{event or cause}: no event in the cohort; a survival model needs events")
    columns = [str(c) for c in raw.columns]
    identifier = next((c for c in columns if c not in (time, event, cause) and raw[c].notna().all()
                       and _text(raw[c]).is_unique and len(_text(raw[c])) == len(raw)
                       and pd.to_numeric(_text(raw[c]), errors="coerce").isna().all()), None)
    kinds = [infer_column(c, raw[c]) for c in columns if c not in (time, event, cause, identifier)]
    used = [k for k in kinds if k.kind]
    horizons, quartiles = nice_horizons(times[flags], float(times.max()))
    bundled = load_config()
    target = Path(out) if out is not None else Path.cwd() / f"{path.stem}.toml"
    relative = os.path.relpath(path.resolve(), target.resolve().parent)
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-") or "cohort"
    lines = [f"# Starter training config for {path.name}, written by `cnslrisk config init`.",
             f"# {len(raw)} rows, {int(flags.sum())} events. Every key: docs/interface.md; a walk-through: "
             "docs/own_cohort.md.",
             "# Review the covariates: each was given a kind from its values (the evidence is beside it).",
             "", "[data]", f"path = {_toml(relative)}"]
    lines.append(f"id = {_toml(identifier)}  # one distinct text value per row" if identifier else
                 "# no id: no column has one distinct text value per row")
    lines += [f"time = {_toml(time)}", f"time_unit = {_toml(time_unit)}  # given to config init, never inferred"]
    if event:
        lines.append(f"event = {_toml(event)}")
    else:
        lines += [f"cause = {_toml(cause)}  # competing event types: fits the relapse-pattern model",
                  f"censored = {_toml(censored)}  # {censored_note.split(': ', 1)[1]}"]
    lines += ["", f"# {len(used)} covariate(s); {int(flags.sum())} events support about {int(flags.sum()) // 15} "
                  "parameters (10-20 events each; the model card gives Riley et al.'s figure)", "[features]"]
    for kind in ("binary", "categorical", "numeric"):
        chosen = [k for k in used if k.kind == kind]
        lines.append(f"{kind} = {_toml([k.name for k in chosen])}")
        lines += [f"#   {k.name}: {k.evidence}" for k in chosen]
    left_out = [k for k in kinds if not k.kind]
    if left_out:
        lines.append("# not used:")
        lines += [f"#   {k.name}: {k.evidence}" for k in left_out]
    zero = int((times == 0).sum())
    if zero:  # the default rule for a time column is > 0: say why this cohort's allows 0
        lines += ["", f"# {zero} row(s) have {time} = 0 (an event or censoring at the time origin): allowed here",
                  f"[fields.{time}]", 'type = "number"', "min = 0", f"unit = {_toml(time_unit)}"]
    lines += _field_tables(raw, [time if not zero else None, event, cause, identifier], used)
    v = bundled.validation
    unit = time_unit
    lines += ["", "[validation]", f"folds = {v.folds}", f"repeats = {v.repeats}", f"bootstrap = {v.bootstrap}",
              f"horizons = {_toml(horizons)}  # in {unit}: the quartiles of the event times "
              f"({', '.join(f'{q:.4g}' for q in quartiles)}) rounded to two significant figures",
              "", "[models]", f"fit = {_toml(list(bundled.models.fit))}",
              "", "[selection]", f"rule = {_toml(bundled.selection.rule)}"]
    if bundled.selection.margin is not None:
        lines.append(f"margin = {bundled.selection.margin}")
    lines += ["", "[mlflow]", f"tracking_uri = {_toml(bundled.mlflow.tracking_uri)}",
              f"experiment = {_toml(bundled.mlflow.experiment)}",
              f"registered_model = {_toml(name)}  # its own name: not the CNSL model's"]
    text = "\n".join(lines) + "\n"
    if out is not None:
        if target.exists():
            raise ValueError(f"--out {target}: the file exists; choose another name or remove it")
        target.write_text(text, encoding="utf-8")
    return text


def _field_tables(raw: pd.DataFrame, outcome: list[str | None], used: list[ColumnKind]) -> list[str]:
    """``[fields.<column>]`` for a column named like a CNSL dictionary field whose values break its rules."""
    types = {"binary": "boolean", "categorical": "category", "numeric": "number"}
    lines = []
    for column in [c for c in outcome if c] + [k.name for k in used]:
        broken = _breaks_dictionary(column, raw[column])
        if not broken:
            continue
        spec = data_dictionary()[column]
        kind = next((k for k in used if k.name == column), None)
        lines += ["", f"# {column} has a CNSL data dictionary name, but {broken} value(s) break its rule "
                      f"({spec.expected()}): this cohort's own rule instead", f"[fields.{column}]"]
        if kind is not None:
            lines.append(f"type = {_toml(types[kind.kind])}")
            if kind.levels:
                lines.append(f"levels = {_toml(list(kind.levels))}")
        lines.append(f"label = {_toml(column)}")
    return lines
