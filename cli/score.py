"""``cnslrisk score``: one patient (JSON) or a whole file (CSV/Parquet) with a registered model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ._app import app, console, err_console, fail, user_errors
from .score_summary import print_summary

__all__ = ["score_cli", "parse_patients", "parse_horizons"]


def parse_patients(text: str, source: str) -> list[dict[str, Any]]:
    """One patient object or a list of them, from JSON text; errors name the source and position."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    records = value if isinstance(value, list) else [value]
    if not records or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{source}: expected a JSON object (one patient) or a non-empty list of objects")
    return records


def parse_horizons(text: str | None) -> tuple[float, ...] | None:
    """``"3,6,12"`` → (3.0, 6.0, 12.0); positive and increasing."""
    if not text:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"--horizons {text!r}: expected comma-separated numbers, e.g. 3,6,12") from None
    if min(values) <= 0 or list(values) != sorted(set(values)):
        raise ValueError(f"--horizons {text!r}: horizons must be positive and increasing")
    return values


# fmt: off
@app.command("score")
def score_cli(
    model_uri: Annotated[str | None, typer.Option("--model", "-m", help="MLflow model URI: models:/NAME@champion, models:/NAME/3, runs:/ID/model or a path. Default: models:/cnslrisk-pfs1@champion.")] = None,  # noqa: E501
    patient: Annotated[str | None, typer.Option("--patient", "-p", help="One patient as JSON (or a JSON list), e.g. '{\"age\": 61, \"pce\": true, ...}'.")] = None,  # noqa: E501
    patient_file: Annotated[Path | None, typer.Option("--patient-file", help="A file holding the patient JSON.", dir_okay=False)] = None,  # noqa: E501
    input_path: Annotated[Path | None, typer.Option("--input", "-i", help="Batch: a CSV or Parquet file of patients.", dir_okay=False)] = None,  # noqa: E501
    out_path: Annotated[Path | None, typer.Option("--out", "-o", help="Batch: the output file (CSV or Parquet, by extension), written atomically.", dir_okay=False)] = None,  # noqa: E501
    rejects_path: Annotated[Path | None, typer.Option("--rejects", help="Batch: score valid rows and write invalid ones here with their reasons (default: stop on any invalid row).", dir_okay=False)] = None,  # noqa: E501
    strict: Annotated[bool, typer.Option("--strict", help="Batch: refuse every column that is not a model input (by default such columns are ignored and listed).")] = False,  # noqa: E501
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Batch: rows per chunk (memory is bounded by it).", min=1)] = 100_000,  # noqa: E501
    no_band: Annotated[bool, typer.Option("--no-band", help="Batch: leave the 95 % band columns empty (faster; the band of a model with refitted members costs about 50x its prediction).")] = False,  # noqa: E501
    horizons: Annotated[str | None, typer.Option("--horizons", help="Override the model's horizons, e.g. 3,6,12 (in the model's time unit).")] = None,  # noqa: E501
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction as JSON (columns as in the public interface).")] = False,  # noqa: E501
    curve: Annotated[bool, typer.Option("--curve", help="Include the full predicted curve (with --json).")] = False,  # noqa: E501
    plot: Annotated[Path | None, typer.Option("--plot", help="Draw the curve with its band and the training Kaplan-Meier curve to this PNG.", dir_okay=False)] = None,  # noqa: E501
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")] = None,  # noqa: E501
) -> None:
    # fmt: on
    """Predict CNS-PFS1 (survival at each horizon with a 95 % band, median, risk group) and the relapse pattern.

    One patient: `--patient JSON` or `--patient-file FILE` prints a summary (or `--json`) with the
    model's provenance, per-covariate contributions and applicability warnings. Many patients:
    `--input FILE --out FILE` streams in chunks with a progress bar, carries the id column through,
    and writes atomically; invalid rows stop the run unless `--rejects FILE` is given. Row counts
    in = scored + rejected are printed, and the columns that are not model inputs, which are ignored
    (`--strict` refuses them; a near-miss of an input's name is always refused).
    Example: `cnslrisk score --patient-file data/example_patient.json`
    """
    from cnslrisk.registry import load_risk_model, resolve_model_uri, use_tracking

    sources = [patient is not None, patient_file is not None, input_path is not None]
    if sum(sources) != 1:
        fail("error", "give exactly one of --patient, --patient-file or --input FILE --out FILE")
    if input_path is not None and out_path is None:
        fail("error", "--input needs --out FILE (CSV or Parquet)")
    with user_errors():
        chosen = parse_horizons(horizons)
        use_tracking(tracking_uri, explicit=True)
        model, _ = load_risk_model(resolve_model_uri(model_uri))
        if input_path is not None:
            _score_batch(model, input_path, out_path, rejects_path, chosen, chunk_size, strict, not no_band)
            return
        text = patient if patient is not None else patient_file.read_text(encoding="utf-8")
        records = parse_patients(text, "--patient" if patient is not None else str(patient_file))
        result = _score_patients(model, records, chosen, curve or plot is not None)
    if plot is not None:
        _plot(model, result, plot)
    if as_json:
        if not curve:
            for row in result["predictions"]:
                row.pop("curve", None)
        typer.echo(json.dumps(result, indent=2))
    else:
        print_summary(model, result, records)


def _score_patients(model: Any, records: list[dict[str, Any]], horizons: tuple[float, ...] | None,
                    curve: bool) -> dict[str, Any]:
    from cnslrisk.serving.scoring import score_records

    return score_records(model, records, horizons=horizons, curve=curve)


def _plot(model: Any, result: dict[str, Any], path: Path) -> None:
    import numpy as np

    from cnslrisk.serving.plots import plot_patient_curve

    row = result["predictions"][0]
    c = row["curve"]
    band = (None, None) if c["lower"] is None else (np.asarray(c["lower"]), np.asarray(c["upper"]))
    figure = plot_patient_curve(np.asarray(c["time"]), np.asarray(c["survival"]), *band,
                                training_km=model.training_km, horizons=result["horizons"],
                                time_unit=model.time_unit, notice=result["provenance"]["notice"])
    figure.savefig(path)
    err_console.print(f"plot written to {path}", highlight=False)


def _score_batch(model: Any, input_path: Path, out_path: Path, rejects_path: Path | None,
                 horizons: tuple[float, ...] | None, chunk_size: int, strict: bool, band: bool) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cnslrisk.serving.batch import count_rows, score_file

    total = count_rows(input_path)
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as display:
        task = display.add_task("scoring", total=total)
        summary = score_file(model, input_path, out_path, rejects_path=rejects_path, horizons=horizons,
                             chunk_size=chunk_size, strict=strict, band=band,
                             progress=lambda k: display.advance(task, k))
    console.print(f"rows in {summary.rows_in} = scored {summary.scored} + rejected {summary.rejected}; "
                  f"output {summary.out}" + (f", rejects {summary.rejects}" if summary.rejects else ""),
                  highlight=False)
    if summary.ignored:
        console.print(summary.columns.summary(), highlight=False, markup=False)
