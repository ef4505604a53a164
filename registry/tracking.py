"""Where MLflow keeps runs and models: the defaults and the one place the tracking URI is resolved.

The embedded default is a SQLite tracking store and registry in the working directory
(``sqlite:///mlflow.db``), created on first use; any ``MLFLOW_TRACKING_URI`` (for example a
``mlflow server``) works the same way.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_TRACKING_URI", "DEFAULT_EXPERIMENT", "DEFAULT_REGISTERED_MODEL", "CHAMPION", "CHALLENGER",
           "tracking_uri", "use_tracking", "resolve_model_uri"]

# the defaults of the training config's [mlflow] table (shared/interface.md)
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "cnslrisk"
DEFAULT_REGISTERED_MODEL = "cnslrisk-pfs1"
CHAMPION = "champion"
CHALLENGER = "challenger"


def tracking_uri(configured: str | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` when set, else ``configured``, else the local SQLite default.

    The environment wins over a config file (interface.md), so one config serves a laptop and a
    shared ``mlflow server``; an explicit ``--tracking-uri`` is passed by the caller as the
    environment would be.
    """
    return os.environ.get("MLFLOW_TRACKING_URI") or configured or DEFAULT_TRACKING_URI


def use_tracking(uri: str | None = None, experiment: str | None = None, *, explicit: bool = False) -> str:
    """Point MLflow at the tracking store (and the experiment, created when absent); returns the URI used.

    Parameters
    ----------
    uri : str, optional
        The config's (or the caller's) tracking URI; see :func:`tracking_uri` for the precedence.
    experiment : str, optional
        Runs logged from here on go to this experiment.
    explicit : bool, default=False
        ``uri`` was given on the command line: it wins over ``MLFLOW_TRACKING_URI``.
    """
    import mlflow

    resolved = uri if explicit and uri else tracking_uri(uri)
    mlflow.set_tracking_uri(resolved)
    if experiment is not None:
        mlflow.set_experiment(experiment)
    return resolved


def resolve_model_uri(model_uri: str | None, registered_name: str = DEFAULT_REGISTERED_MODEL) -> str:
    """Default to the registry's champion: ``models:/NAME@champion``."""
    return model_uri or f"models:/{registered_name}@{CHAMPION}"
