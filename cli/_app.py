"""The root Typer app and the one place user errors become a message and an exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer
from rich.console import Console
from rich.text import Text

__all__ = ["app", "console", "err_console", "fail", "user_errors"]

app = typer.Typer(
    name="cnslrisk",
    help=(
        "Predict CD19-CAR T-cell failure in CNS lymphoma: CNS-PFS1 survival, risk group and relapse "
        "pattern, for one patient or a registry. Models trained on the bundled synthetic cohort are "
        "NOT for clinical use."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


@app.callback()
def _root() -> None:
    """Predict CD19-CAR T-cell failure in CNS lymphoma (CNS-PFS1, risk group, relapse pattern)."""
    import logging

    # MLflow's INFO lines (database migrations, registrations) drown the command's own output
    logging.getLogger("mlflow").setLevel(logging.WARNING)
console = Console()
err_console = Console(stderr=True)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix into a red headline on stderr and exit code 1, without a traceback."""
    from cnslrisk.model.contract import CohortValidationError

    try:
        yield
    except CohortValidationError as exc:
        fail("invalid cohort", str(exc))
    except (ValueError, OSError) as exc:  # OSError: a missing file, a full disk, a denied permission
        fail("error", str(exc))


def fail(headline: str, detail: str) -> None:
    """Print ``headline: detail`` to stderr (detail verbatim, never read as markup) and exit 1."""
    err_console.print(Text.assemble((headline, "bold red"), ": ", detail), soft_wrap=True)
    raise typer.Exit(1)
