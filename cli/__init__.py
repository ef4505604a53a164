"""The ``cnslrisk`` command: one Typer app, one module per sub-command."""

from . import config, evaluate, report, score, serve, synth, train, validate  # noqa: F401  (importing a command module registers it)
from ._app import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()
