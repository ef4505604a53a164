"""``cnslrisk evaluate`` and ``cnslrisk recalibrate``: a registered model on a new cohort."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import app, console, user_errors

__all__ = ["evaluate_cli", "recalibrate_cli"]


def _ci(values: list[float | None] | None) -> str:
    if not values or values[0] is None:
        return ""
    return f" ({values[0]:.3f} to {values[1]:.3f})"


def _num(value: float | None) -> str:
    return "undefined" if value is None else f"{value:.3f}"


def _print_evaluation(summary: dict[str, Any], time_unit: str) -> None:
    from rich.table import Table

    cohort, model = summary["cohort"], summary["model"]
    console.print(f"model {model.get('name', '?')} version {model.get('version', '?')} ({model['type']}) on a "
                  f"{cohort['source']} cohort (n = {cohort['n']}, {cohort['events']} events, sha256 "
                  f"{cohort['sha256'][:12]})", highlight=False)
    console.print(f"Harrell's C {_num(summary['c_index'])}{_ci(summary.get('c_index_ci'))}; Uno's C "
                  f"{_num(summary['uno_c'])}{_ci(summary.get('uno_c_ci'))}; calibration slope "
                  f"{_num(summary['calibration_slope'])}{_ci(summary['calibration_slope_ci'])}; IBS "
                  f"{_num(summary['ibs'])}", highlight=False)
    table = Table(show_header=True)
    for column in (f"horizon ({time_unit})", "observed", "predicted", "CITL (95% CI)", "slope", "Brier", "AUC"):
        table.add_column(column, justify="right")
    for label, h in summary["horizons"].items():
        table.add_row(label, _num(h["observed"]), _num(h["predicted"]),
                      f"{_num(h['calibration_in_the_large'])}{_ci(h['calibration_in_the_large_ci'])}",
                      _num(h["calibration_slope"]), _num(h["brier"]), f"{_num(h['auc'])}{_ci(h.get('auc_ci'))}")
    console.print(table)
    for row in summary.get("periods", []):
        flag = f" [bold red]FLAG: {row['flag']}[/]" if row["flag"] else ""
        console.print(f"period {row['period']}: n = {row['n']}, C {_num(row['c_index'])}, slope "
                      f"{_num(row['calibration_slope'])}{flag}", highlight=False)
    for reason in (*summary["notes"], *(f"{k}: {v}" for k, v in summary["reasons"].items())):
        console.print(f"[yellow]note:[/] {reason}", highlight=False)
    if "run_id" in summary:
        console.print(f"logged as MLflow run {summary['run_id']}", highlight=False)


# fmt: off
@app.command("evaluate")
def evaluate_cli(
    model_uri: Annotated[str, typer.Argument(help="MLflow model URI (models:/NAME@champion, models:/NAME/3, runs:/…, a path).")],  # noqa: E501
    cohort: Annotated[Path, typer.Option("--cohort", help="Cohort with outcomes, CSV or Parquet.", exists=True, dir_okay=False)],  # noqa: E501
    config_path: Annotated[Path | None, typer.Option("--config", "-c", help="Config (TOML) mapping the outcome columns ([data]) and naming the tracking store; default: the bundled config.", dir_okay=False)] = None,  # noqa: E501
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Folder for summary.json, tables (CSV) and plots (PNG).", file_okay=False)] = None,  # noqa: E501
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples for the CIs of C and AUC (0: none).", min=0)] = 200,  # noqa: E501
    period_column: Annotated[str | None, typer.Option("--period-column", help="Year or date column: figures per year, flagged outside the bands.")] = None,  # noqa: E501
    citl_band: Annotated[float, typer.Option("--citl-band", help="Flag a period whose |calibration-in-the-large| exceeds this (survival scale).", min=0)] = 0.1,  # noqa: E501
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log an MLflow run or tag the model version.")] = False,  # noqa: E501
) -> None:
    # fmt: on
    """Evaluate a registered model on a cohort it has never seen (external validation).

    Reports Harrell's and Uno's C and the time-dependent AUC with bootstrap 95 % CIs, and per
    horizon the calibration-in-the-large (Kaplan-Meier minus mean predicted survival), calibration
    slope, Brier score, plus the integrated Brier score, decision curves, per-cause figures of the
    pattern model and a case-mix comparison with the training cohort. Logs an evaluation run
    linked to the model version and adds a `validated_on.<k>` tag to the version (aggregates only).
    `--period-column` reports per year and flags years whose slope leaves `[promotion]`'s band or
    whose |CITL| exceeds `--citl-band`.
    Example: `cnslrisk evaluate models:/cnslrisk-pfs1@champion --cohort new.csv --json`
    """
    from cnslrisk.training.evaluate import evaluate

    with user_errors():
        result = evaluate(model_uri, cohort, config=config_path, out=out, bootstrap=bootstrap,
                          period_column=period_column, citl_band=citl_band, log=not no_log)
    if as_json:
        typer.echo(json.dumps(result.summary, indent=2))
        return
    _print_evaluation(result.summary, result.time_unit)
    if out is not None:
        console.print(f"[green]wrote[/] {out}", highlight=False)


# fmt: off
@app.command("recalibrate")
def recalibrate_cli(
    model_uri: Annotated[str, typer.Argument(help="MLflow model URI of a cox or coxnet model.")],
    cohort: Annotated[Path, typer.Option("--cohort", help="Cohort with outcomes, CSV or Parquet.", exists=True, dir_okay=False)],  # noqa: E501
    method: Annotated[str, typer.Option("--method", help="intercept (baseline only), slope (baseline and slope) or auto (likelihood-ratio test of slope = 1).")] = "auto",  # noqa: E501
    config_path: Annotated[Path | None, typer.Option("--config", "-c", help="Config (TOML) mapping the outcome columns and naming the tracking store.", dir_okay=False)] = None,  # noqa: E501
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    # fmt: on
    """Recalibrate a Cox model to a new cohort and register it as a new version with its lineage.

    `intercept` re-estimates the Breslow baseline hazard with the linear predictor as offset;
    `slope` also multiplies the coefficients by the calibration slope; `auto` picks `slope` when the
    likelihood-ratio test of slope = 1 gives p < 0.05. The new version is tagged with its parent,
    method and cohort hash; its run holds the before/after calibration figures. No alias moves.
    Example: `cnslrisk recalibrate models:/cnslrisk-pfs1@champion --cohort new.csv --method intercept`
    """
    from cnslrisk.training.recalibrate import recalibrate

    with user_errors():
        out = recalibrate(model_uri, cohort, config=config_path, method=method)
    if as_json:
        typer.echo(json.dumps(out, indent=2))
        return
    console.print(f"registered [bold]{out['name']}[/] version {out['version']} (parent {out['parent_version']}), "
                  f"method {out['method']} ({out['test']['chosen_by']}); slope on the cohort "
                  f"{out['test']['slope']:.3f} "
                  f"(p = {out['test']['p']:.3g}); run {out['run_id']}", highlight=False)
    for label, after in out["after"]["horizons"].items():
        before = out["before"]["horizons"][label]
        console.print(f"calibration-in-the-large at {label}: {_num(before['calibration_in_the_large'])} before, "
                      f"{_num(after['calibration_in_the_large'])}{_ci(after['calibration_in_the_large_ci'])} after",
                      highlight=False)
