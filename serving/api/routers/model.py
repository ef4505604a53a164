"""``GET /v1/model`` (name, version, alias, card, training Kaplan-Meier curve, inputs) and ``POST /v1/model/reload``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from cnslrisk.model.predictor import RiskModel

from ..dependencies import LoadedModel, ModelHolder, get_holder, get_loaded, require_token
from ..schemas import ErrorResponse, ModelResponse, ReloadResponse, field_spec, unknown_rule

__all__ = ["router", "input_fields"]

router = APIRouter(prefix="/v1/model", tags=["model"], dependencies=[Depends(require_token)],
                   responses={401: {"model": ErrorResponse}})


def input_fields(model: RiskModel) -> list[dict[str, Any]]:
    """The covariates the model needs plus its optional id and best response, described from the model's contract.

    No starting values: the form opens empty, so that nothing is predicted for a value nobody entered.
    """
    schema = model.input_schema
    wanted = {model.features.get("id")} | set(model.feature_columns)
    if model.landmark is not None:
        wanted.add(model.landmark.response)
    return [field_spec(f, unknown_rule(schema, f)) for f in schema.fields if f.name in wanted]


@router.get("", response_model=ModelResponse, summary="The model being served")
def get_model(loaded: Annotated[LoadedModel, Depends(get_loaded)],
              holder: Annotated[ModelHolder, Depends(get_holder)]) -> dict[str, Any]:
    """Registry name, version and alias, the model card, the training cohort's Kaplan-Meier curve and the inputs."""
    from cnslrisk.registry import model_card
    from cnslrisk.serving.scoring import provenance

    model, info = loaded.model, loaded.info
    card = model_card(model)
    return {"name": info.get("name") or card["model"].get("name"), "version": info.get("version"),
            "alias": info.get("alias"), "model_uri": info["model_uri"], "loaded_at": loaded.loaded_at,
            "refresh_seconds": holder.refresh_seconds, "time_unit": model.time_unit,
            "horizons": list(model.horizons), "features": model.features, "inputs": input_fields(model),
            "training_km": model.training_km, "provenance": provenance(model), "card": card}


@router.post("/reload", response_model=ReloadResponse, summary="Re-resolve the model URI now",
             responses={503: {"model": ErrorResponse}})
async def reload_model(holder: Annotated[ModelHolder, Depends(get_holder)]) -> ReloadResponse:
    """Re-resolve a registry alias now and serve the version it points to (see ``dependencies``)."""
    try:
        changed = await run_in_threadpool(holder.refresh)
    except ValueError as exc:
        raise HTTPException(status_code=503, detail=[{"loc": ["model"], "msg": str(exc), "type": "unavailable"}]) \
            from None
    return ReloadResponse(changed=changed, version=holder.current().version, model_uri=holder.model_uri)
