"""The wording of config mistakes, and the checks that span keys or need the cohort file.

Every function takes the raw config (the parsed TOML with overrides applied, or
:meth:`TrainingConfig.to_dict`) and returns a list of problems, one line each, in the shape
``\\`key = value\\`: what is wrong; what is allowed``. They skip a value of the wrong type (the
type check reports it), so that all mistakes are found in one pass.
"""

from __future__ import annotations

import csv
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

__all__ = ["pydantic_problems", "semantic_problems", "training_problems", "cohort_problems", "close_match",
           "toml_value", "cohort_header", "one_per_mistake"]

# what a required key holds, said when it is missing
_REQUIRED = {
    "data": "the cohort table [data] (path, time, event or cause, time_unit)",
    "data.path": "the cohort file (CSV or Parquet)",
    "data.time": "the column of follow-up times",
    "data.time_unit": "the unit of data.time, e.g. \"days\" (horizons are in it)",
}
_TYPES = {
    "int_type": "must be a whole number",
    "float_type": "must be a number",
    "string_type": "must be text (in quotes)",
    "bool_type": "must be true or false",
    "tuple_type": "must be a list, e.g. [\"a\", \"b\"]",
    "list_type": "must be a list, e.g. [\"a\", \"b\"]",
    "dict_type": "must be a table",
    "dataclass_type": "must be a table",
    "path_type": "must be a file path (text)",
}
_BOUNDS = {"greater_than_equal": ("ge", "at least"), "greater_than": ("gt", "greater than"),
           "less_than_equal": ("le", "at most"), "less_than": ("lt", "less than")}
_KINDS = {"binary": ("boolean",), "categorical": ("category", "string"), "numeric": ("number", "integer")}
_SHOWN_COLUMNS = 12


def toml_value(value: Any) -> str:
    """A value as it would be written in TOML (``true``, ``'text'``, ``[1, 2]``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    return repr(value)


def close_match(name: str, candidates: Sequence[str]) -> str | None:
    """The candidate closest to ``name`` (case-insensitive), or None when none is close."""
    lowered = {c.lower(): c for c in candidates}
    if name.lower() in lowered:
        return lowered[name.lower()]
    found = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


def _key(loc: Sequence[Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _table_keys(tables: Mapping[str, Sequence[str]], loc: Sequence[Any]) -> list[str]:
    """The keys allowed in the table at ``loc``: ``tables`` maps "" (top level), a table name, or
    ``fields.*`` (every ``[fields.<column>]`` table) to its keys."""
    if not loc:
        return list(tables[""])
    if loc[0] == "fields":
        return list(tables["fields.*"]) if len(loc) == 2 else []
    return list(tables.get(str(loc[0]), ())) if len(loc) == 1 else []


def _unknown(tables: Mapping[str, Sequence[str]], loc: Sequence[Any], value: Any) -> str:
    name, where = str(loc[-1]), list(loc[:-1])
    allowed = _table_keys(tables, where)
    table = f"[{_key(where)}]" if where else "the top level"
    key = _key(loc)
    suggestion = close_match(name, allowed)
    hint = f"; did you mean `{_key([*where, suggestion])}`?" if suggestion else ""
    return (f"`{key} = {toml_value(value)}`: unknown config key {key}{hint} ({table} takes "
            f"{', '.join(allowed)})")


def pydantic_problems(error: ValidationError, tables: Mapping[str, Sequence[str]]) -> list[str]:
    """Each of pydantic's errors as one line naming the key, the value and what is allowed (``tables``: the
    keys each table takes, for the closest match to a misspelt key)."""
    problems = []
    for item in error.errors():
        loc, kind, value = item["loc"], item["type"], item.get("input")
        key = _key(loc)
        if kind in ("unexpected_keyword_argument", "extra_forbidden"):
            problems.append(_unknown(tables, loc, value))
        elif kind == "missing":
            what = _REQUIRED.get(key, "required")
            problems.append(f"`{key}`: required: {what}" if key in _REQUIRED else f"`{key}`: required")
        elif kind in _BOUNDS:
            name, words = _BOUNDS[kind]
            problems.append(f"`{key} = {toml_value(value)}`: must be {words} {toml_value(item['ctx'][name])}")
        elif kind == "literal_error":
            problems.append(f"`{key} = {toml_value(value)}`: must be one of {item['ctx']['expected']}")
        elif kind in ("dict_type", "dataclass_type"):
            problems.append(f"`{key} = {toml_value(value)}`: must be a table ([{key}])")
        else:
            wording = _TYPES.get(kind) or item["msg"].removeprefix("Value error, ")
            problems.append(f"`{key} = {toml_value(value)}`: {wording[0].lower()}{wording[1:]}")
    return problems


def one_per_mistake(problems: list[str]) -> list[str]:
    """Drop repeats, and the lines that follow from another mistake (one mistake, one line): the "required" line of
    a key that a misspelt key was taken for, and the "not a column this config uses" line of a ``[fields]`` table
    whose column was misspelt where the config names it."""
    text = " ".join(problems)
    meant = re.findall(r"did you mean `([^`]+)`", text)
    columns = re.findall(r"did you mean '([^']+)'", text)

    def follows(problem: str) -> bool:
        if problem.startswith("`[fields.") and "is not a column this config uses" in problem:
            return problem[len("`[fields."):].split("]`")[0] in columns
        key = problem.split("`")[1] if problem.startswith("`") and ": required" in problem else None
        return key is not None and any(key == m or key.startswith(f"{m}.") for m in meant)

    return [p for p in dict.fromkeys(problems) if not follows(p)]


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    return value if isinstance(value, dict) else {}


def _text(table: dict[str, Any], key: str) -> str | None:
    value = table.get(key)
    return value if isinstance(value, str) and value else None


def _names(table: dict[str, Any], key: str) -> list[str]:
    value = table.get(key, [])
    return [v for v in value if isinstance(v, str)] if isinstance(value, list | tuple) else []


def _numbers(table: dict[str, Any], key: str) -> list[float]:
    value = table.get(key, [])
    if not isinstance(value, list | tuple):
        return []
    return [float(v) for v in value if isinstance(v, int | float) and not isinstance(v, bool)]


def _covariates(raw: dict[str, Any]) -> dict[str, str]:
    """Covariate column -> its kind (binary, categorical, numeric)."""
    features = _table(raw, "features")
    return {name: kind for kind in _KINDS for name in _names(features, kind)}


def _outcome_columns(raw: dict[str, Any]) -> dict[str, str]:
    """The id and outcome columns the config names, with the key that names each."""
    data = _table(raw, "data")
    return {name: f"data.{key}" for key in ("id", "time", "event", "cause") if (name := _text(data, key))}


def semantic_problems(raw: dict[str, Any]) -> list[str]:
    """Rules that span keys: outcome columns, covariate lists, pattern and landmark, field rules, dictionary."""
    data, features, validation = _table(raw, "data"), _table(raw, "features"), _table(raw, "validation")
    problems = []
    if "data" in raw and not _text(data, "event") and not _text(data, "cause"):
        problems.append("`data.event`: required: the event column (true/false), or data.cause for competing "
                        "events (then event = cause != censored)")
    if _text(data, "cause") and data.get("censored") in (None, ""):
        problems.append(f"`data.censored`: required with data.cause = {toml_value(data['cause'])}: the value of "
                        "the cause column that means no event, e.g. 0 or \"none\"")
    covariates, outcome = _covariates(raw), _outcome_columns(raw)
    for kind in _KINDS:
        names = _names(features, kind)
        for name in sorted({n for n in names if names.count(n) > 1}):
            problems.append(f"`features.{kind} = {toml_value(names)}`: column {name} is listed more than once")
    for name in sorted(covariates):
        kinds = [kind for kind in _KINDS if name in _names(features, kind)]
        if len(kinds) > 1:
            problems.append(f"`features`: column {name} is listed under more than one kind ({', '.join(kinds)})")
    for name, key in outcome.items():
        if name in covariates:
            problems.append(f"`features.{covariates[name]}`: {name} is {key}, an id or outcome column, and cannot "
                            "be a covariate")
    for table in ("pattern", "landmark"):
        chosen = _names(_table(raw, table), "features")
        for name in chosen:
            if name not in covariates:
                problems.append(f"`{table}.features = {toml_value(chosen)}`: {name} is not one of the configured "
                                f"covariates ({', '.join(covariates) or 'none'})")
    horizons = _numbers(validation, "horizons")
    if horizons != sorted(set(horizons)):
        problems.append(f"`validation.horizons = {toml_value(horizons)}`: must be increasing, each once")
    problems += _landmark_problems(raw, covariates, outcome, horizons)
    problems += _field_problems(raw, covariates, outcome)
    n_jobs = raw.get("n_jobs")
    if isinstance(n_jobs, int) and not isinstance(n_jobs, bool) and n_jobs < 1 and n_jobs != -1:
        problems.append(f"`n_jobs = {n_jobs}`: must be a whole number >= 1, or -1 (every core)")
    gate = _table(raw, "promotion")
    low, high = gate.get("slope_lower", 0.7), gate.get("slope_upper", 1.3)
    if all(isinstance(v, int | float) for v in (low, high)) and low >= high:
        problems.append(f"`promotion.slope_lower = {toml_value(low)}`: must be below promotion.slope_upper "
                        f"({toml_value(high)})")
    return problems + _dictionary_problems(data)


def _landmark_problems(raw: dict[str, Any], covariates: dict[str, str], outcome: dict[str, str],
                       horizons: list[float]) -> list[str]:
    landmark = _table(raw, "landmark")
    time = landmark.get("time")
    if not isinstance(time, int | float) or isinstance(time, bool):
        return []
    problems = []
    if horizons and not time < max(horizons):
        problems.append(f"`landmark.time = {toml_value(time)}`: must be after the time origin and before the last "
                        f"horizon ({max(horizons):g})")
    response = _text(landmark, "response")
    if response is None:
        problems.append("`landmark.response`: required with landmark.time: the best-response column (a category "
                        "known by the landmark)")
    elif response in covariates or response in outcome:
        problems.append(f"`landmark.response = {toml_value(response)}`: {response} is a covariate or an outcome "
                        "column; it must be the best-response column (known only after the time origin)")
    return problems


def _field_problems(raw: dict[str, Any], covariates: dict[str, str], outcome: dict[str, str]) -> list[str]:
    """``[fields.<column>]``: a column the config uses, a type that fits its role, bounds that fit the type."""
    fields = _table(raw, "fields")
    response = _text(_table(raw, "landmark"), "response")
    kinds = {**{name: _KINDS[kind] for name, kind in covariates.items()},
             **{name: {"data.id": ("string",), "data.time": ("number", "integer"), "data.event": ("boolean",),
                       "data.cause": ("category",)}[key] for name, key in outcome.items()}}
    if response:
        kinds[response] = ("category",)
    problems = []
    for name, rule in fields.items():
        if not isinstance(rule, dict):
            continue
        if name not in kinds:
            used = ", ".join(kinds) or "none"
            problems.append(f"`[fields.{name}]`: {name} is not a column this config uses (id, outcome, covariates, "
                            f"landmark response: {used})")
            continue
        kind = rule.get("type")
        if isinstance(kind, str) and kind not in kinds[name]:
            problems.append(f"`fields.{name}.type = {toml_value(kind)}`: {name} is used as "
                            f"{' or '.join(kinds[name])}; the type must agree")
        kind = kind if isinstance(kind, str) else kinds[name][0]
        if rule.get("levels") and kind != "category":
            problems.append(f"`fields.{name}.levels`: only a category has levels ({name} is {kind})")
        if kind not in ("number", "integer") and ("min" in rule or "max" in rule):
            problems.append(f"`fields.{name}`: min and max are for numbers ({name} is {kind})")
        low, high = rule.get("min"), rule.get("max")
        if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
            problems.append(f"`fields.{name}.min = {toml_value(low)}`: is above fields.{name}.max "
                            f"({toml_value(high)})")
    return problems


def _dictionary_problems(data: dict[str, Any]) -> list[str]:
    path = _text(data, "dictionary")
    if path is None:
        return []
    from cnslrisk.model.contract import read_dictionary

    try:
        read_dictionary(path)
    except (OSError, ValueError) as exc:
        return [f"`data.dictionary = {toml_value(path)}`: {exc}"]
    return []


def training_problems(raw: dict[str, Any]) -> list[str]:
    """What training needs beyond a valid config: covariates and horizons."""
    problems = []
    if not _covariates(raw):
        problems.append("`features`: at least one covariate is needed in binary, categorical or numeric")
    if not _numbers(_table(raw, "validation"), "horizons"):
        problems.append("`validation.horizons`: required: prediction horizons in data.time_unit, e.g. [365, 730] "
                        "for days")
    return problems


def cohort_header(path: Path) -> list[str]:
    """The column names of a CSV (after ``#`` comment lines) or Parquet file."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    with open(path, encoding="utf-8", newline="") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        return next(csv.reader(lines), [])


def _longest_time(path: Path, column: str) -> float | None:
    import pandas as pd

    from cnslrisk.model.cohort_io import read_cohort

    values = pd.to_numeric(read_cohort(path)[column], errors="coerce")
    return float(np.nanmax(values)) if values.notna().any() else None


def _column_keys(raw: dict[str, Any]) -> list[tuple[str, str]]:
    """(key, column) for every key of the config that names a cohort column."""
    data, features, landmark = _table(raw, "data"), _table(raw, "features"), _table(raw, "landmark")
    keys = [(f"data.{k}", name) for k in ("id", "time", "event", "cause") if (name := _text(data, k))]
    for kind in _KINDS:
        keys += [(f"features.{kind}[{i}]", name) for i, name in enumerate(_names(features, kind))]
    if (response := _text(landmark, "response")) and landmark.get("time") is not None:
        keys.append(("landmark.response", response))
    keys += [(f"[fields.{name}]", name) for name in _table(raw, "fields")]
    return keys


def cohort_problems(raw: dict[str, Any]) -> list[str]:
    """The cohort file exists, has every column the config names, and follows patients beyond the horizons."""
    data = _table(raw, "data")
    path = data.get("path")
    if not isinstance(path, str):
        return []
    file = Path(path)
    if file.suffix.lower() not in (".csv", ".parquet", ".pq"):
        return [f"`data.path = {toml_value(path)}`: expected a .csv or .parquet file"]
    if not file.is_file():
        return [f"`data.path = {toml_value(path)}`: no such file"]
    try:
        header = cohort_header(file)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"`data.path = {toml_value(path)}`: cannot be read ({exc})"]
    problems = []
    for key, name in _column_keys(raw):
        if name in header:
            continue
        suggestion = close_match(name, header)
        if suggestion:
            hint = f"did you mean {suggestion!r}?"
        else:
            shown = ", ".join(header[:_SHOWN_COLUMNS]) + (", ..." if len(header) > _SHOWN_COLUMNS else "")
            hint = f"it has {shown}"
        where = key if key.startswith("[") else f"{key} = {toml_value(name)}"
        problems.append(f"`{where}`: no such column in {file.name}; {hint}")
    time = _text(data, "time")
    if time in header:
        problems += _follow_up_problems(raw, file, time)
    return problems


def _follow_up_problems(raw: dict[str, Any], file: Path, time: str) -> list[str]:
    from cnslrisk.model.contract import CohortValidationError

    try:
        longest = _longest_time(file, time)
    except CohortValidationError:
        return []  # the file's own problems are reported when it is read for training
    if longest is None:
        return []
    unit = _text(_table(raw, "data"), "time_unit") or ""
    horizons = _numbers(_table(raw, "validation"), "horizons")
    beyond = [h for h in horizons if h >= longest]
    problems = []
    if beyond:
        problems.append(f"`validation.horizons = {toml_value(horizons)}`: {toml_value(beyond)} not within the "
                        f"cohort's follow-up (the longest time is {longest:g} {unit}); every horizon must be "
                        "shorter")
    landmark = _table(raw, "landmark").get("time")
    if isinstance(landmark, int | float) and not isinstance(landmark, bool) and landmark >= longest:
        problems.append(f"`landmark.time = {toml_value(landmark)}`: not within the cohort's follow-up (the longest "
                        f"time is {longest:g} {unit})")
    return problems
