"""Load the cohort a config names, validate it at the boundary and split it into X, y and cause."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model import Schema, read_cohort, to_surv
from cnslrisk.model.contract import Field, data_dictionary

from .config import TrainingConfig

__all__ = ["TrainingData", "load_training_data", "cohort_schema"]


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
    """

    X: pd.DataFrame
    y: np.ndarray
    cause: np.ndarray | None
    provenance: dict[str, Any]
    response: np.ndarray | None = None

    @property
    def n(self) -> int:
        return int(len(self.y))

    @property
    def events(self) -> int:
        return int(self.y["event"].sum())


def cohort_schema(config: TrainingConfig) -> Schema:
    """The schema a config implies: its outcome columns, its covariates by kind and, with a landmark,
    the optional response column."""
    d, f = config.data, config.features
    schema = Schema.for_columns(
        binary=f.binary, categorical=f.categorical, numeric=f.numeric, id=d.id, time=d.time,
        event=d.event, cause=d.cause, censored=d.censored, time_unit=d.time_unit,
    )
    if config.landmark.time is None:
        return schema
    name = config.landmark.response
    spec = data_dictionary().by_name().get(name) or Field(name=name, type="category", role="post-infusion")
    return replace(schema, fields=(*schema.fields, replace(spec, required=False)))


def load_training_data(config: TrainingConfig) -> TrainingData:
    """Read and validate the config's cohort; columns the config does not name are ignored.

    Raises
    ------
    CohortValidationError
        With every problem in the cohort (nothing is fitted or logged before this passes).
    """
    raw = read_cohort(config.data.path)
    schema = cohort_schema(config)
    if config.features.impute:
        # gaps in covariates are allowed only when imputation is declared; the pipeline fills them
        optional = set(config.feature_columns)
        schema = replace(schema, fields=tuple(replace(f, required=f.name not in optional) for f in schema.fields))
    cohort = schema.check(raw, allow_unknown=True)
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
    return TrainingData(X=X, y=y, cause=cause, provenance=provenance, response=response)

