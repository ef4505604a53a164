"""The deployable risk model: a fitted pipeline plus what a prediction must carry with it.

A :class:`RiskModel` turns checked covariates into the public output columns (``risk_score``,
``risk_group``, ``survival_<h>`` with its 95 % band, ``median_time``, pattern incidences,
``warnings``), and stores itself as plain files, never pickles: JSON parameters for Cox-type
models, and for forests the compact engine's ``.npz`` arrays plus JSON, whose SHA-256 digests are
recorded and verified before they are read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from .band import band_interval
from .pipeline import SurvivalPipeline

__all__ = ["RiskModel", "horizon_label", "RISK_GROUPS", "ARTIFACT_KEY"]

RISK_GROUPS = ("low", "intermediate", "high")
ARTIFACT_KEY = "risk_model"  # the MLflow artifact folder holding a saved RiskModel
_PARAMS_FILE = "risk_model.json"
_FOREST_DIR = "forest"


def horizon_label(h: float) -> str:
    """Write a horizon as the config does: 6.0 → ``"6"``, 0.5 → ``"0.5"``."""
    return f"{h:g}"


def _pipeline_to_dict(pipeline: Pipeline) -> dict[str, Any]:
    estimator = pipeline.named_steps["model"]
    return {
        "encoder": pipeline.named_steps["encode"].to_dict(),
        "estimator": estimator.to_dict(),
        "estimator_class": type(estimator).__name__,
    }


def _pipeline_from_dict(params: dict[str, Any], *, plain: bool = False) -> Pipeline:
    from .estimators import CoxPH, PenalizedCox
    from .features import FeatureEncoder
    from .pattern import CauseSpecificCox

    classes = {"CoxPH": CoxPH, "PenalizedCox": PenalizedCox, "CauseSpecificCox": CauseSpecificCox}
    estimator = classes[params["estimator_class"]].from_dict(params["estimator"])
    # as make_pipeline does: the encoder hands named columns to the estimator
    encoder = FeatureEncoder.from_dict(params["encoder"]).set_output(transform="pandas")
    return (Pipeline if plain else SurvivalPipeline)([("encode", encoder), ("model", estimator)])


def _store(kind: str, pipeline: SurvivalPipeline, forest_directory: Path) -> dict[str, Any]:
    """A pipeline as JSON parameters (Cox types) or encoder JSON + checked forest files (forests)."""
    if kind in ("cox", "coxnet"):
        return {"pipeline": _pipeline_to_dict(pipeline)}
    from .estimators import forest_to_files

    record = forest_to_files(pipeline.named_steps["model"], forest_directory)
    return {"forest": {"encoder": pipeline.named_steps["encode"].to_dict(), "record": record}}


def _restore(entry: dict[str, Any], forest_directory: Path) -> SurvivalPipeline:
    if "pipeline" in entry:
        return _pipeline_from_dict(entry["pipeline"])
    from .estimators import forest_from_files
    from .features import FeatureEncoder

    forest = forest_from_files(forest_directory, entry["forest"]["record"])
    encoder = FeatureEncoder.from_dict(entry["forest"]["encoder"]).set_output(transform="pandas")
    return SurvivalPipeline([("encode", encoder), ("model", forest)])


@dataclass
class RiskModel:
    """A fitted survival pipeline with its horizons, risk-group cut points and provenance.

    Parameters
    ----------
    kind : str
        ``"cox"``, ``"coxnet"`` or ``"rsf"``.
    pipeline : SurvivalPipeline
        Fitted; takes the checked covariate columns.
    features : dict
        ``binary``, ``categorical``, ``numeric`` column lists and ``id`` (or None).
    horizons : tuple of float
        Default prediction horizons, in ``time_unit``.
    time_grid : ndarray
        Distinct event times of the training cohort (the grid of the predicted curve).
    risk_cutpoints : tuple of float
        Tertiles of the training cohort's risk scores: below the first is ``low``, above the second ``high``.
    training_km : dict
        The training cohort's Kaplan–Meier curve (``time``, ``survival``), drawn beside predictions.
    metadata : dict
        Provenance (``training_data``: source, n, events, sha256), validation figures and, once
        registered, ``name``/``version``; carried into every prediction's provenance.
    pattern : Pipeline, optional
        The relapse-pattern model (encoder + :class:`~cnslrisk.model.pattern.CauseSpecificCox`):
        adds ``cif_<cause>_<h>`` and ``likely_pattern`` (argmax of the incidences at the last horizon).
    band : list of SurvivalPipeline, optional
        Bootstrap refits giving the 95 % band of models without a variance formula
        (:mod:`cnslrisk.model.band`); an unpenalised Cox model uses the delta method instead.
    """

    kind: str
    pipeline: SurvivalPipeline
    features: dict[str, Any]
    horizons: tuple[float, ...]
    time_unit: str
    time_grid: np.ndarray
    risk_cutpoints: tuple[float, float]
    training_km: dict[str, list[float]]
    metadata: dict[str, Any] = field(default_factory=dict)
    pattern: Pipeline | None = None
    band: list[SurvivalPipeline] | None = None

    @property
    def feature_columns(self) -> list[str]:
        f = self.features
        return [*f["binary"], *f["categorical"], *f["numeric"]]

    @property
    def interval_method(self) -> str:
        """How the 95 % band of S(t|x) is obtained (shown with every prediction)."""
        if self.band:
            return (f"bootstrap percentile band: {len(self.band)} refits of the whole fitting procedure "
                    "on resamples of the training cohort (Efron & Tibshirani 1993)")
        if hasattr(self.pipeline, "predict_survival_interval"):
            return "delta method on log(-log S) (Breslow variance, Therneau & Grambsch 2000)"
        return "none"

    def _interval(self, covariates: pd.DataFrame, times: np.ndarray, encoded: Any = None
                  ) -> tuple[np.ndarray, np.ndarray] | None:
        """(lower, upper) 95 % band at ``times``, or None when the model has none."""
        if self.band:
            return band_interval(self.band, covariates, times)
        if not hasattr(self.pipeline, "predict_survival_interval"):
            return None
        if encoded is None:
            return self.pipeline.predict_survival_interval(covariates, times, level=0.95)
        return self.pipeline[-1].predict_survival_interval(encoded, times, level=0.95)

    def risk_group(self, risk: np.ndarray) -> np.ndarray:
        """Map risk scores to ``low`` / ``intermediate`` / ``high`` by the training tertiles."""
        index = np.searchsorted(np.asarray(self.risk_cutpoints), risk, side="right")
        return np.asarray(RISK_GROUPS, dtype=object)[index]

    def predict(self, X: pd.DataFrame, horizons: tuple[float, ...] | None = None, *, band: bool = True
                ) -> pd.DataFrame:
        """Predict the public output columns for checked covariates.

        Parameters
        ----------
        X : pandas.DataFrame
            Typed covariates as returned by ``check_cohort(..., require_outcome=False)``; the id
            column, when present, is carried through first.
        horizons : tuple of float, optional
            Override the model's horizons.
        band : bool, default=True
            Compute the 95 % band; False leaves ``survival_<h>_lower/_upper`` empty (a forest's
            bootstrap band evaluates every member: about 50 times the cost of its point prediction).

        Returns
        -------
        pandas.DataFrame
            One row per input row, columns as in the public interface.
        """
        horizons = tuple(horizons or self.horizons)
        id_column = self.features.get("id")
        out: dict[str, Any] = {}
        if id_column and id_column in X:
            out[id_column] = X[id_column].to_numpy()
        covariates = X[self.feature_columns]
        encoded = self.pipeline[:-1].transform(covariates)  # once: every prediction below reuses it
        estimator = self.pipeline[-1]
        risk = np.asarray(estimator.predict(encoded), dtype=float)
        out["risk_score"] = risk
        out["risk_group"] = self.risk_group(risk)
        times = np.asarray(horizons, dtype=float)
        survival = estimator.predict_survival(encoded, np.concatenate([times, self.time_grid]))
        interval = self._interval(covariates, times, encoded) if band else None
        lower, upper = interval if interval is not None else (np.full((len(X), len(times)), np.nan),) * 2
        for j, h in enumerate(horizons):
            label = horizon_label(h)
            out[f"survival_{label}"] = survival[:, j]
            out[f"survival_{label}_lower"] = lower[:, j]
            out[f"survival_{label}_upper"] = upper[:, j]
        out["median_time"] = self._median(survival[:, len(times):])
        if self.pattern is not None:
            out.update(self._patterns(X, horizons))
        out["warnings"] = self.applicability(covariates)
        return pd.DataFrame(out, index=X.index)

    def _patterns(self, X: pd.DataFrame, horizons: tuple[float, ...]) -> dict[str, np.ndarray]:
        estimator = self.pattern[-1]
        encoded = self.pattern[:-1].transform(X[self.feature_columns])  # the encoder picks its own columns
        cif = estimator.predict_cumulative_incidence(encoded, np.asarray(horizons, dtype=float))
        out = {f"cif_{cause}_{horizon_label(h)}": cif[:, k, j]
               for k, cause in enumerate(estimator.causes_) for j, h in enumerate(horizons)}
        out["likely_pattern"] = estimator.pattern_from_incidence(cif[:, :, -1])
        return out

    def predict_columns(self, horizons: tuple[float, ...] | None = None) -> list[str]:
        """The output columns of :meth:`predict`, in order."""
        columns = [self.features["id"]] if self.features.get("id") else []
        columns += ["risk_score", "risk_group"]
        for h in horizons or self.horizons:
            label = horizon_label(h)
            columns += [f"survival_{label}", f"survival_{label}_lower", f"survival_{label}_upper"]
        columns.append("median_time")
        if self.pattern is not None:
            columns += [f"cif_{cause}_{horizon_label(h)}" for cause in self.pattern[-1].causes_
                        for h in horizons or self.horizons]
            columns.append("likely_pattern")
        return [*columns, "warnings"]

    def survival_curve(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """S(t|x) on the model's time grid with its 95 % band (None when the model has none).

        Returns
        -------
        times : ndarray, shape (n_times,)
        survival, lower, upper : ndarray, shape (n_samples, n_times)
        """
        covariates = X[self.feature_columns]
        survival = self.pipeline.predict_survival(covariates, self.time_grid)
        band = self._interval(covariates, self.time_grid)
        return (self.time_grid, survival, *band) if band is not None else (self.time_grid, survival, None, None)

    def _median(self, survival_on_grid: np.ndarray) -> np.ndarray:
        """First grid time where S(t|x) <= 0.5; NaN when the curve stays above 0.5 (not reached)."""
        below = survival_on_grid <= 0.5
        return np.where(below.any(axis=1), self.time_grid[below.argmax(axis=1)], np.nan)

    def applicability(self, X: pd.DataFrame) -> np.ndarray:
        """Per-row warnings (``"; "``-joined, empty when none): values outside training ranges, unseen levels."""
        encoder = self.pipeline.named_steps["encode"]
        return np.asarray(encoder.applicability(X[self.feature_columns]), dtype=object)

    @property
    def contribution_method(self) -> str:
        """How :meth:`contributions` are computed (shown beside them)."""
        if self.kind in ("cox", "coxnet"):
            return "coef x (value - training mean), summed over a categorical's indicators: log hazard ratio units"
        return ("risk score minus the risk score with this covariate alone set to its reference (training mean, "
                "reference level, or false): one-at-a-time, in risk-score units")

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-covariate contribution to each row's risk score (see :attr:`contribution_method`)."""
        covariates = X[self.feature_columns]
        encoder = self.pipeline.named_steps["encode"]
        estimator = self.pipeline[-1]
        if self.kind in ("cox", "coxnet"):
            encoded = np.asarray(self.pipeline[:-1].transform(covariates), dtype=float)
            terms = (encoded - estimator.x_mean_) * estimator.coef_
            names = list(encoder.get_feature_names_out())
            return pd.DataFrame({c: terms[:, [i for i, n in enumerate(names) if self._owner(n) == c]].sum(axis=1)
                                 for c in self.feature_columns}, index=X.index)
        base = self.pipeline.predict(covariates)
        out = {}
        for column in self.feature_columns:
            reference = covariates.copy()
            if column in self.features["numeric"]:
                reference[column] = encoder.mean_[column]
            elif column in self.features["categorical"]:
                reference[column] = encoder.levels_[column][0]
            else:
                reference[column] = False
            out[column] = base - self.pipeline.predict(reference)
        return pd.DataFrame(out, index=X.index)

    def _owner(self, encoded_name: str) -> str:
        """The covariate an encoded column belongs to (``cnsl_type_secondary`` → ``cnsl_type``)."""
        if encoded_name in self.feature_columns:
            return encoded_name
        return next(c for c in self.features["categorical"] if encoded_name.startswith(f"{c}_"))

    # -- storage -------------------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write the model to ``directory`` (created); returns the parameters file."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        params: dict[str, Any] = {
            "format": 1,
            "kind": self.kind,
            "features": self.features,
            "horizons": list(self.horizons),
            "time_unit": self.time_unit,
            "time_grid": self.time_grid.tolist(),
            "risk_cutpoints": list(self.risk_cutpoints),
            "training_km": self.training_km,
            "metadata": self.metadata,
        }
        params["stored"] = _store(self.kind, self.pipeline, directory / _FOREST_DIR)
        if self.band is not None:
            params["band"] = [_store(self.kind, member, directory / "band" / str(i))
                              for i, member in enumerate(self.band)]
        if self.pattern is not None:
            params["pattern"] = _pipeline_to_dict(self.pattern)
        path = directory / _PARAMS_FILE
        path.write_text(json.dumps(params, indent=1, allow_nan=True))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> RiskModel:
        """Load a saved model (no unpickling); forest files are read only if their SHA-256 digests match.

        Raises
        ------
        ForestFileError
            When a forest file is missing or was changed after it was written.
        """
        directory = Path(directory)
        params = json.loads((directory / _PARAMS_FILE).read_text())
        pipeline = _restore(params["stored"], directory / _FOREST_DIR)
        band = None
        if "band" in params:
            band = [_restore(entry, directory / "band" / str(i)) for i, entry in enumerate(params["band"])]
        return cls(
            kind=params["kind"],
            pipeline=pipeline,
            features=params["features"],
            horizons=tuple(params["horizons"]),
            time_unit=params["time_unit"],
            time_grid=np.asarray(params["time_grid"], dtype=float),
            risk_cutpoints=tuple(params["risk_cutpoints"]),
            training_km=params["training_km"],
            metadata=params["metadata"],
            pattern=_pipeline_from_dict(params["pattern"], plain=True) if "pattern" in params else None,
            band=band,
        )
