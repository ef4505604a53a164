"""The ``cnslrisk`` command: one Typer app, one module per sub-command."""

from . import validate  # noqa: F401  (registers the command)
from ._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
