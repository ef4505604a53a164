"""``cnslrisk config``: commands about training configs (``config init`` writes a starter config for a cohort)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ._app import app, console, user_errors

__all__ = ["config_app", "init_cli"]

config_app = typer.Typer(name="config", no_args_is_help=True,
                         help="Training configs: `config init COHORT` writes a commented starter config for a cohort "
                              "file (covariate kinds with their evidence, horizons in your time unit).")
app.add_typer(config_app)


# fmt: off
@config_app.command("init")
def init_cli(
    cohort: Annotated[Path, typer.Argument(help="The cohort file, CSV or Parquet.", exists=True, dir_okay=False)],
    time: Annotated[str, typer.Option("--time", help="The column of follow-up times.")],
    time_unit: Annotated[str, typer.Option("--time-unit", help="The unit of the time column, e.g. days (never inferred; horizons are written in it).")],  # noqa: E501
    event: Annotated[str | None, typer.Option("--event", help="The event column (true/false or 1/0).")] = None,
    cause: Annotated[str | None, typer.Option("--cause", help="Instead of --event: the column of competing event types (fits the relapse-pattern model).")] = None,  # noqa: E501
    censored: Annotated[str | None, typer.Option("--censored", help="With --cause: the value meaning no event (inferred only when one value is a usual code for it, e.g. 0).")] = None,  # noqa: E501
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the config here (an existing file is not overwritten); default: print it.", dir_okay=False)] = None,  # noqa: E501
) -> None:
    # fmt: on
    """Write a commented starter training config for a cohort.

    Reads the cohort, gives each column a kind (binary, categorical, numeric, or left out) from its
    values with the evidence in a comment, writes the outcome columns and time unit you give, horizons
    at the quartiles of the event times in that unit (rounded, stated), and the bundled config's
    validation, models and selection. The file loads and trains as written; review the covariates.
    Example: `cnslrisk config init lung.csv --time time --cause status --censored 1 --time-unit days --out lung.toml`
    """
    from cnslrisk.training.config_init import starter_config

    with user_errors():
        text = starter_config(cohort, time=time, time_unit=time_unit, event=event, cause=cause, censored=censored,
                              out=out)
    if out is None:
        typer.echo(text, nl=False)
    else:
        console.print(f"config written to {out}; train it with: cnslrisk train --config {out}", highlight=False)
