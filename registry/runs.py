"""MLflow runs: start one, and log parameters, metrics, tags, JSON, tables and figures to it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = ["Run", "start_run"]


@dataclass(frozen=True)
class Run:
    """The active MLflow run; every method logs to it.

    Attributes
    ----------
    run_id : str
    """

    run_id: str

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        """Tags of the run (values as text)."""
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Parameters of the run (values as text)."""
        import mlflow

        mlflow.log_params({k: str(v) for k, v in params.items()})

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Numeric figures of the run."""
        import mlflow

        mlflow.log_metrics(dict(metrics))

    def log_json(self, name: str, payload: Any) -> None:
        """``payload`` as a JSON artifact named ``name``."""
        import mlflow

        mlflow.log_text(json.dumps(payload, indent=2, default=str), name)

    def log_table(self, name: str, frame: pd.DataFrame) -> None:
        """``frame`` as a CSV artifact named ``name``."""
        import mlflow

        mlflow.log_text(frame.to_csv(index=False), name)

    def log_figures(self, figures: Mapping[str, Any]) -> None:
        """Matplotlib figures as PNG artifacts under ``plots/``; each is closed once logged."""
        import matplotlib.pyplot as plt
        import mlflow

        for name, figure in figures.items():
            mlflow.log_figure(figure, f"plots/{name}")
            plt.close(figure)


@contextlib.contextmanager
def start_run(run_name: str | None = None, *, tags: Mapping[str, Any] | None = None) -> Iterator[Run]:
    """Start an MLflow run in the current experiment (see :func:`~cnslrisk.registry.use_tracking`).

    Examples
    --------
    >>> with start_run("evaluate", tags={"cnslrisk.evaluation": "external"}) as run:  # doctest: +SKIP
    ...     run.log_metrics({"c_index": 0.7})
    """
    import mlflow

    with mlflow.start_run(run_name=run_name) as active:
        run = Run(active.info.run_id)
        if tags:
            run.set_tags(tags)
        yield run
