"""The deployable risk model: a fitted pipeline plus what a prediction must carry with it.

A :class:`RiskModel` turns checked covariates into the public output columns (``risk_score``,
``risk_group``, ``survival_<h>`` with its 95 % band, ``median_time``, pattern incidences,
``post_response_*`` with a landmark model, ``warnings``), and stores itself as plain files, never
pickles: JSON parameters for Cox-type models, and for forests the compact engine's ``.npz`` arrays
plus JSON, whose SHA-256 digests are recorded and verified before they are read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from ._checks import join_notes
from .band import band_interval
from .coherent import split_incidence
from .contract import Field, Schema, data_dictionary
from .curves import predict_with_median
from .inputs import InputColumns, sort_columns
from .landmark import LandmarkModel
from .outputs import horizon_label
from .pipeline import SurvivalPipeline, pipeline_from_dict, pipeline_to_dict

__all__ = ["RiskModel", "horizon_label", "RISK_GROUPS", "ARTIFACT_KEY"]

RISK_GROUPS = ("low", "intermediate", "high")
ARTIFACT_KEY = "risk_model"  # the MLflow artifact folder holding a saved RiskModel
_PARAMS_FILE = "risk_model.json"
_FOREST_DIR = "forest"
_BLOCK_ROWS = 100_000

Columns = pd.DataFrame | Mapping[str, Any]  # checked columns: Schema.check's DataFrame or check_records' dict


def _store(kind: str, pipeline: SurvivalPipeline, forest_directory: Path) -> dict[str, Any]:
    """A pipeline as JSON parameters (Cox types) or encoder JSON + checked forest files (forests)."""
    if kind in ("cox", "coxnet"):
        return {"pipeline": pipeline_to_dict(pipeline)}
    from .estimators import forest_to_files

    record = forest_to_files(pipeline.named_steps["model"], forest_directory)
    return {"forest": {"encoder": pipeline.named_steps["encode"].to_dict(), "record": record}}


def _restore(entry: dict[str, Any], forest_directory: Path) -> SurvivalPipeline:
    if "pipeline" in entry:
        return pipeline_from_dict(entry["pipeline"])
    from .estimators import forest_from_files
    from .features import FeatureEncoder

    forest = forest_from_files(forest_directory, entry["forest"]["record"])
    encoder = FeatureEncoder.from_dict(entry["forest"]["encoder"]).set_output(transform="pandas")
    return SurvivalPipeline([("encode", encoder), ("model", forest)])


CONSERVATIVE_BAND = ("95 % band from the uncorrected jackknife variance (wider, conservative): the forest has too "
                     "few trees for the bias correction at this patient (more trees, models.rsf_trees, narrow it)")


def _frame(parts: list[dict[str, np.ndarray]], index: pd.Index) -> pd.DataFrame:
    """A DataFrame of the row blocks' columns, its float columns laid out as one block from the start.

    ``pd.DataFrame(dict)`` would copy every float column twice to consolidate them (about 1 s for a
    million rows of the full output, more than its prediction); here each value is copied once.
    """
    names = list(parts[0])
    floats = [name for name in names if parts[0][name].dtype == np.float64]
    block = np.empty((len(index), len(floats)), order="F")  # column-major: each column a contiguous slice
    start = 0
    for part in parts:
        stop = start + len(part[names[0]])
        for j, name in enumerate(floats):
            block[start:stop, j] = part[name]
        start = stop
    frame = pd.DataFrame(block, index=index, columns=floats, copy=False)
    for position, name in enumerate(names):
        if parts[0][name].dtype != np.float64:
            frame.insert(position, name, np.concatenate([part[name] for part in parts]))
    return frame


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
    landmark : LandmarkModel, optional
        The post-response model (:mod:`cnslrisk.model.landmark`): adds the ``post_response_*``
        columns for patients whose best response is given.
    pattern_split : bool, default=True
        Whether the pattern incidences split the survival model's risk between the causes
        (:func:`~cnslrisk.model.coherent.split_incidence`: they add up to ``1 - survival`` and never
        decrease). Models saved before 0.2 keep the pattern model's own product-limit incidences
        they were validated with (False).
    contract : Schema, optional
        The rules the training cohort was checked by (label, unit, type, range or levels of each
        column, from the data dictionary or the training config, never from the data); scoring
        input is checked by the same rules. Models saved without one use the CNSL data dictionary.
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
    landmark: LandmarkModel | None = None
    contract: Schema | None = None
    pattern_split: bool = True

    @property
    def feature_columns(self) -> list[str]:
        f = self.features
        return [*f["binary"], *f["categorical"], *f["numeric"]]

    @cached_property
    def input_schema(self) -> Schema:
        """The validator of scoring input: the model's covariates (required) and its id column.

        With a post-response model its response column is an optional, checked category. Other
        data-dictionary fields may be present (a full cohort row); they are passed over unchecked,
        since the model does not use them. Any other column is unknown. A covariate may be explicitly
        missing (null: "unknown") only where the model was trained to impute it (``features.impute``);
        otherwise the gap is refused, saying why.
        """
        f = self.features
        imputed = tuple(self.feature_columns) if self.imputes else ()
        refusal = "" if self.imputes else ("this model was trained without imputation (features.impute), so it cannot "
                                           "score an unknown value")
        if self.contract is not None:  # the model's own rules; its outcome and dictionary columns pass through
            covariates = set(self.feature_columns)
            used = {*covariates, f.get("id"), self.landmark.response if self.landmark else None} - {None}
            fields = tuple(replace(spec, required=spec.name in covariates) for spec in self.contract.fields
                           if spec.name in used)
            others = tuple(spec.name for spec in self.contract.fields if spec.name not in used)
            return Schema(fields, id=f.get("id"), time=None, event=None, cause=None,
                          passthrough=(*others, *self.contract.passthrough), imputed=imputed, missing_note=refusal)
        schema = Schema.for_columns(binary=f["binary"], categorical=f["categorical"], numeric=f["numeric"],
                                    id=f.get("id"))
        if self.landmark is not None:
            schema = replace(schema, fields=(*schema.fields, self._response_field()))
        used = set(schema.names)
        return replace(schema, passthrough=tuple(name for name in data_dictionary().names if name not in used),
                       imputed=imputed, missing_note=refusal)

    @property
    def imputes(self) -> bool:
        """Whether the model fills missing covariates (``features.impute = "median"`` declared at training)."""
        return self.pipeline.named_steps["encode"].impute is not None

    def check_frame(self, frame: pd.DataFrame, *, strict: bool = False) -> tuple[pd.DataFrame, InputColumns]:
        """Check a file's rows for scoring: its input columns by the model's contract, the others ignored.

        Parameters
        ----------
        frame : pandas.DataFrame
            Rows as read from a file (CSV text or typed Parquet values), any extra columns included.
        strict : bool, default=False
            Refuse every column that is not a model input instead of ignoring it.

        Returns
        -------
        checked : pandas.DataFrame
            The input columns, typed (as :meth:`Schema.check` returns them).
        columns : InputColumns
            Which columns were used and which ignored (:func:`~cnslrisk.model.inputs.sort_columns`).

        Raises
        ------
        CohortValidationError
            For a near-miss of an input's name, an extra column under ``strict``, and every invalid value.
        """
        schema = self.input_schema
        names = {str(c): c for c in frame.columns}
        columns = sort_columns(schema.names, schema.passthrough, list(names), strict=strict)
        checked = schema.check(frame[[names[c] for c in columns.used]], require_outcome=False)
        return checked, columns

    def _response_field(self) -> Field:
        name = self.landmark.response
        known = data_dictionary().by_name().get(name)
        spec = known or Field(name=name, type="category", role="post-infusion",
                              description="best response, known by the landmark")
        return replace(spec, required=False)

    @property
    def interval_method(self) -> str:
        """How the 95 % band of S(t|x) is obtained (shown with every prediction)."""
        if self.band:
            return (f"bootstrap percentile band: {len(self.band)} refits of the whole fitting procedure "
                    "on resamples of the training cohort (Efron & Tibshirani 1993)")
        estimator = self.pipeline[-1]
        if hasattr(estimator, "compact_"):
            return (f"infinitesimal jackknife over the forest's {estimator.compact_.n_trees_} bootstrap trees "
                    "(bias-corrected, Wager, Hastie & Efron 2014), delta method on log(-log S); where too few trees "
                    "leave the corrected variance at or below 0, the uncorrected one (wider) and a warning; it has "
                    "no bias term, so it covers the true curve less often than 95 % where the forest is biased "
                    "(small cohorts)")
        if hasattr(estimator, "predict_survival_interval"):
            return "delta method on log(-log S) (Breslow variance, Therneau & Grambsch 2000)"
        return "none"

    def _interval(self, X: Columns, times: np.ndarray, encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(lower, upper) 95 % band at ``times``, or None when the model has none."""
        if self.band:
            return band_interval(self.band, X, times)
        estimator = self.pipeline[-1]
        if not hasattr(estimator, "predict_survival_interval"):
            return None
        return estimator.predict_survival_interval(encoded, times, level=0.95, check_input=False)

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
            Compute the 95 % band; False leaves ``survival_<h>_lower/_upper`` empty (a band of refitted
            members evaluates every member: about 50 times the cost of the point prediction).

        Returns
        -------
        pandas.DataFrame
            One row per input row, columns as in the public interface.
        """
        # rows in blocks: each block's intermediate arrays stay in the CPU cache (a million at once: about 1.3x slower)
        starts = range(0, max(len(X), 1), _BLOCK_ROWS)
        return _frame([self.predict_arrays(X.iloc[lo:lo + _BLOCK_ROWS], horizons, band=band) for lo in starts], X.index)

    def encode(self, X: Columns) -> np.ndarray:
        """Checked covariates encoded as the survival model reads them (see ``encoded`` of :meth:`predict_arrays`)."""
        return self.pipeline.named_steps["encode"].encode(X)

    def predict_arrays(self, X: Columns, horizons: tuple[float, ...] | None = None, *, band: bool = True,
                       encoded: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """:meth:`predict` as a dict of column name to array, for checked columns in any container.

        Parameters
        ----------
        X : pandas.DataFrame or mapping of str to array
            Checked covariates: a DataFrame from :meth:`Schema.check` or the columns from
            :meth:`Schema.check_records` (which is what lets one API record skip DataFrames).
        horizons, band
            As in :meth:`predict`.
        encoded : ndarray, optional
            ``X`` already passed through :meth:`encode` (a caller that also wants
            :meth:`contribution_arrays` encodes once for both).

        Returns
        -------
        dict of str to ndarray
            The columns of :meth:`predict_columns`, in that order.
        """
        horizons = tuple(horizons or self.horizons)
        id_column = self.features.get("id")
        out: dict[str, Any] = {}
        if id_column and id_column in X:
            out[id_column] = np.asarray(X[id_column], dtype=object)
        encoded = self.encode(X) if encoded is None else encoded  # once: every prediction below reuses it
        times = np.asarray(horizons, dtype=float)
        estimator = self.pipeline[-1]
        if hasattr(estimator, "predict_summary") and not self.band:  # a forest: one routing for all of it
            summary = estimator.predict_summary(encoded, times, grid=self.time_grid, level=0.95 if band else None,
                                                check_input=False)
            risk, survival, median = summary["risk"], summary["survival"], summary["median"]
            interval = (summary["lower"], summary["upper"]) if band else None
            conservative = summary["conservative"].any(axis=1) if band else None
        else:
            risk, survival, median = predict_with_median(estimator, encoded, times, self.time_grid)
            interval = self._interval(X, times, encoded) if band else None
            conservative = None
        out["risk_score"] = risk
        out["risk_group"] = self.risk_group(risk)
        lower, upper = interval if interval is not None else (np.full((len(risk), len(times)), np.nan),) * 2
        for j, label in enumerate(map(horizon_label, horizons)):
            out[f"survival_{label}"] = survival[:, j]
            out[f"survival_{label}_lower"] = lower[:, j]
            out[f"survival_{label}_upper"] = upper[:, j]
        out["median_time"] = median
        if self.pattern is not None:
            out.update(self._patterns(X, times, encoded))
        if self.landmark is not None:
            out.update(self.landmark.predict_arrays(X, horizons, band=band))
        out["warnings"] = self.applicability(X)
        if conservative is not None and conservative.any():
            out["warnings"] = join_notes([out["warnings"], np.where(conservative, CONSERVATIVE_BAND, "")], len(risk))
        return out

    def _patterns(self, X: Columns, times: np.ndarray, encoded: np.ndarray) -> dict[str, np.ndarray]:
        estimator = self.pattern[-1]
        pattern_encoded = self.pattern.named_steps["encode"].encode(X)  # the encoder picks its own columns
        if self.pattern_split:  # the survival model's risk, shared between the causes by the pattern model
            survival = self.pipeline[-1]
            cif = split_incidence(lambda lo, hi, at: survival.predict_survival(encoded[lo:hi], at, check_input=False),
                                  getattr(survival, "unique_times_", self.time_grid), estimator,
                                  estimator.relative_hazards(pattern_encoded, check_input=False), times)
        else:
            cif = estimator.predict_cumulative_incidence(pattern_encoded, times, check_input=False)
        labels = [horizon_label(h) for h in times]
        out = {f"cif_{cause}_{label}": cif[:, k, j]
               for k, cause in enumerate(estimator.causes_) for j, label in enumerate(labels)}
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
        if self.landmark is not None:
            columns += self.landmark.columns(tuple(horizons or self.horizons))
        return [*columns, "warnings"]

    def survival_curve(self, X: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """S(t|x) on the model's time grid with its 95 % band (None when the model has none).

        Returns
        -------
        times : ndarray, shape (n_times,)
        survival, lower, upper : ndarray, shape (n_samples, n_times)
        """
        encoded = self.encode(X)
        survival = self.pipeline[-1].predict_survival(encoded, self.time_grid, check_input=False)
        band = self._interval(X, self.time_grid, encoded)
        return (self.time_grid, survival, *band) if band is not None else (self.time_grid, survival, None, None)

    def applicability(self, X: Columns) -> np.ndarray:
        """Per-row warnings (``"; "``-joined, empty when none): values outside training ranges, unseen levels."""
        notes = self.pipeline.named_steps["encode"].applicability(X)
        return notes if self.landmark is None else join_notes([notes, self.landmark.applicability(X)], notes.size)

    @property
    def contribution_method(self) -> str:
        """How :meth:`contributions` are computed (shown beside them)."""
        if self.kind in ("cox", "coxnet"):
            return "coef x (value - training mean), summed over a categorical's indicators: log hazard ratio units"
        return ("risk score minus the risk score with this covariate alone set to its reference (training mean, "
                "reference level, or false): one-at-a-time, in risk-score units")

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-covariate contribution to each row's risk score (see :attr:`contribution_method`)."""
        return pd.DataFrame(self.contribution_arrays(X), index=X.index)

    def contribution_arrays(self, X: Columns, *, encoded: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """:meth:`contributions` as a dict of covariate to array, for checked columns in any container.

        ``encoded`` is ``X`` already passed through :meth:`encode`, as in :meth:`predict_arrays`.
        """
        encoder = self.pipeline.named_steps["encode"]
        estimator = self.pipeline[-1]
        encoded = self.encode(X) if encoded is None else encoded
        if self.kind in ("cox", "coxnet"):
            terms = (encoded - estimator.x_mean_) * estimator.coef_
            return {c: terms[:, columns[0]] if len(columns) == 1 else terms[:, columns].sum(axis=1)
                    for c, columns in self._encoded_columns.items()}
        n = len(encoded)
        blocks = [encoded]
        for column in self.feature_columns:
            if column in self.features["numeric"]:
                reference = np.full(n, encoder.mean_[column])
            elif column in self.features["categorical"]:
                reference = np.full(n, encoder.levels_[column][0], dtype=object)
            else:
                reference = np.zeros(n, dtype=bool)
            others = {c: (reference if c == column else X[c]) for c in self.feature_columns}
            blocks.append(encoder.encode(others))
        # one prediction for all the rows: a forest's score of a row does not depend on the other rows
        scores = estimator.predict(np.concatenate(blocks), check_input=False).reshape(len(blocks), n)
        return {column: scores[0] - scores[k + 1] for k, column in enumerate(self.feature_columns)}

    @cached_property
    def _encoded_columns(self) -> dict[str, list[int]]:
        """Each covariate's encoded columns (``cnsl_type`` → the ``cnsl_type_<level>`` indicators)."""
        names = list(self.pipeline.named_steps["encode"].get_feature_names_out())

        def owner(name: str) -> str:
            if name in self.feature_columns:
                return name
            return next(c for c in self.features["categorical"] if name.startswith(f"{c}_"))

        owners = [owner(n) for n in names]
        return {c: [i for i, o in enumerate(owners) if o == c] for c in self.feature_columns}

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
            params["pattern"] = pipeline_to_dict(self.pattern)
        if self.landmark is not None:
            params["landmark"] = self.landmark.to_dict()
        if self.contract is not None:
            params["contract"] = self.contract.to_dict()
        params["pattern_split"] = self.pattern_split
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
            pattern=pipeline_from_dict(params["pattern"], plain=True) if "pattern" in params else None,
            band=band,
            landmark=LandmarkModel.from_dict(params["landmark"]) if "landmark" in params else None,
            contract=Schema.from_dict(params["contract"]) if "contract" in params else None,
            pattern_split=params.get("pattern_split", False),
        )
