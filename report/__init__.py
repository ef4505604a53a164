"""Cohort report: the study's analysis (Kaulen et al. 2026) reproduced on any cohort, as HTML and JSON.

:func:`report` reads and checks a cohort, computes every section (:mod:`.analysis`), draws the
figures (:mod:`.figures`) and writes ``report.html`` (self-contained) and ``report.json`` (the
numbers) into a folder. Only aggregates are written, never a patient row or identifier.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from cnslrisk.model.cohort_io import atomic_output

from .analysis import analyse, resolve_covariates
from .figures import report_figures
from .html import render_html

__all__ = ["report", "analyse", "render_html", "report_figures", "resolve_covariates", "HTML_NAME", "JSON_NAME"]

HTML_NAME = "report.html"
JSON_NAME = "report.json"


def report(
    cohort_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, covariates: Sequence[str] | None = None
) -> Path:
    """Write the cohort report (``report.html`` and ``report.json``) into ``out_dir``.

    Parameters
    ----------
    cohort_path : path-like
        Cohort file, CSV or Parquet, in the data dictionary's column names.
    out_dir : path-like
        Folder for the report (created when missing).
    covariates : sequence of str, optional
        Baseline fields added to pCE and LMD in the Cox models.

    Returns
    -------
    pathlib.Path
        The HTML file.

    Raises
    ------
    CohortValidationError
        When the cohort file is missing, unreadable or invalid; nothing is written then.
    ValueError
        When a covariate is not a baseline field.
    """
    from cnslrisk.model import check_cohort, read_cohort

    resolve_covariates(covariates)
    raw = read_cohort(cohort_path)
    cohort = check_cohort(raw)
    numbers = analyse(cohort, covariates=covariates, provenance=raw.attrs["provenance"],
                      sha256=raw.attrs["sha256"], path=cohort_path)
    page = render_html(numbers, report_figures(cohort, numbers))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_output(out / JSON_NAME) as tmp:
        tmp.write_text(json.dumps(numbers, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    with atomic_output(out / HTML_NAME) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return out / HTML_NAME
