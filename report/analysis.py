"""The report's numbers: every section of the study's analysis computed on one checked cohort."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.contract import data_dictionary
from cnslrisk.model.outputs import json_safe

from .survival import cox_models, km_summary, logrank
from .tables import RESPONSES, bcell_section, groups, pattern_section, response_section, table1

__all__ = ["RISK_FACTORS", "OPTIONAL_SECTIONS", "analyse", "resolve_covariates"]

RISK_FACTORS = ("pce", "lmd")
OPTIONAL_SECTIONS = ("response", "pattern", "bcell_aplasia", "pfs2")


def resolve_covariates(covariates: Sequence[str] | None) -> list[str]:
    """pCE, LMD, then each further baseline field asked for (duplicates dropped, order kept).

    Raises
    ------
    ValueError
        When a name is not a baseline field of the data dictionary.
    """
    baseline = [f.name for f in data_dictionary().fields if f.role == "baseline"]
    out = list(RISK_FACTORS)
    for name in covariates or ():
        if name not in baseline:
            raise ValueError(
                f"option --covariate: {name!r} is not a baseline field; expected one of {{{', '.join(baseline)}}}"
            )
        if name not in out:
            out.append(name)
    return out


def _km_by(event: np.ndarray, time: np.ndarray, labels: np.ndarray, order: Sequence[str]) -> dict[str, Any]:
    present = [g for g in order if (labels == g).any()]
    return {"groups": {g: km_summary(event[labels == g], time[labels == g]) for g in present},
            "logrank": logrank(event, time, labels)}


def _pfs1(df: pd.DataFrame) -> dict[str, Any]:
    event, time = df["pfs1_event"].to_numpy(bool), df["pfs1_months"].to_numpy(float)
    out: dict[str, Any] = {"overall": km_summary(event, time)}
    masks = groups(df)
    for split in RISK_FACTORS:
        labels = np.where(masks[f"{split}=true"], "true", np.where(masks[f"{split}=false"], "false", "missing"))
        keep = labels != "missing"
        out[f"by_{split}"] = _km_by(event[keep], time[keep], labels[keep], ("false", "true"))
    return out


def _pfs2(df: pd.DataFrame) -> dict[str, Any]:
    if not {"pfs2_months", "pfs2_event"} <= set(df.columns):
        return {"available": False}
    data = df[df["pfs2_months"].notna() & df["pfs2_event"].notna()]
    event, time = data["pfs2_event"].to_numpy(bool), data["pfs2_months"].to_numpy(float)
    out: dict[str, Any] = {"available": True, "overall": km_summary(event, time), "by_salvage": None}
    if "salvage" in data:
        labels = data["salvage"].fillna("missing").astype(str).to_numpy()
        order = [*data_dictionary()["salvage"].levels, "missing"]
        out["by_salvage"] = _km_by(event, time, labels, order)
    return out


def analyse(
    df: pd.DataFrame,
    *,
    covariates: Sequence[str] | None = None,
    provenance: Mapping[str, Any] | None = None,
    sha256: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Compute every section of the report on a checked cohort.

    Parameters
    ----------
    df : pandas.DataFrame
        Cohort as returned by :func:`cnslrisk.model.check_cohort`.
    covariates : sequence of str, optional
        Baseline fields added to pCE and LMD in the Cox models.
    provenance : mapping, optional
        The file's provenance (``source`` synthetic or real); default real.
    sha256 : str, optional
        Hash of the cohort file.
    path : path-like, optional
        The cohort file (only its name is reported).

    Returns
    -------
    dict
        JSON-ready (NaN as None): ``cohort``, ``table1``, ``response``, ``pfs1``, ``pattern``, ``cox``,
        ``bcell_aplasia``, ``pfs2`` and ``absent`` (optional sections without their fields).
    """
    names = resolve_covariates(covariates)
    spec = data_dictionary().by_name()
    provenance = dict(provenance or {"source": "real"})
    baseline = [f for f in data_dictionary().fields if f.role == "baseline" and f.name in df]
    result = {
        "cohort": {
            "file": None if path is None else Path(path).name,
            "sha256": sha256,
            "source": provenance.get("source", "real"),
            "synthetic": provenance.get("source") == "synthetic",
            "provenance": provenance,
            "n": int(len(df)),
            "events": int(df["pfs1_event"].sum()),
            "fields": [c for c in df.columns if c in spec and c != data_dictionary().id],
        },
        "table1": table1(df, baseline),
        "response": response_section(df),
        "pfs1": _pfs1(df),
        "pattern": pattern_section(df),
        "cox": {"covariates": names, **cox_models(df, names, {n: spec[n].type for n in names})},
        "bcell_aplasia": bcell_section(df),
        "pfs2": _pfs2(df),
        "response_levels": list(RESPONSES),
    }
    result["absent"] = [s for s in OPTIONAL_SECTIONS if not result[s]["available"]]
    return json_safe(result)
