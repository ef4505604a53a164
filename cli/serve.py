"""``cnslrisk serve``: the REST API and the web page for scoring one patient, on loopback by default."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ._app import app, user_errors

__all__ = ["serve_cli"]


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
    from cnslrisk.serving.api.server import serve

    with user_errors():
        code = serve(model_uri, host=host, port=port, tracking_uri=tracking_uri, refresh_seconds=refresh_seconds,
                     token=os.environ.get("CNSLRISK_API_TOKEN") or None, log_level=log_level, workers=workers)
    if code:
        raise typer.Exit(code)
