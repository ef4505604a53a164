"""Build the FastAPI app: routers, the body guard, error shapes, the web page and the alias refresh task.

Errors always have the shape ``{"detail": [{"loc": [...], "msg": "...", "type": "..."}]}``: ``loc``
names the field (``["body", "age"]``, ``["body", 2, "pce"]``, ``["query", "curve"]``), ``msg``
follows the project's "field → rule" wording and never carries the value sent, an identifier or the
body. Nothing a caller sends is logged: the access log has method, path, query and status only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .dependencies import DEFAULT_REFRESH_SECONDS, ModelHolder, freeze_long_lived
from .routers import health, model, predict
from .schemas import patient_model

__all__ = ["MAX_BODY_BYTES", "create_app", "app_from_env"]

MAX_BODY_BYTES = 1 << 20  # 1 MiB: about 4,000 patients of a full cohort row; more is refused with 413
STATIC = Path(__file__).parent / "static"
logger = logging.getLogger("cnslrisk.serving.api")


class BodyGuard:
    """Pure ASGI middleware: body size limit (413), JSON content type for predict (415), no 5xx details.

    Parameters
    ----------
    app : ASGI app
    max_bytes : int
        Largest request body accepted, counted as it arrives (a false Content-Length cannot pass it).
    json_paths : tuple of str
        Paths whose POST body must be ``application/json``.
    """

    def __init__(self, app: Any, max_bytes: int, json_paths: tuple[str, ...]):
        self.app, self.max_bytes, self.json_paths = app, max_bytes, json_paths

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        if scope["method"] in ("POST", "PUT", "PATCH"):
            problem = self._header_problem(scope)
            body = None if problem else await self._read(receive)
            if problem or body is None:
                status, msg = problem or (413, f"body: larger than the limit of {self.max_bytes} bytes")
                await _send_error(send, status, ["body"] if status == 413 else ["header", "content-type"], msg)
                return
            receive = _replay(body, receive)
        try:
            await self.app(scope, receive, tracked_send)
        except Exception as exc:  # a bug must not leak a traceback with patient values to the caller or the log
            logger.error("internal error %s on %s %s", type(exc).__name__, scope["method"], scope["path"])
            if not started:
                await _send_error(send, 500, [], "internal error; the server log has its type", "internal")

    def _header_problem(self, scope: dict[str, Any]) -> tuple[int, str] | None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0").decode("latin-1")
        if not length.isdigit() or int(length) > self.max_bytes:
            return 413, f"body: larger than the limit of {self.max_bytes} bytes"
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if scope["path"] in self.json_paths and kind != b"application/json":
            return 415, "field content-type: must be application/json"
        return None

    async def _read(self, receive: Any) -> bytes | None:
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _send_error(send: Any, status: int, loc: list[Any], msg: str, kind: str = "invalid_request") -> None:
    payload = json.dumps({"detail": [{"loc": loc, "msg": msg, "type": kind}]}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def _error_item(error: dict[str, Any], fields: dict[str, str]) -> dict[str, Any]:
    """A pydantic error without its ``input``/``ctx`` (they echo the value), in "field → rule" words."""
    loc = [part for part in error["loc"] if part not in ("patient", "patients")]
    kind = error["type"]
    if kind == "json_invalid":
        return {"loc": ["body"], "msg": f"body: malformed JSON at character {loc[-1] if len(loc) > 1 else 0}",
                "type": kind}
    name = next((p for p in reversed(loc) if isinstance(p, str) and p not in ("body", "query")), None)
    where = f"field {name}" if name else "body"
    text = error["msg"][:1].lower() + error["msg"][1:]
    if kind == "extra_forbidden":
        text = "unknown field (not a covariate or a data-dictionary field)"
    elif name in fields:
        text = f"{text}; expected {fields[name]}"
    return {"loc": loc, "msg": f"{where}: {text}", "type": kind}


def create_app(model_uri: str | None = None, *, tracking_uri: str | None = None,
               refresh_seconds: float = DEFAULT_REFRESH_SECONDS, token: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES) -> FastAPI:
    """Load the model and build the app.

    Parameters
    ----------
    model_uri : str, optional
        Any MLflow model URI; default ``models:/cnslrisk-pfs1@champion``.
    tracking_uri : str, optional
        MLflow tracking URI (default ``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
    refresh_seconds : float, default=30
        How often a registry alias is re-resolved (0: only on ``POST /v1/model/reload``).
    token : str, optional
        When given, ``/v1/*`` requests need ``Authorization: Bearer <token>`` (else 401).
    max_body_bytes : int, default=1 MiB
        Larger request bodies get 413.

    Returns
    -------
    fastapi.FastAPI

    Raises
    ------
    ValueError
        When the model URI does not resolve to a cnslrisk model.
    """
    from cnslrisk.registry import resolve_model_uri, use_tracking

    use_tracking(tracking_uri, explicit=True)
    holder = ModelHolder(resolve_model_uri(model_uri), refresh_seconds=refresh_seconds)
    schema = holder.current().model.input_schema
    expected = {f.name: f.expected() for f in schema.fields}

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        freeze_long_lived()
        task = asyncio.create_task(_refresh_loop(holder)) if holder.alias_uri and refresh_seconds > 0 else None
        yield
        if task is not None:
            task.cancel()

    app = FastAPI(title="cnslrisk", version="1", lifespan=lifespan,
                  description="CNS progression-free survival (CNS-PFS1) and relapse pattern after CD19-CAR T-cell "
                              "therapy for CNS lymphoma. Research tool: models trained on synthetic data are NOT "
                              "for clinical use.")
    app.state.holder, app.state.token = holder, token or None
    app.include_router(predict.build_router(patient_model(schema)))
    app.include_router(model.router)
    app.include_router(health.router)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [_error_item(e, expected) for e in exc.errors()]})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.detail, list):
            detail = exc.detail
        elif exc.status_code == 400:  # FastAPI: a body it cannot decode (e.g. not UTF-8)
            detail = [{"loc": ["body"], "msg": "body: cannot be parsed as UTF-8 JSON", "type": "body_invalid"}]
        else:
            detail = [{"loc": [], "msg": str(exc.detail).lower(), "type": "http"}]
        return JSONResponse(status_code=exc.status_code, content={"detail": detail}, headers=exc.headers)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyGuard, max_bytes=max_body_bytes, json_paths=("/v1/predict",))
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for several worker processes (``cnslrisk serve --workers N``).

    Reads ``CNSLRISK_MODEL_URI``, ``MLFLOW_TRACKING_URI``, ``CNSLRISK_REFRESH_SECONDS`` and
    ``CNSLRISK_API_TOKEN``. Each worker loads the model and refreshes the alias on its own schedule;
    ``POST /v1/model/reload`` reaches one worker, the others follow within ``refresh_seconds``.
    """
    import os

    refresh = float(os.environ.get("CNSLRISK_REFRESH_SECONDS", DEFAULT_REFRESH_SECONDS))
    return create_app(os.environ.get("CNSLRISK_MODEL_URI") or None, refresh_seconds=refresh,
                      tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or None,
                      token=os.environ.get("CNSLRISK_API_TOKEN") or None)


async def _refresh_loop(holder: ModelHolder) -> None:
    while True:
        await asyncio.sleep(holder.refresh_seconds)
        try:
            await asyncio.to_thread(holder.refresh)
        except Exception as exc:  # keep serving the loaded model; say why without patient data (there is none here)
            logger.warning("model refresh failed: %s", exc)
