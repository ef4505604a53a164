"""The post-response (landmark) prediction: CNS-PFS1 re-scored once the best response is known.

Best response is not known at infusion, so it cannot enter the baseline model. At a landmark time
``L`` (the first response assessment, e.g. 1 month after infusion) the patients still
progression-free are refitted on the time left after ``L`` with their best response as an extra
covariate (the landmark approach, van Houwelingen 2007). For a patient progression-free at ``L``
with response ``r`` it gives, for horizons ``h > L`` measured from infusion like the baseline
columns,

``P(T > h | T > L, x, r) = S_L(h - L | x, r)``

and the cumulative incidence of each relapse pattern between ``L`` and ``h``. It is valid only for
a patient progression-free at ``L`` whose response was assessed by then; it is labelled
``post_response_*`` everywhere so that it is never read as the baseline prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ._checks import join_notes, map_values, row_notes
from .coherent import split_incidence
from .curves import predict_with_median
from .outputs import horizon_label
from .pipeline import SurvivalPipeline, pipeline_from_dict, pipeline_to_dict

__all__ = ["LandmarkModel", "PREFIX"]

PREFIX = "post_response_"

Columns = pd.DataFrame | Mapping[str, Any]


@dataclass
class LandmarkModel:
    """A Cox model for the time left after the landmark, fitted on the patients progression-free then.

    Parameters
    ----------
    time : float
        The landmark, in the model's time unit from infusion.
    response : str
        The best-response column (a categorical covariate of ``pipeline``).
    pipeline : SurvivalPipeline
        Fitted encoder + Cox model on residual time ``T - time``.
    time_grid : ndarray
        Distinct residual event times of the landmark cohort.
    pattern : sklearn Pipeline, optional
        Encoder + :class:`~cnslrisk.model.pattern.CauseSpecificCox` on residual time, for
        ``post_response_cif_<cause>_<h>`` and ``post_response_likely_pattern``.
    pattern_split : bool, default=True
        Whether those incidences split this model's own risk between the causes
        (:func:`~cnslrisk.model.coherent.split_incidence`: they add up to ``1 - post_response_survival``);
        models saved before 0.2 keep the pattern model's product-limit incidences (False).
    """

    time: float
    response: str
    pipeline: SurvivalPipeline
    time_grid: np.ndarray
    pattern: Pipeline | None = None
    pattern_split: bool = True

    @property
    def levels(self) -> list[str]:
        """The responses seen among the patients progression-free at the landmark (reference first)."""
        return list(self.pipeline.named_steps["encode"].levels_[self.response])

    @property
    def causes(self) -> list[str]:
        return list(self.pattern[-1].causes_) if self.pattern is not None else []

    def columns(self, horizons: tuple[float, ...]) -> list[str]:
        """The ``post_response_*`` output columns, in order."""
        columns = []
        for label in map(horizon_label, horizons):
            columns += [f"{PREFIX}survival_{label}", f"{PREFIX}survival_{label}_lower",
                        f"{PREFIX}survival_{label}_upper"]
        columns.append(f"{PREFIX}median_time")
        if self.pattern is not None:
            columns += [f"{PREFIX}cif_{cause}_{horizon_label(h)}" for cause in self.causes for h in horizons]
            columns.append(f"{PREFIX}likely_pattern")
        return columns

    @cached_property
    def _inputs(self) -> list[str]:
        """The covariate columns both encoders read (the response among them)."""
        encoders = [p.named_steps["encode"] for p in (self.pipeline, self.pattern) if p is not None]
        return list(dict.fromkeys(c for e in encoders for c in (*e.binary, *e.categorical, *e.numeric)))

    @cached_property
    def _one_encoding(self) -> bool:
        """Whether the pattern model reads the same encoding as the Cox model (fitted alike on the same rows)."""
        encoders = [p.named_steps["encode"].to_dict() for p in (self.pipeline, self.pattern) if p is not None]
        return len(encoders) == 2 and encoders[0] == encoders[1]

    def _responses(self, X: Columns) -> np.ndarray:
        n = len(next(iter(X.values()))) if isinstance(X, Mapping) else len(X)
        if self.response not in X:
            return np.full(n, None, dtype=object)
        return np.asarray(X[self.response], dtype=object)

    @cached_property
    def _known(self) -> frozenset[str]:
        return frozenset(self.levels)

    def _usable(self, responses: np.ndarray) -> np.ndarray:
        known = self._known
        return map_values(responses, lambda r: isinstance(r, str) and r in known, missing=False, dtype=bool)

    def predict_arrays(self, X: Columns, horizons: tuple[float, ...], *, band: bool = True) -> dict[str, np.ndarray]:
        """The ``post_response_*`` columns; empty (NaN, None) where the response is missing or was not
        seen at the landmark, and at horizons not after the landmark.

        Parameters
        ----------
        X : pandas.DataFrame or mapping of str to array
            Checked covariates including the response column (when any row has one).
        horizons : tuple of float
            From infusion, as the baseline columns.
        band : bool, default=True
            Compute the 95 % band (delta method); False leaves ``_lower``/``_upper`` empty.

        Returns
        -------
        dict of str to ndarray
            The columns of :meth:`columns`.
        """
        responses = self._responses(X)
        n = responses.size
        rows = np.flatnonzero(self._usable(responses))
        times = np.asarray(horizons, dtype=float)
        after = times > self.time
        residual = times[after] - self.time
        columns = self.columns(horizons)
        out: dict[str, np.ndarray] = dict(zip(columns, np.full((len(columns), n), np.nan), strict=True))
        if self.pattern is not None:
            out[f"{PREFIX}likely_pattern"] = np.full(n, None, dtype=object)
        if rows.size == 0:
            return out
        subset = {c: np.asarray(X[c], dtype=object if c == self.response else None)[rows] for c in self._inputs}
        encoded = self.pipeline.named_steps["encode"].encode(subset)
        estimator = self.pipeline[-1]
        _, survival, median = predict_with_median(estimator, encoded, residual, self.time_grid)
        labels = [horizon_label(h) for h in times[after]]
        for j, label in enumerate(labels):
            out[f"{PREFIX}survival_{label}"][rows] = survival[:, j]
        if band:
            lower, upper = estimator.predict_survival_interval(encoded, residual, level=0.95, check_input=False)
            for j, label in enumerate(labels):
                out[f"{PREFIX}survival_{label}_lower"][rows] = lower[:, j]
                out[f"{PREFIX}survival_{label}_upper"][rows] = upper[:, j]
        out[f"{PREFIX}median_time"][rows] = self.time + median
        if self.pattern is not None and residual.size:
            model = self.pattern[-1]
            pattern_encoded = encoded if self._one_encoding else self.pattern.named_steps["encode"].encode(subset)
            if self.pattern_split:  # this model's risk after the landmark, shared between the causes
                cif = split_incidence(
                    lambda lo, hi, at: estimator.predict_survival(encoded[lo:hi], at, check_input=False),
                    estimator.unique_times_, model, model.relative_hazards(pattern_encoded, check_input=False),
                    residual)
            else:
                cif = model.predict_cumulative_incidence(pattern_encoded, residual, check_input=False)
            for k, cause in enumerate(model.causes_):
                for j, label in enumerate(labels):
                    out[f"{PREFIX}cif_{cause}_{label}"][rows] = cif[:, k, j]
            out[f"{PREFIX}likely_pattern"][rows] = model.pattern_from_incidence(cif[:, :, -1])
        return out

    def applicability(self, X: Columns) -> np.ndarray:
        """Per-row warnings (object array, ``""`` when none): a response not seen among the patients
        progression-free at the landmark."""
        responses = self._responses(X)
        unseen = ~self._usable(responses) & ~pd.isna(responses)
        return join_notes([row_notes(unseen, responses, self._unseen_note.format)], responses.size)

    @cached_property
    def _unseen_note(self) -> str:
        return (f"field {self.response}: {{!r}} was not seen among the patients progression-free at the "
                f"{self.time:g} landmark (levels {self.levels}): no post-response prediction")

    def to_dict(self) -> dict[str, Any]:
        out = {"time": self.time, "response": self.response, "time_grid": self.time_grid.tolist(),
               "pipeline": pipeline_to_dict(self.pipeline), "pattern_split": self.pattern_split}
        if self.pattern is not None:
            out["pattern"] = pipeline_to_dict(self.pattern)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LandmarkModel:
        return cls(time=float(d["time"]), response=d["response"], time_grid=np.asarray(d["time_grid"], dtype=float),
                   pipeline=pipeline_from_dict(d["pipeline"]),
                   pattern=pipeline_from_dict(d["pattern"], plain=True) if "pattern" in d else None,
                   pattern_split=d.get("pattern_split", False))
