"""Serving: scoring one patient or many, the REST API, the web page and the command line."""

from __future__ import annotations

from typing import Any

__all__ = ["Scorer", "load"]


def __getattr__(name: str) -> Any:
    # imported on first use, so that the command line (cnslrisk.serving.cli) starts without scikit-learn and MLflow
    if name in __all__:
        from . import scoring

        return getattr(scoring, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
