"""Count tables of the report: Table 1, response to CAR T cells, progression pattern, B-cell aplasia.

Every function takes a checked cohort (:func:`cnslrisk.model.check_cohort`) and returns plain
Python aggregates (counts, percentages, medians and quartiles, test results): never a patient row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.contract import Field

from .exact import exact_test

__all__ = ["RESPONSES", "PROGRESSION", "groups", "table1", "response_section", "pattern_section", "bcell_section"]

RESPONSES = ("CR", "PR", "SD", "PD")
PROGRESSION = ("local", "local_and_distant", "distant")
_SPLITS = ("pce", "lmd")


def groups(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean masks of the report's columns: ``overall``, ``pce=false``, ``pce=true``, ``lmd=false``, ``lmd=true``."""
    out = {"overall": np.ones(len(df), dtype=bool)}
    for name in _SPLITS:
        values = df[name].astype("boolean")
        for level in (False, True):
            out[f"{name}={str(level).lower()}"] = (values == level).fillna(False).to_numpy(dtype=bool)
    return out


def _pct(part: int, whole: int) -> float | None:
    return 100.0 * part / whole if whole else None


def _describe(values: pd.Series, spec: Field) -> dict[str, Any]:
    known = values.dropna()
    out: dict[str, Any] = {"type": spec.type, "n_known": int(known.size), "missing": int(values.size - known.size)}
    if spec.type == "boolean":
        k = int(known.astype(bool).sum())
        out.update(n_true=k, pct_true=_pct(k, known.size))
    elif spec.type == "category":
        levels = list(spec.levels) or sorted(known.astype(str).unique())
        counts = {level: int((known == level).sum()) for level in levels}
        out.update(counts=counts, pct={level: _pct(n, known.size) for level, n in counts.items()})
    else:
        x = known.to_numpy(dtype=float)
        q1, med, q3 = np.percentile(x, [25, 50, 75]) if x.size else (np.nan, np.nan, np.nan)
        out.update(median=float(med), q1=float(q1), q3=float(q3))
    return out


def table1(df: pd.DataFrame, fields: Sequence[Field]) -> dict[str, Any]:
    """Baseline characteristics overall, by pCE and by LMD.

    Booleans as n (%) true, categories as n (%) per level (the dictionary's levels, zeros
    included), numbers as median and interquartile range (linear interpolation between order
    statistics, numpy's default); percentages are of the patients with a known value.

    Parameters
    ----------
    df : pandas.DataFrame
        Checked cohort.
    fields : sequence of Field
        The baseline fields to describe, in display order.

    Returns
    -------
    dict
        ``groups`` (group -> n) and ``variables`` (field -> group -> summary).
    """
    masks = groups(df)
    return {
        "groups": {g: int(m.sum()) for g, m in masks.items()},
        "variables": {f.name: {g: _describe(df.loc[m, f.name], f) for g, m in masks.items()} for f in fields},
    }


def _response_counts(values: pd.Series) -> dict[str, Any]:
    known = values.dropna()
    counts = {r: int((known == r).sum()) for r in RESPONSES}
    orr = counts["CR"] + counts["PR"]
    return {"n": int(known.size), "missing": int(values.size - known.size), "counts": counts,
            "pct": {r: _pct(n, known.size) for r, n in counts.items()}, "orr": orr, "orr_pct": _pct(orr, known.size)}


def response_section(df: pd.DataFrame) -> dict[str, Any]:
    """Best response (CR/PR/SD/PD) and overall response rate (CR + PR), overall and by pCE and LMD.

    For each split two exact tests: response (4 levels) against the split by Freeman-Halton, and
    response (CR or PR) against the split by Fisher; patients without a recorded response are left out.

    Returns
    -------
    dict
        ``available``; ``groups`` (group -> counts, pct, orr, orr_pct, n, missing); ``tests``
        (split -> ``response`` and ``orr`` test results).
    """
    if "best_response" not in df:
        return {"available": False}
    masks = groups(df)
    out: dict[str, Any] = {"available": True,
                           "groups": {g: _response_counts(df.loc[m, "best_response"]) for g, m in masks.items()},
                           "tests": {}}
    for split in _SPLITS:
        no, yes = out["groups"][f"{split}=false"], out["groups"][f"{split}=true"]
        full = [[no["counts"][r], yes["counts"][r]] for r in RESPONSES]
        orr = [[no["orr"], yes["orr"]], [no["n"] - no["orr"], yes["n"] - yes["orr"]]]
        out["tests"][split] = {"response": exact_test(full), "orr": exact_test(orr)}
    return out


def pattern_section(df: pd.DataFrame) -> dict[str, Any]:
    """Event types at CNS-PFS1 and the progression pattern by best response.

    The cross-table counts patients with CNS progression (local, local and distant, distant) by
    best response, tested by Freeman-Halton; the study's finding (distant relapse after CR, local
    progression after refractory disease) is tested as CR against not CR by distant-only against
    any local progression (Fisher).

    Returns
    -------
    dict
        ``available``; ``counts`` (pattern -> n over the whole cohort); with best response also
        ``crosstab`` (response -> pattern -> n), ``test`` and ``cr_distant`` (2 x 2 table and test).
    """
    if "pattern" not in df:
        return {"available": False}
    pattern = df["pattern"]
    levels = ["none", *PROGRESSION, "death"]
    out: dict[str, Any] = {"available": True, "counts": {p: int((pattern == p).sum()) for p in levels},
                           "missing": int(pattern.isna().sum()), "crosstab": None}
    if "best_response" not in df:
        return out
    progressed = df[pattern.isin(PROGRESSION) & df["best_response"].notna()]
    crosstab = {r: {p: int(((progressed["best_response"] == r) & (progressed["pattern"] == p)).sum())
                    for p in PROGRESSION} for r in RESPONSES}
    out["crosstab"] = crosstab
    out["n_progressed"] = int(len(progressed))
    out["test"] = exact_test([[crosstab[r][p] for p in PROGRESSION] for r in RESPONSES])
    cr = progressed["best_response"] == "CR"
    distant = progressed["pattern"] == "distant"
    two_by_two = [[int((cr & distant).sum()), int((cr & ~distant).sum())],
                  [int((~cr & distant).sum()), int((~cr & ~distant).sum())]]
    out["cr_distant"] = {"table": two_by_two, "rows": ["CR", "not CR"], "columns": ["distant only", "any local"],
                         "test": exact_test(two_by_two)}
    return out


def bcell_section(df: pd.DataFrame) -> dict[str, Any]:
    """Peripheral CD19+ B-cell aplasia at CNS progression: n (%) of the patients with a recorded value.

    Returns
    -------
    dict
        ``available``, ``n_known``, ``n_aplasia``, ``pct``.
    """
    if "bcell_aplasia" not in df:
        return {"available": False}
    known = df["bcell_aplasia"].dropna().astype(bool)
    k = int(known.sum())
    return {"available": True, "n_known": int(known.size), "n_aplasia": k, "pct": _pct(k, known.size)}
