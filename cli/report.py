"""``cnslrisk report``: the study's analysis reproduced on a cohort, as a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, console, user_errors

__all__ = ["report_cli"]


# fmt: off
@app.command("report")
def report_cli(
    cohort: Annotated[Path, typer.Argument(help="Cohort file, CSV or Parquet, in the data dictionary's column names.", dir_okay=False)],  # noqa: E501
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html and report.json (created when missing).", file_okay=False)] = Path("report"),  # noqa: E501
    covariate: Annotated[list[str] | None, typer.Option("--covariate", "-c", help="Baseline field added to pCE and LMD in the Cox models; repeat for more.")] = None,  # noqa: E501
) -> None:
    # fmt: on
    """Write a self-contained HTML report reproducing the study's analysis (Kaulen et al. 2026) on a cohort.

    Reads and checks the cohort, then writes OUT/report.html (Table 1 overall and by pCE and LMD,
    response with exact tests, Kaplan-Meier CNS-PFS1 with medians and log-rank tests, progression
    pattern by response, univariable and multivariable Cox with forest plots, B-cell aplasia and
    CNS-PFS2 where present, provenance and sample-size caveats) and OUT/report.json with the
    numbers. Figures are embedded; the page needs no internet and shows aggregates only. An
    invalid cohort writes nothing and exits 1. Example: cnslrisk report data/example_cohort.csv --out report
    """
    from cnslrisk.report import report

    with user_errors():
        path = report(cohort, out, covariates=covariate)
    console.print(f"[green]wrote[/] {path} and {path.with_name('report.json')}", highlight=False)
