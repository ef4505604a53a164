"""``POST /v1/predict``: one patient or a list, answered with exactly ``cnslrisk score --json``'s output."""

from dataclasses import replace
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from cnslrisk.model import CohortValidationError

from ..dependencies import LoadedModel, get_loaded, require_token
from ..schemas import ErrorResponse, PredictResponse, predict_body

__all__ = ["build_router", "problem_items"]

MAX_HORIZONS = 20
INLINE_PATIENTS = 16


def problem_items(error: CohortValidationError, *, many: bool) -> list[dict[str, Any]]:
    """The validator's problems as 422 items: ``loc`` = body (→ list index) → field, ``msg`` redacted."""
    items = []
    for problem in error.problems:
        loc: list[str | int] = ["body"]
        if many and problem.row is not None:
            loc.append(problem.row - 1)
        if problem.field is not None:
            loc.append(problem.field)
        # "field age: ...", as pydantic's own errors read: the list index is in loc, a body has no rows
        message = replace(problem, row=None).message(redact=True)
        items.append({"loc": loc, "msg": message, "type": "invalid_value"})
    return items


def _error(status: int, items: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": items})


def _horizon_problem(horizons: list[float]) -> str | None:
    if len(horizons) > MAX_HORIZONS:
        return f"field horizons: at most {MAX_HORIZONS} horizons"
    if min(horizons) <= 0 or horizons != sorted(set(horizons)):
        return "field horizons: horizons must be positive and increasing"
    return None


def build_router(patient: type[BaseModel]) -> APIRouter:
    """The predict router for a request model built by :func:`~cnslrisk.serving.api.schemas.patient_model`.

    Parameters
    ----------
    patient : type of pydantic.BaseModel
        The model of one patient (it fixes the published body schema).

    Returns
    -------
    fastapi.APIRouter
    """
    router = APIRouter(prefix="/v1", tags=["predict"], dependencies=[Depends(require_token)],
                       responses={401: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
                                  415: {"model": ErrorResponse}, 422: {"model": ErrorResponse}})
    body_type = predict_body(patient)

    @router.post("/predict", response_model=PredictResponse, summary="Score one patient or a list")
    async def predict(
        patients: Annotated[body_type, Body(description="one patient object, or a list of 1 to 1000")],
        loaded: Annotated[LoadedModel, Depends(get_loaded)],
        curve: Annotated[bool, Query(description="include each patient's predicted curve with its 95 % band")] = False,
        horizons: Annotated[list[float] | None, Query(
            description="override the model's horizons (model time unit), e.g. ?horizons=3&horizons=6")] = None,
    ) -> JSONResponse:
        """Survival at each horizon with its 95 % band, median CNS-PFS1, risk group, relapse-pattern
        incidences, per-covariate contributions and applicability warnings, with the model's provenance;
        the same keys and numbers as ``cnslrisk score --json`` (``--curve`` = ``curve=true``)."""
        if horizons:
            problem = _horizon_problem(horizons)
            if problem:
                return _error(422, [{"loc": ["query", "horizons"], "msg": problem, "type": "invalid_value"}])
        many = isinstance(patients, list)
        rows = patients if many else [patients]
        records = [p.model_dump(exclude_unset=True) for p in rows]
        score = partial(_score, loaded, records, tuple(horizons) if horizons else None, curve)
        try:
            # one patient takes well under a millisecond: scored on the event loop (a thread hop costs more);
            # a long list goes to the thread pool so that it does not hold up the requests behind it
            result = score() if len(records) <= INLINE_PATIENTS else await run_in_threadpool(score)
        except CohortValidationError as exc:
            return _error(422, problem_items(exc, many=many))
        return JSONResponse(result)

    return router


def _score(loaded: LoadedModel, records: list[dict[str, Any]], horizons: tuple[float, ...] | None,
           curve: bool) -> dict[str, Any]:
    from cnslrisk.serving.scoring import score_records

    return score_records(loaded.model, records, horizons=horizons, curve=curve, redact=True)
