"""Load the cohort a config names, validate it at the boundary and split it into X, y and cause."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model import CohortValidationError, Problem, Schema, read_cohort, to_surv
from cnslrisk.model.contract import Field, data_dictionary, read_dictionary

from .config import TrainingConfig

__all__ = ["TrainingData", "load_training_data", "cohort_schema", "declared_fields"]


@dataclass(frozen=True)
class TrainingData:
    """A validated cohort, ready for fitting.

    Attributes
    ----------
    X : pandas.DataFrame
        The covariate columns, typed.
    y : numpy.ndarray
        scikit-survival structured array (bool event, float time).
    cause : numpy.ndarray or None
        Competing event type per patient as text (the censored value for censored patients).
    provenance : dict
        ``source`` (synthetic or real), ``sha256``, ``n``, ``events``, ``path`` and what the file said about itself.
    response : numpy.ndarray or None
        Best response per patient as text (None when missing), kept when the config has a landmark.
    contract : Schema or None
        The rules the cohort was checked by (:func:`cohort_schema`); stored with the model.
    """

    X: pd.DataFrame
    y: np.ndarray
    cause: np.ndarray | None
    provenance: dict[str, Any]
    response: np.ndarray | None = None
    contract: Schema | None = None

    @property
    def n(self) -> int:
        return int(len(self.y))

    @property
    def events(self) -> int:
        return int(self.y["event"].sum())


def _kinds(config: TrainingConfig) -> dict[str, str]:
    """The field type each column the config uses has by its role (a ``[fields]`` table may narrow it)."""
    d, f = config.data, config.features
    kinds = {name: kind for kind, names in (("boolean", f.binary), ("category", f.categorical),
                                            ("number", f.numeric)) for name in names}
    kinds.update({d.id: "string", d.time: "number", d.event: "boolean", d.cause: "category"})
    if config.landmark.time is not None and config.landmark.response:
        kinds[config.landmark.response] = "category"
    return {name: kind for name, kind in kinds.items() if name}


def declared_fields(config: TrainingConfig) -> dict[str, Field]:
    """The config's ``[fields.<column>]`` tables as fields: what they say, nothing inherited."""
    kinds = _kinds(config)
    return {name: Field(name=name, type=rule.type or kinds[name], required=rule.required, unit=rule.unit,
                        description=rule.description, levels=rule.levels, min=rule.min, max=rule.max,
                        min_exclusive=rule.min_exclusive, label=rule.label)
            for name, rule in config.fields.items()}


def _dictionary(config: TrainingConfig) -> dict[str, Field] | None:
    """The data dictionary in use: the bundled CNSL one (None), the modeller's own file, or none (``""``)."""
    path = config.data.dictionary
    if path is None:
        return None
    return read_dictionary(path) if path else {}


def cohort_schema(config: TrainingConfig, *, contract: Schema | None = None) -> Schema:
    """The schema a config implies: its outcome columns, its covariates by kind and, with a landmark,
    the optional response column, each with the rules of :meth:`Schema.for_columns`.

    Parameters
    ----------
    contract : Schema, optional
        A trained model's own contract: its rules apply to the columns it has (``evaluate`` reads a
        new cohort for a model); the config's ``[fields]`` still win.
    """
    d, f = config.data, config.features
    rules = {spec.name: spec for spec in (contract.fields if contract is not None else ())}
    rules.update(declared_fields(config))
    response = config.landmark.response if config.landmark.time is not None else None
    return Schema.for_columns(
        binary=f.binary, categorical=f.categorical, numeric=f.numeric, id=d.id, time=d.time,
        event=d.event, cause=d.cause, censored=d.censored or "none", time_unit=d.time_unit, response=response,
        rules=rules, dictionary=_dictionary(config),
    )


def _with_dictionary_hint(error: CohortValidationError, config: TrainingConfig, schema: Schema
                          ) -> CohortValidationError:
    """Say where a broken value rule comes from when it is the CNSL dictionary's, and how to declare another."""
    if config.data.dictionary is not None:
        return error
    canonical, declared = set(data_dictionary().names), set(config.fields)
    judged = sorted({p.field for p in error.problems if p.row is not None and p.field in canonical
                     and p.field not in declared and p.field in schema.names})
    if not judged:
        return error
    columns = ", ".join(judged)
    hint = Problem(f"the rules of {columns} are those of the CNSL data dictionary (data/data_dictionary.json), "
                   f"because of the column name; for another kind of cohort declare your own in the config "
                   f"([fields.{judged[0]}] with type, min, max, levels...) or in a dictionary file (data.dictionary)")
    return CohortValidationError([*error.problems, hint])


def load_training_data(config: TrainingConfig, *, contract: Schema | None = None) -> TrainingData:
    """Read and validate the config's cohort; columns the config does not name are ignored.

    Parameters
    ----------
    contract : Schema, optional
        A trained model's contract whose rules apply to its columns (see :func:`cohort_schema`).

    Raises
    ------
    CohortValidationError
        With every problem in the cohort (nothing is fitted or logged before this passes).
    """
    raw = read_cohort(config.data.path)
    schema = cohort_schema(config, contract=contract)
    if config.features.impute:
        # gaps in covariates are allowed only when imputation is declared; the pipeline fills them
        optional = set(config.feature_columns)
        schema = replace(schema, fields=tuple(replace(f, required=f.required and f.name not in optional)
                                              for f in schema.fields))
    try:
        cohort = schema.check(raw, allow_unknown=True)
    except CohortValidationError as exc:
        raise _with_dictionary_hint(exc, config, schema) from None
    d = config.data
    cause = None
    if d.cause and d.cause in cohort:
        cause = cohort[d.cause].astype(str).to_numpy()
    event_column = d.event or "_event"
    if d.event is None:
        cohort[event_column] = cause != d.censored
    y = to_surv(cohort, time=d.time, event=event_column)
    provenance = {
        **raw.attrs["provenance"],
        "sha256": raw.attrs["sha256"],
        "path": raw.attrs["path"],
        "n": int(len(y)),
        "events": int(y["event"].sum()),
        "time_unit": d.time_unit,
        "follow_up_max": float(y["time"].max()),
    }
    X = cohort[config.feature_columns].reset_index(drop=True)
    response = None
    if config.landmark.time is not None:
        name = config.landmark.response
        response = (cohort[name].astype(object).where(cohort[name].notna(), None).to_numpy() if name in cohort
                    else np.full(len(y), None, dtype=object))
    return TrainingData(X=X, y=y, cause=cause, provenance=provenance, response=response, contract=schema)

