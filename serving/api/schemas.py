"""Request and response models of the API, derived from the data dictionary, never restated by hand.

The request model of one patient is built from the same :class:`~cnslrisk.model.contract.Schema`
that validates scoring input (:attr:`cnslrisk.model.predictor.RiskModel.input_schema`): the model's covariates
are required, the identifier and every other dictionary field are optional, anything else is an
unknown field. Types are JSON's own (strict): a boolean is ``true``/``false``, a number is a JSON
number, a category is one of the dictionary's levels; bounds and levels are the dictionary's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Tag, create_model
from pydantic import Field as PydanticField

from cnslrisk.model.contract import Field, Schema, data_dictionary
from cnslrisk.serving.labels import field_label, level_label

__all__ = ["MAX_PATIENTS", "field_spec", "unknown_rule", "patient_model", "predict_body", "body_tag", "PredictResponse",
           "ModelResponse", "HealthResponse", "ErrorItem", "ErrorResponse", "ReloadResponse"]

MAX_PATIENTS = 1000  # patients in one request (the body limit bounds it too)


def _value_type(spec: Field) -> Any:
    """The strict JSON type of one field with the dictionary's bounds or levels."""
    if spec.type == "boolean":
        return Annotated[bool, PydanticField(strict=True)]
    if spec.type == "category":
        if not spec.levels:
            return Annotated[str, PydanticField(strict=True)]
        return Literal[spec.levels]
    if spec.type in ("number", "integer"):
        bounds: dict[str, float] = {}
        if spec.min is not None:
            bounds["gt" if spec.min_exclusive else "ge"] = spec.min
        if spec.max is not None:
            bounds["le"] = spec.max
        if spec.type == "integer":
            return Annotated[int, PydanticField(strict=True, **bounds)]
        return Annotated[float, PydanticField(strict=True, allow_inf_nan=False, **bounds)]
    return Annotated[str, PydanticField(strict=True)]


_UNKNOWN = {"imputed": "null (unknown): scored with the imputation declared at training (features.impute)",
            "refused": "null (unknown): refused, since this model was trained without imputation (features.impute)"}


def unknown_rule(schema: Schema, spec: Field) -> str:
    """How an explicitly unknown (null) value of a field is treated: ``imputed``, ``refused`` or ``optional``."""
    if not spec.required:
        return "optional"
    return "imputed" if spec.name in schema.imputed else "refused"


def _description(spec: Field, unknown: str) -> str:
    parts = [spec.description or spec.name]
    if spec.unit:
        parts.append(f"unit: {spec.unit}")
    parts.append(f"allowed: {spec.expected()}")
    parts.append(_UNKNOWN.get(unknown, "optional"))
    return "; ".join(parts)


def field_spec(spec: Field, unknown: str) -> dict[str, Any]:
    """One field as the web form and ``GET /v1/model`` describe it: name, clinical label, type, unit, levels
    with their labels, bounds, help, and how an unknown value is treated (:func:`unknown_rule`)."""
    return {"name": spec.name, "label": field_label(spec), "type": spec.type, "unit": spec.unit,
            "levels": list(spec.levels), "level_labels": {level: level_label(spec, level) for level in spec.levels},
            "min": spec.min, "max": spec.max, "min_exclusive": spec.min_exclusive, "required": spec.required,
            "role": spec.role, "description": spec.description, "expected": spec.expected(), "unknown": unknown}


def patient_model(schema: Schema) -> type[BaseModel]:
    """Build the pydantic model of one patient from a validation schema.

    Parameters
    ----------
    schema : Schema
        The scoring input schema (``model.input_schema``).

    Returns
    -------
    type of pydantic.BaseModel
        ``Patient``: one attribute per schema field (required fields required, the others
        ``None`` by default), the schema's pass-through columns optional and unchecked (as the
        validator treats them), unknown fields forbidden; descriptions, units and allowed values
        feed the OpenAPI schema. A required field may be sent as null (the user's explicit
        "unknown"): the validator then scores it by the model's declared imputation or refuses it
        saying why, one wording for the API, the CLI and files.
    """
    attributes: dict[str, Any] = {}
    dictionary = data_dictionary().by_name()
    for spec in schema.fields:
        extra = {"x-role": spec.role, **({"x-unit": spec.unit} if spec.unit else {})}
        info = PydanticField(description=_description(spec, unknown_rule(schema, spec)), title=spec.name,
                             json_schema_extra=extra)
        kind = _value_type(spec)
        attributes[spec.name] = (Annotated[kind | None, info], ...) if spec.required else (
            Annotated[kind | None, info], None)
    for name in getattr(schema, "passthrough", ()):
        known = dictionary.get(name)
        text = (known.description if known else name) + "; not used by this model: accepted and passed over unchecked"
        info = PydanticField(description=text, title=name, json_schema_extra={"x-role": "not used"})
        attributes[name] = (Annotated[Any, info], None)
    config = ConfigDict(extra="forbid", title="Patient")
    return create_model("Patient", __config__=config, **attributes)


def body_tag(value: Any) -> str:
    """Which form of the body was sent: ``patients`` for a JSON list, ``patient`` otherwise."""
    return "patients" if isinstance(value, list) else "patient"


def predict_body(patient: type[BaseModel]) -> Any:
    """The ``POST /v1/predict`` body type: one patient object or a list of 1 to ``MAX_PATIENTS`` of them.

    A callable discriminator validates only the form that was sent, so errors name
    ``body → field`` (one patient) or ``body → index → field`` (a list) once the tag is dropped.
    """
    many = Annotated[list[patient], PydanticField(min_length=1, max_length=MAX_PATIENTS)]
    return Annotated[Annotated[patient, Tag("patient")] | Annotated[many, Tag("patients")], Discriminator(body_tag)]


class PredictResponse(BaseModel):
    """Exactly what ``cnslrisk score --json`` prints for the same patients."""

    model_config = ConfigDict(extra="allow")
    provenance: dict[str, Any] = PydanticField(description="model name/version/alias, training cohort, validation, "
                                                           "not_for_clinical_use and its notice")
    horizons: list[float] = PydanticField(description="horizons of the survival_<h> and cif_<cause>_<h> columns")
    contribution_method: str = PydanticField(description="how the per-covariate contributions are computed")
    predictions: list[dict[str, Any]] = PydanticField(
        description="one object per patient: the id when given, risk_score, risk_group, survival_<h> with "
                    "_lower/_upper, median_time (null when not reached), cif_<cause>_<h> and likely_pattern "
                    "with a pattern model, warnings, contributions, plain_language (the prediction in words: "
                    "summary, e.g. 'Of 100 patients like this, about 43 would be alive and free of CNS "
                    "progression at 6 months.', and per horizon its sentence, the counts out of 100 of an icon "
                    "array (per_100, adding up to 100), a statement when the 95 % band is too wide to guide a "
                    "decision; warnings reworded; the covariates each panel uses; post_response; see "
                    "cnslrisk.serving.plain_language) and, with curve=true, curve and post_response_curve")


class ModelResponse(BaseModel):
    """The model being served."""

    model_config = ConfigDict(extra="allow")
    name: str | None
    version: str | None
    alias: str | None
    model_uri: str
    loaded_at: str = PydanticField(description="UTC time the model was loaded (ISO 8601)")
    refresh_seconds: float = PydanticField(description="how often the alias is re-resolved (0: only on reload)")
    time_unit: str
    horizons: list[float]
    features: dict[str, Any]
    inputs: list[dict[str, Any]] = PydanticField(description="the covariates a request needs, from the dictionary")
    training_km: dict[str, list[float]] = PydanticField(description="the training cohort's Kaplan-Meier curve")
    provenance: dict[str, Any]
    card: dict[str, Any] = PydanticField(description="the model card (as `cnslrisk card MODEL --json`)")


class ReloadResponse(BaseModel):
    """Result of re-resolving the model URI."""

    changed: bool
    version: str | None
    model_uri: str


class HealthResponse(BaseModel):
    """Liveness and the model version being served."""

    status: str
    model_version: str | None


class ErrorItem(BaseModel):
    """One problem: where (``loc``, e.g. ``["body", "age"]``) and what (``msg``), never the value sent."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body: a list of problems."""

    detail: list[ErrorItem]
