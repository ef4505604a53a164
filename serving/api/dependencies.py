"""What every route depends on: the model being served (swapped when its alias moves) and the token check.

**Alias changes.** A registry URI with an alias (``models:/NAME@champion``) is re-resolved every
``refresh_seconds`` (default 30) by a background task, and at once on ``POST /v1/model/reload``;
when the alias points to another version, that version is loaded and swapped in atomically
(requests in flight finish with the model they started with). A URI that names a fixed version,
a run or a path never changes. If the new version cannot be loaded, the old one keeps serving
and the failure is logged (without patient data). The request schema is built from the model
loaded at start-up: a new version with other covariates is validated correctly at once (the
validator is the model's), but ``/openapi.json`` shows its covariates only after a restart.
"""

from __future__ import annotations

import gc
import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cnslrisk.model.predictor import RiskModel
from cnslrisk.registry import alias_version, load_risk_model

__all__ = ["DEFAULT_REFRESH_SECONDS", "LoadedModel", "ModelHolder", "freeze_long_lived", "get_holder", "get_loaded",
           "require_token"]

DEFAULT_REFRESH_SECONDS = 30.0
logger = logging.getLogger("cnslrisk.serving.api")


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model with the registry facts it was loaded under."""

    model: RiskModel
    info: dict[str, Any]
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def version(self) -> str | None:
        """The registry version (None for a run or a path)."""
        return self.info.get("version")


class ModelHolder:
    """Holds the served model and swaps it when a registry alias moves.

    Parameters
    ----------
    model_uri : str
        Any MLflow model URI or a local path.
    refresh_seconds : float, default=30
        How often the background task re-resolves an alias (0 turns the schedule off; reload on request still
        works).

    Attributes
    ----------
    alias_uri : bool
        Whether ``model_uri`` names a registry alias (the only kind of URI that can move).
    """

    def __init__(self, model_uri: str, *, refresh_seconds: float = DEFAULT_REFRESH_SECONDS):
        self.model_uri = model_uri
        self.refresh_seconds = float(refresh_seconds)
        self.alias_uri = model_uri.startswith("models:/") and "@" in model_uri
        self._lock = threading.Lock()
        self._current = LoadedModel(*load_risk_model(model_uri))
        logger.info("serving model %s version %s", model_uri, self._current.version)

    def current(self) -> LoadedModel:
        """The model to answer the next request with."""
        return self._current

    def refresh(self) -> bool:
        """Re-resolve the alias; load and swap in the version it now points to.

        Returns
        -------
        bool
            Whether another version is now served.

        Raises
        ------
        ValueError
            When the alias or the new version cannot be loaded (the old model keeps serving).
        """
        if not self.alias_uri:
            return False
        with self._lock:
            version = alias_version(*self.model_uri[len("models:/"):].split("@", 1))
            if version is None:
                raise ValueError(f"model {self.model_uri}: cannot be resolved (no such registered model or alias)")
            if version == self._current.version:
                return False
            loaded = LoadedModel(*load_risk_model(self.model_uri))
            previous, self._current = self._current.version, loaded
        freeze_long_lived()
        logger.info("model %s moved from version %s to %s", self.model_uri, previous, loaded.version)
        return True


def freeze_long_lived() -> None:
    """Take what is alive now (the imports and the loaded model) out of the cyclic garbage collector's sight.

    A server holds about 400,000 long-lived objects (MLflow, pandas, scikit-learn, the model); a full
    collection walks all of them (about 0.2 s on two cores) and the allocations of scoring trigger one every
    few hundred requests: that pause was the p99 of a loaded server (BENCHMARKS.md, REST API). Frozen
    objects are still freed by reference counting; unfreezing first lets a swapped-out model's reference
    cycles be collected before the rest is frozen again.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def get_holder(request: Request) -> ModelHolder:
    """The app's :class:`ModelHolder`."""
    return request.app.state.holder


async def get_loaded(request: Request) -> LoadedModel:
    """The model to answer this request with (one read, so a swap mid-request cannot mix versions).

    Reads the holder itself rather than depending on :func:`get_holder`: each dependency costs every
    predict request a few microseconds of FastAPI's resolution.
    """
    return request.app.state.holder.current()


_bearer = HTTPBearer(auto_error=False, description="required when the server has CNSLRISK_API_TOKEN set")


async def require_token(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Refuse with 401 unless the bearer token equals the server's (when the server has one)."""
    token = request.app.state.token
    if not token:
        return
    given = credentials.credentials if credentials is not None else ""
    if not secrets.compare_digest(given.encode(), token.encode()):
        raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"}, detail=[
            {"loc": ["header", "authorization"], "msg": "field authorization: a valid bearer token is required",
             "type": "unauthorized"}])
