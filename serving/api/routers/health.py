"""``GET /health``: liveness and the model version being served (no token needed)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from ..dependencies import LoadedModel, get_loaded
from ..schemas import HealthResponse

__all__ = ["router"]

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse, summary="Liveness")
def health(loaded: Annotated[LoadedModel, Depends(get_loaded)]) -> HealthResponse:
    """``ok`` while the server runs with a model loaded."""
    return HealthResponse(status="ok", model_version=loaded.version)
