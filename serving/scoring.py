"""Load a registered model once, then score one patient or a DataFrame of patients."""

from __future__ import annotations

from typing import Any

import pandas as pd

from cnslrisk.model import CohortValidationError
from cnslrisk.model.memo import derived_once
from cnslrisk.model.outputs import json_safe
from cnslrisk.model.predictor import RiskModel
from cnslrisk.registry import load_risk_model, model_card, resolve_model_uri, use_tracking

from .plain_language import PlainLanguage
from .post_response import post_response_curves

__all__ = ["provenance", "check_input", "score_records", "Scorer", "load"]


def _validated(section: dict[str, Any]) -> dict[str, Any]:
    """A card section's validation figures: out-of-fold C, IBS and slope; bootstrap-corrected ones for Cox types."""
    validation = section.get("validation", {})
    cv = validation.get("cv", {})
    corrected = (validation.get("bootstrap") or {}).get("corrected", {})
    return {"validated_c_index": cv.get("c_index", {}).get("mean"), "validated_ibs": cv.get("ibs", {}).get("mean"),
            "validated_calibration_slope": cv.get("calibration_slope", {}).get("mean"),
            "corrected_c_index": corrected.get("c_index"),
            "corrected_calibration_slope": corrected.get("calibration_slope")}


def _notice(source: str, selection: dict[str, Any]) -> str:
    notice = ("NOT FOR CLINICAL USE: trained on synthetic data" if source == "synthetic"
              else "research use only; check the model card before relying on it")
    if selection.get("beats_null") is False:
        notice += ("; NO DEMONSTRATED SIGNAL: this model did not predict better than the average survival curve "
                   "(Kaplan-Meier) out of fold")
    return notice


def provenance(model: RiskModel) -> dict[str, Any]:
    """Where a prediction comes from: registry name/version/alias, training cohort, validation figures.

    ``validated_*`` are the out-of-fold figures of the model's training comparison (every model type);
    ``corrected_*`` the bootstrap optimism-corrected ones (Cox-type models only, else None);
    ``beats_null`` whether it predicted better than the Kaplan-Meier curve (None for models trained
    before the comparison existed). A model that does not beat it says so in ``notice``.
    """
    card = model.metadata.get("card", {})
    data = card.get("training_data", {})
    size = card.get("sample_size", {})
    registry = model.metadata.get("model", {})
    source = data.get("source", "unknown")
    selection = card.get("selection") if isinstance(card.get("selection"), dict) else {}
    return {
        "model_name": registry.get("name") or card.get("model", {}).get("name"),
        "model_version": registry.get("version"),
        "model_alias": registry.get("alias"),
        "model_type": model.kind,
        "training_source": source,
        "training_n": data.get("n"),
        "training_events": data.get("events"),
        **_validated(card),
        "beats_null": selection.get("beats_null"),
        "sample_size_adequate": size.get("adequate"),
        "interval_method": model.interval_method,
        "time_unit": model.time_unit,
        "post_response": _post_response_provenance(card.get("post_response")),
        "not_for_clinical_use": source != "real",
        "notice": _notice(source, selection),
    }


def _post_response_provenance(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """The post-response model's own line: landmark, its cohort and its validation (None without one)."""
    if not section:
        return None
    return {"landmark_time": section["landmark_time"], "response": section["response"], "n": section["n"],
            "events": section["events"], **_validated(section),
            "sample_size_adequate": section["sample_size"].get("adequate"),
            "valid_for": (f"patients progression-free at {section['landmark_time']:g} {section['time_unit']} "
                          f"whose {section['response']} was assessed by then")}


def check_input(model: RiskModel, frame: pd.DataFrame | list[dict[str, Any]], *, redact: bool = False
                ) -> pd.DataFrame | dict[str, Any]:
    """Validate scoring input against the model's covariates (the same contract as training).

    Parameters
    ----------
    model : RiskModel
    frame : pandas.DataFrame or list of dict
        A DataFrame (a file's rows) is returned checked as a DataFrame of the model's input columns,
        other columns ignored (:meth:`~cnslrisk.model.predictor.RiskModel.check_frame`); JSON-like
        records as a dict of checked columns (:meth:`~cnslrisk.model.contract.Schema.check_records`),
        which the model predicts from directly, an unknown field being an error.
    redact : bool, default=False
        Leave values and identifiers out of the error (for remote callers).

    Raises
    ------
    CohortValidationError
        Naming every invalid field and row (values and ids left out when ``redact``).
    """
    try:
        if isinstance(frame, pd.DataFrame):  # a file's rows: extra columns ignored (RiskModel.check_frame)
            return model.check_frame(frame)[0]
        return model.input_schema.check_records(frame, require_outcome=False)  # JSON: an unknown field is an error
    except CohortValidationError as exc:
        if redact:
            raise CohortValidationError(exc.problems, redact=True) from None
        raise


def score_records(
    model: RiskModel,
    records: list[dict[str, Any]],
    *,
    horizons: tuple[float, ...] | None = None,
    curve: bool = False,
    redact: bool = False,
) -> dict[str, Any]:
    """Score patients given as JSON-like dicts; the shape of ``cnslrisk score --json`` and of the API.

    Returns
    -------
    dict
        ``provenance`` (see :func:`provenance`), ``horizons``, ``contribution_method`` and
        ``predictions``: one dict per patient with the public output columns (null for a median
        not reached), ``contributions`` per covariate, ``plain_language``
        (:class:`~cnslrisk.serving.plain_language.PlainLanguage`) and, with ``curve``, ``curve`` = {time,
        survival, lower, upper} on the model's time grid and, with a post-response model,
        ``post_response_curve`` (:func:`~cnslrisk.serving.post_response.post_response_curves`).
    """
    checked = check_input(model, records, redact=redact)
    encoded = model.encode(checked)
    predicted = model.predict_arrays(checked, horizons=horizons, encoded=encoded)
    contributions = model.contribution_arrays(checked, encoded=encoded)
    predicted = {k: v.tolist() for k, v in predicted.items()}  # Python scalars at once: cheaper than per value
    contributions = {k: v.tolist() for k, v in contributions.items()}
    words = _plain_language(model, tuple(horizons or model.horizons))
    responses = checked.get(model.landmark.response) if model.landmark is not None else None
    rows = []
    for i in range(len(predicted["risk_score"])):
        item = {k: json_safe(v[i]) for k, v in predicted.items()}
        item["warnings"] = [w for w in predicted["warnings"][i].split("; ") if w]
        item["contributions"] = {k: json_safe(v[i]) for k, v in contributions.items()}
        item["plain_language"] = words.describe(item, None if responses is None else json_safe(responses[i]))
        rows.append(item)
    if curve:
        times, survival, lower, upper = model.survival_curve(checked)
        for i, item in enumerate(rows):
            item["curve"] = {"time": times.tolist(), "survival": survival[i].tolist(),
                             "lower": None if lower is None else lower[i].tolist(),
                             "upper": None if upper is None else upper[i].tolist()}
        if model.landmark is not None:
            for item, extra in zip(rows, post_response_curves(model, checked, len(rows)), strict=True):
                item["post_response_curve"] = extra
    return {
        "provenance": provenance(model),
        "horizons": list(horizons or model.horizons),
        "contribution_method": model.contribution_method,
        "predictions": rows,
    }


def _plain_language(model: RiskModel, horizons: tuple[float, ...]) -> PlainLanguage:
    """The model's PlainLanguage for these horizons (labels, scope and column names: constants of the model and its
    card), built once while the model lives."""
    return derived_once(model, model.metadata, ("plain language", horizons), lambda: PlainLanguage(model, horizons))


class Scorer:
    """A loaded model for Python callers: ``predict`` validates at the boundary, then scores.

    Attributes
    ----------
    model : RiskModel
    info : dict
        ``model_uri`` and the registry ``name``, ``version``, ``alias`` it was loaded under.
    """

    def __init__(self, model: RiskModel, info: dict[str, Any]):
        self.model = model
        self.info = info

    def predict(self, frame: pd.DataFrame, horizons: tuple[float, ...] | None = None, *, strict: bool = False
                ) -> pd.DataFrame:
        """The public output columns for each row of ``frame`` (same as the CLI and the pyfunc).

        Columns that are not model inputs are ignored and named in ``result.attrs["ignored_columns"]``;
        a near-miss of an input's name is an error, and ``strict`` refuses every extra column.
        """
        checked, columns = self.model.check_frame(frame, strict=strict)
        out = self.model.predict(checked, horizons=horizons)
        out.attrs["ignored_columns"] = list(columns.ignored)
        return out

    @property
    def card(self) -> dict[str, Any]:
        """The model card."""
        return model_card(self.model)

    @property
    def provenance(self) -> dict[str, Any]:
        """Where predictions come from (see :func:`provenance`)."""
        return provenance(self.model)


def load(model_uri: str | None = None, *, tracking_uri: str | None = None) -> Scorer:
    """Load a model (default ``models:/cnslrisk-pfs1@champion``) once for repeated scoring.

    Examples
    --------
    >>> scorer = load("models:/cnslrisk-pfs1@champion")  # doctest: +SKIP
    >>> scorer.predict(patients)                          # doctest: +SKIP
    """
    use_tracking(tracking_uri, explicit=True)
    return Scorer(*load_risk_model(resolve_model_uri(model_uri)))
