"""``cnslrisk validate``: check a cohort file against the data dictionary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import app, console, user_errors

__all__ = ["validate", "validate_cli"]


def validate(path: Path) -> dict[str, Any]:
    """Check the cohort at ``path``; return a summary, or a list of every problem found.

    Returns
    -------
    dict
        ``valid`` (bool), ``path``, ``source`` (synthetic or real), ``sha256``, ``n`` and
        ``events`` when valid; ``problems`` (list of dicts with row, patient_id, field, value,
        expected and message) when not.
    """
    from cnslrisk.model import CohortValidationError, check_cohort, read_cohort

    try:
        raw = read_cohort(path)
        cohort = check_cohort(raw)
    except CohortValidationError as exc:
        problems = [
            {"row": p.row, "patient_id": p.patient_id, "field": p.field,
             "value": None if p.value is None else str(p.value), "expected": p.expected, "message": p.message()}
            for p in exc.problems
        ]
        return {"valid": False, "path": str(path), "problems": problems}
    summary: dict[str, Any] = {
        "valid": True,
        "path": str(path),
        "source": raw.attrs["provenance"]["source"],
        "sha256": raw.attrs["sha256"],
        "n": int(len(cohort)),
        "events": int(cohort["pfs1_event"].sum()),
    }
    for column in ("best_response", "pattern"):
        if column in cohort:
            summary[column] = {str(k): int(v) for k, v in cohort[column].value_counts().sort_index().items()}
    return summary


# fmt: off
@app.command("validate")
def validate_cli(
    path: Annotated[Path, typer.Argument(help="Cohort file, CSV or Parquet.", dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (for machines).")] = False,
) -> None:
    # fmt: on
    """Check a cohort file against the data dictionary and report ALL problems at once.

    Each problem names the row (1-based data row, header and # comment lines not counted), the
    patient id where present, the field, the bad value and what was expected. Exit code 0 when the
    cohort is valid, 1 otherwise. Example: cnslrisk validate data/example_cohort.csv
    """
    with user_errors():
        result = validate(path)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif result["valid"]:
        console.print(f"[green]valid[/]: {result['path']} ({result['source']} cohort, n = {result['n']}, "
                      f"{result['events']} events)", highlight=False)
    else:
        console.print(f"[bold red]invalid[/]: {result['path']}: {len(result['problems'])} problem(s)", highlight=False)
        for problem in result["problems"]:
            console.print("  " + problem["message"], markup=False, highlight=False)
    if not result["valid"]:
        raise typer.Exit(1)
