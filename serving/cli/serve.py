"""``cnslrisk serve``: the REST API and the web page for scoring one patient, on loopback by default."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ._app import app, user_errors

__all__ = ["serve", "serve_cli"]


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

    from cnslrisk.serving.api import create_app
    from cnslrisk.serving.api.workers import FACTORY, balanced_sockets_supported, run_workers
    from cnslrisk.serving.scoring import resolve_model_uri, use_tracking

    if workers > 1:
        os.environ.update({"CNSLRISK_MODEL_URI": resolve_model_uri(model_uri), "MLFLOW_TRACKING_URI": use_tracking(
            tracking_uri), "CNSLRISK_REFRESH_SECONDS": str(refresh_seconds), "CNSLRISK_API_TOKEN": token or ""})
        if balanced_sockets_supported():
            return run_workers(host, port, workers, log_level)
        uvicorn.run(FACTORY, factory=True, host=host, port=port, log_level=log_level, workers=workers)
        return 0
    application = create_app(model_uri, tracking_uri=tracking_uri, refresh_seconds=refresh_seconds, token=token)
    uvicorn.run(application, host=host, port=port, log_level=log_level)
    return 0


# fmt: off
@app.command("serve")
def serve_cli(
    model_uri: Annotated[str | None, typer.Option("--model", "-m", help="MLflow model URI: models:/NAME@champion, models:/NAME/3, runs:/ID/model or a path. Default: models:/cnslrisk-pfs1@champion.")] = None,  # noqa: E501
    host: Annotated[str, typer.Option("--host", help="Interface to listen on (default loopback only).")] = "127.0.0.1",  # noqa: E501
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port.", min=1, max=65535)] = 8000,
    tracking_uri: Annotated[str | None, typer.Option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db).")] = None,  # noqa: E501
    refresh_seconds: Annotated[float, typer.Option("--refresh-seconds", help="Re-resolve the model alias this often and serve the version it points to (0: only on POST /v1/model/reload).", min=0)] = 30.0,  # noqa: E501
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level: critical, error, warning, info, debug.")] = "info",  # noqa: E501
    workers: Annotated[int, typer.Option("--workers", help="Worker processes, each with its own copy of the model and its own SO_REUSEPORT socket; one per CPU core for the lowest latency under load (POST /v1/model/reload reaches one; the others follow on schedule).", min=1)] = 1,  # noqa: E501
) -> None:
    # fmt: on
    """Serve the REST API (`POST /v1/predict`, `GET /v1/model`, `GET /health`, `/docs`) and the web page at `/`.

    The model is loaded once; a registry alias (`@champion`) is re-resolved every `--refresh-seconds`
    and on `POST /v1/model/reload`, so promoting another version needs no restart. Set
    `CNSLRISK_API_TOKEN` in the environment to require `Authorization: Bearer <token>` on `/v1/*`.
    Request bodies over 1 MiB are refused; nothing a caller sends is logged. Example:
    `cnslrisk serve --model models:/cnslrisk-pfs1@champion --port 8000`
    """
    with user_errors():
        code = serve(model_uri, host=host, port=port, tracking_uri=tracking_uri, refresh_seconds=refresh_seconds,
                     token=os.environ.get("CNSLRISK_API_TOKEN") or None, log_level=log_level, workers=workers)
    if code:
        raise typer.Exit(code)
