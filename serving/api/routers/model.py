"""``GET /v1/model`` (name, version, alias, card, training Kaplan-Meier curve, inputs) and ``POST /v1/model/reload``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from starlette.concurrency import run_in_threadpool

from cnslrisk.model.predictor import RiskModel

from ..dependencies import LoadedModel, ModelHolder, get_holder, get_loaded, require_token
from ..schemas import ErrorResponse, ModelResponse, ReloadResponse, field_spec

__all__ = ["router", "input_fields"]

router = APIRouter(prefix="/v1/model", tags=["model"], dependencies=[Depends(require_token)],
                   responses={401: {"model": ErrorResponse}})


def _default(model: RiskModel, spec: Any) -> Any:
    """A sensible starting value for the form: the training mean, the reference level, false; none for an
    optional category (the best response: not known at infusion)."""
    if spec.type == "category" and not spec.required:
        return None
    if spec.type == "boolean":
        return False
    if spec.type == "category":
        return spec.levels[0] if spec.levels else None
    if spec.type in ("number", "integer"):
        means = getattr(model.pipeline.named_steps["encode"], "mean_", {}) or {}
        value = means.get(spec.name, spec.min if spec.min is not None else 0.0)
        return int(round(value)) if spec.type == "integer" else round(float(value), 1)
    return None


def input_fields(model: RiskModel) -> list[dict[str, Any]]:
    """The covariates the model needs plus its optional id and best response, described from the data dictionary."""

    schema = model.input_schema
    wanted = {model.features.get("id")} | set(model.feature_columns)
    if model.landmark is not None:
        wanted.add(model.landmark.response)
    return [field_spec(f, _default(model, f)) for f in schema.fields if f.name in wanted]


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
