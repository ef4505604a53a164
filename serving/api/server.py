"""Run the REST API and web page with uvicorn: one process, or one worker per core."""

from __future__ import annotations

import os

__all__ = ["serve"]


def serve(model_uri: str | None = None, *, host: str = "127.0.0.1", port: int = 8000, tracking_uri: str | None = None,
          refresh_seconds: float = 30.0, token: str | None = None, log_level: str = "info", workers: int = 1) -> int:
    """Load the model and serve the API and web page with uvicorn until interrupted.

    Parameters
    ----------
    model_uri : str, optional
        Any MLflow model URI; default ``models:/cnslrisk-pfs1@champion``.
    host, port : str, int
        Where to listen (loopback unless told otherwise).
    tracking_uri : str, optional
        MLflow tracking URI.
    refresh_seconds : float, default=30
        How often a registry alias is re-resolved (0: only on ``POST /v1/model/reload``).
    token : str, optional
        Bearer token required on ``/v1/*``.
    log_level : str, default="info"
        uvicorn's log level.
    workers : int, default=1
        Worker processes (each loads the model; see :func:`cnslrisk.serving.api.main.app_from_env`), each
        on its own ``SO_REUSEPORT`` socket where the platform has one (:mod:`cnslrisk.serving.api.workers`).

    Returns
    -------
    int
        The exit code: 0 once stopped by a signal, 1 when one of several workers exited on its own.

    Raises
    ------
    ValueError
        When the port cannot be bound.
    """
    import uvicorn

    from cnslrisk.registry import resolve_model_uri, use_tracking

    from .main import create_app
    from .workers import FACTORY, balanced_sockets_supported, run_workers

    if workers > 1:
        # each worker process builds its own app from these (main.app_from_env)
        os.environ.update({"CNSLRISK_MODEL_URI": resolve_model_uri(model_uri),
                           "MLFLOW_TRACKING_URI": use_tracking(tracking_uri, explicit=True),
                           "CNSLRISK_REFRESH_SECONDS": str(refresh_seconds), "CNSLRISK_API_TOKEN": token or ""})
        if balanced_sockets_supported():
            return run_workers(host, port, workers, log_level)
        uvicorn.run(FACTORY, factory=True, host=host, port=port, log_level=log_level, workers=workers)
        return 0
    application = create_app(model_uri, tracking_uri=tracking_uri, refresh_seconds=refresh_seconds, token=token)
    uvicorn.run(application, host=host, port=port, log_level=log_level)
    return 0
