"""``cnslrisk validate``: check a cohort file against its contract (the CNSL dictionary, a config's or a model's)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import app, console, user_errors

__all__ = ["validate", "validate_cli"]


def _problems(error: Any) -> list[dict[str, Any]]:
    return [{"row": p.row, "patient_id": p.patient_id, "field": p.field,
             "value": None if p.value is None else str(p.value), "expected": p.expected, "message": p.message()}
            for p in error.problems]


def validate(path: Path, *, config: Path | None = None, model_uri: str | None = None) -> dict[str, Any]:
    """Check the cohort at ``path``; return a summary, or a list of every problem found.

    Parameters
    ----------
    path : pathlib.Path
        Cohort file, CSV or Parquet.
    config : pathlib.Path, optional
        A training config: check the columns it names by its contract (its ``[fields]``, its data
        dictionary, the kinds it gives the covariates), as training will; other columns are ignored.
    model_uri : str, optional
        A model: check the file as scoring input by the model's own contract (its covariates; other
        columns ignored and listed, a near-miss of an input's name refused).

    Returns
    -------
    dict
        ``valid`` (bool), ``path``, ``contract`` (what the file was checked by), ``source`` (synthetic
        or real), ``sha256``, ``n`` and (for a cohort with outcomes) ``events`` when valid, ``ignored``
        columns with a model; ``problems`` (list of dicts with row, patient_id, field, value,
        expected and message) when not.
    """
    from cnslrisk.model import CohortValidationError, check_cohort, read_cohort

    contract = "the CNSL data dictionary"
    summary: dict[str, Any] = {"path": str(path)}
    try:
        raw = read_cohort(path)
        if model_uri is not None:
            from cnslrisk.registry import load_risk_model, resolve_model_uri, use_tracking

            use_tracking()
            model, _ = load_risk_model(resolve_model_uri(model_uri))
            contract = f"the contract of model {model_uri} (scoring input)"
            cohort, columns = model.check_frame(raw)
            summary["ignored"] = list(columns.ignored)
        elif config is not None:
            from cnslrisk.training import load_config
            from cnslrisk.training.data import load_training_data

            contract = f"the contract of config {config}"
            loaded = load_config(config, [("data.path", str(path.resolve()))])
            data = load_training_data(loaded)
            cohort, summary["events"] = data.X, data.events
        else:
            cohort = check_cohort(raw)
            summary["events"] = int(cohort["pfs1_event"].sum())
    except CohortValidationError as exc:
        return {"valid": False, **summary, "contract": contract, "problems": _problems(exc)}
    summary.update(valid=True, contract=contract, source=raw.attrs["provenance"]["source"], sha256=raw.attrs["sha256"],
                   n=int(len(cohort)))
    for column in ("best_response", "pattern"):
        if config is None and model_uri is None and column in cohort:
            summary[column] = {str(k): int(v) for k, v in cohort[column].value_counts().sort_index().items()}
    return summary


# fmt: off
@app.command("validate")
def validate_cli(
    path: Annotated[Path, typer.Argument(help="Cohort file, CSV or Parquet.", dir_okay=False)],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Check by this training config's contract (its [fields], data dictionary and covariate kinds), as training will.", exists=True, dir_okay=False)] = None,  # noqa: E501
    model_uri: Annotated[str | None, typer.Option("--model", "-m", help="Check as scoring input by this model's own contract (MLflow model URI); other columns are ignored and listed.")] = None,  # noqa: E501
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON (for machines).")] = False,
) -> None:
    # fmt: on
    """Check a cohort file against its data contract and report ALL problems at once.

    By default the contract is the CNSL data dictionary; `--config` checks by a training config's
    own rules (another disease's cohort), `--model` by a registered model's contract, as scoring
    will. Each problem names the row (1-based data row, header and # comment lines not counted), the
    patient id where present, the field, the bad value and what was expected. Exit code 0 when the
    cohort is valid, 1 otherwise. Example: cnslrisk validate data/example_cohort.csv
    """
    if config is not None and model_uri is not None:
        from ._app import fail

        fail("error", "give at most one of --config and --model")
    with user_errors():
        result = validate(path, config=config, model_uri=model_uri)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    elif result["valid"]:
        events = f", {result['events']} events" if "events" in result else ""
        console.print(f"[green]valid[/]: {result['path']} ({result['source']} cohort, n = {result['n']}{events}; "
                      f"checked by {result['contract']})", highlight=False)
        if result.get("ignored"):
            console.print(f"ignored (not model inputs): {', '.join(result['ignored'])}", markup=False, highlight=False)
    else:
        console.print(f"[bold red]invalid[/]: {result['path']}: {len(result['problems'])} problem(s) "
                      f"(checked by {result['contract']})", highlight=False)
        for problem in result["problems"]:
            console.print("  " + problem["message"], markup=False, highlight=False)
    if not result["valid"]:
        raise typer.Exit(1)
