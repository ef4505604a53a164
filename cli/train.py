"""``cnslrisk train``, ``cnslrisk promote`` and ``cnslrisk card``: the modeller's commands."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import app, console, user_errors

__all__ = ["train_cli", "promote_cli", "card_cli", "parse_overrides"]


def parse_overrides(pairs: list[str]) -> list[tuple[str, Any]]:
    """``["validation.repeats=2", "models.fit=['cox']"]`` → dotted keys with TOML-typed values."""
    out = []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set validation.repeats=2")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text  # a bare word is a string: --set mlflow.experiment=demo
        out.append((key.strip(), value))
    return out


def _progress_display(config: Any):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cnslrisk.training.comparison import reference_kinds
    from cnslrisk.training.landmark import landmark_config
    from cnslrisk.training.nested import OUTER_FOLDS, OUTER_REPEATS

    v = config.validation
    kinds = len(config.models.fit) + len(reference_kinds(config.features.binary))
    totals = {"cross-validation": kinds * v.folds * v.repeats, "bootstrap": v.bootstrap,
              "validation": v.folds * config.pattern.repeats, "nested selection": OUTER_FOLDS * OUTER_REPEATS}
    if config.landmark.time is not None:  # its comparison: the Cox model and its own reference rows
        post_kinds = 1 + len(reference_kinds(landmark_config(config).features.binary))
        totals["post-response cross-validation"] = post_kinds * v.folds * v.repeats
    display = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                       console=console)
    tasks: dict[str, Any] = {}

    def advance(stage: str, steps: int) -> None:
        if stage not in tasks:
            tasks[stage] = display.add_task(stage, total=totals.get(stage, totals.get(stage.rsplit(" ", 1)[-1])))
        display.advance(tasks[stage], steps)

    return display, advance


def _interval(figure: dict[str, Any]) -> str:
    """``0.643 (0.509 to 0.778)``; undefined parts as a dash."""
    mean, low, high = (figure.get(k) for k in ("mean", "ci_lower", "ci_upper"))
    if mean is None:
        return "—"
    return f"{mean:.3f}" + ("" if low is None or high is None else f" ({low:.3f} to {high:.3f})")


def _print_selection(card: dict[str, Any]) -> None:
    """The out-of-fold comparison as a table, then the rule, the decision and whether it beats the null model."""
    from rich.table import Table

    selection = card["selection"]
    table = Table(title="out-of-fold comparison (same splits; 95 % corrected CI)", title_justify="left")
    for header in ("model", "Harrell C", "integrated Brier", "calibration slope"):
        table.add_column(header)
    for kind, entry in card["candidates"].items():
        cells = [entry["cv"][m] for m in ("c_index", "ibs", "calibration_slope")]
        table.add_row(f"{kind}{' (chosen)' if kind == selection['chosen'] else ''}", *(_interval(c) for c in cells))
    console.print(table)
    console.print(f"rule: {selection['rule']}", highlight=False, markup=False)
    console.print(f"chosen: {selection['reason']}", highlight=False, markup=False)
    for note in selection["notes"]:
        console.print(f"note: {note}", highlight=False, markup=False)
    nested = selection.get("nested")
    if nested:
        console.print(f"the whole selection validated ({nested['design']}): Harrell C {_interval(nested['c_index'])}, "
                      f"integrated Brier {_interval(nested['ibs'])}; chosen per outer fold {nested['chosen']}",
                      highlight=False, markup=False)
    if not selection["beats_null"]:
        console.print("[bold red]the chosen model does NOT beat the Kaplan-Meier null model out of fold: no "
                      "demonstrated signal; registered as challenger, not made champion[/]")
    elif not selection["champion_eligible"]:
        console.print("[bold red]no candidate is calibrated within the promotion gate's band: registered as "
                      "challenger, not made champion[/]")


# fmt: off
@app.command("train")
def train_cli(
    config_path: Annotated[Path | None, typer.Option("--config", "-c", help="Training config (TOML). Default: the bundled config on the bundled synthetic example cohort.", dir_okay=False)] = None,  # noqa: E501
    overrides: Annotated[list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set validation.repeats=2 (repeatable; values are TOML).")] = None,  # noqa: E501
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    # fmt: on
    """Fit, validate, register and document a CNS-PFS1 model from a config.

    Reads the cohort named by the config, validates it against the data dictionary (nothing is
    logged when it is invalid), fits each model type in `models.fit` (Cox, penalized Cox, random
    survival forest), runs repeated cross-validation and bootstrap optimism correction, logs
    everything to MLflow (`MLFLOW_TRACKING_URI` or `mlflow.tracking_uri`, default a SQLite file in
    the working directory) and registers the best model as a new version with alias `challenger`
    (the first version also becomes `champion`). Example: `cnslrisk train --set validation.bootstrap=50`
    """
    from cnslrisk.training import load_config, train

    with user_errors():
        config = load_config(config_path, parse_overrides(overrides or []), training=True)
        display, advance = _progress_display(config)
        with display:
            result = train(config, progress=advance)
    card = result.card
    if as_json:
        typer.echo(json.dumps({"run_id": result.run_id, "name": result.name, "version": result.version,
                               "model_type": result.model_type, "aliases": list(result.aliases),
                               "metrics": result.metrics}, indent=2))
        return
    _print_selection(card)
    console.print(f"registered [bold]{result.name}[/] version {result.version} ({result.model_type}), aliases: "
                  f"{', '.join(result.aliases)}; run {result.run_id}", highlight=False)
    if card["training_data"]["source"] == "synthetic":
        console.print("[bold yellow]trained on SYNTHETIC data: not for clinical use[/]")
    if not card["sample_size"]["adequate"]:
        console.print(f"[yellow]sample size:[/] {card['sample_size']['warning']}", highlight=False)
    band_check = card["model"].get("band_check")
    if band_check and band_check["conservative_share"] > 0:
        console.print(f"[yellow]band:[/] {band_check['advice']}", highlight=False)
    landmark = card.get("post_response")
    if landmark:
        from cnslrisk.serving.labels import duration

        console.print(f"post-response model at {duration(landmark['landmark_time'], landmark['time_unit'])}: "
                      f"{landmark['n']} patients progression-free then with a known {landmark['response']}, "
                      f"{landmark['events']} events; out-of-fold C "
                      f"{landmark['validation']['cv']['c_index']['mean']:.3f}; events per parameter "
                      f"{landmark['sample_size']['events_per_parameter']:.1f}", highlight=False)


# fmt: off
@app.command("promote")
def promote_cli(
    config_path: Annotated[Path | None, typer.Option("--config", "-c", help="Training config whose [mlflow] and [promotion] tables apply.", dir_okay=False)] = None,  # noqa: E501
    model_version: Annotated[str | None, typer.Option("--version", help="Version to promote (default: the one with alias challenger).")] = None,  # noqa: E501
    force: Annotated[bool, typer.Option("--force", help="Promote even if the gate refuses (recorded on the version).")] = False,  # noqa: E501
    cohort: Annotated[Path | None, typer.Option("--cohort", help="The challenger's training cohort (checked by SHA-256): the champion is evaluated on it when it was trained on another cohort.", exists=True, dir_okay=False)] = None,  # noqa: E501
    holdout: Annotated[Path | None, typer.Option("--holdout", help="A cohort neither model was trained on: both are evaluated on it and must pass too.", exists=True, dir_okay=False)] = None,  # noqa: E501
) -> None:
    # fmt: on
    """Move the registry alias `champion` to the challenger when it passes the gate on the SAME data.

    The gate (config table `[promotion]`): the challenger beat the Kaplan-Meier null model out of fold,
    its out-of-fold calibration slope lies in `[slope_lower, slope_upper]` and its out-of-fold C is no
    worse than the champion's C on the same cohort by more than `c_index_margin`: the champion's
    out-of-fold C when both were trained
    on the same cohort, else the champion's external C on the challenger's training cohort
    (`--cohort`; without it the gate refuses rather than compare two cohorts). `--holdout` adds an
    external comparison of both on a held-out cohort. The reason is printed and recorded as tags on
    the version; `--force` overrides and is recorded. Exit code 1 when refused.
    Example: `cnslrisk promote --cohort data/registry_2025.csv`
    """
    from cnslrisk.registry import use_tracking
    from cnslrisk.training import load_config
    from cnslrisk.training.promote import promote

    with user_errors():
        config = load_config(config_path)
        use_tracking(config.mlflow.tracking_uri, config.mlflow.experiment)
        decision = promote(config.mlflow.registered_model, gate=config.promotion, version=model_version, force=force,
                           cohort=cohort, holdout=holdout, config=config)
    verdict = "[green]promoted[/]" if decision.promoted else "[red]not promoted[/]"
    console.print(f"{verdict} {decision.name} version {decision.challenger} (champion before: "
                  f"{decision.champion_before or 'none'}): ", end="")
    console.print(decision.reason, markup=False, highlight=False)
    if not decision.promoted:
        raise typer.Exit(1)


# fmt: off
@app.command("card")
def card_cli(
    model_uri: Annotated[str | None, typer.Argument(help="MLflow model URI (models:/NAME@champion, runs:/…, a path). Default: the registry's champion.")] = None,  # noqa: E501
    as_json: Annotated[bool, typer.Option("--json", help="Print the card as JSON.")] = False,
) -> None:
    # fmt: on
    """Print a model's card: data provenance, coefficients, validation, sample size, intended use.

    Example: `cnslrisk card models:/cnslrisk-pfs1@champion --json`
    """
    from cnslrisk.registry import load_risk_model, model_card, resolve_model_uri, use_tracking
    from cnslrisk.training.card import render_markdown

    with user_errors():
        use_tracking()
        model, _ = load_risk_model(resolve_model_uri(model_uri))
        card = model_card(model)
    if as_json:
        typer.echo(json.dumps(card, indent=2))
    else:
        console.print(render_markdown(card), markup=False, highlight=False)

