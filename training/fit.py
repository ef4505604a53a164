"""Fit each candidate model type named by the config and compare them all on the same out-of-fold predictions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.pipeline import SurvivalPipeline, make_pipeline

from .bootstrap import OptimismResult, bootstrap_optimism, resample
from .comparison import Comparison, compare, reference_factories
from .config import TrainingConfig
from .data import TrainingData

__all__ = ["Candidate", "fit_candidate", "comparison_factories", "compare_candidates", "pipeline_factory",
           "fit_pattern", "fit_band", "sample_size_section", "COX_TYPES"]

# models whose Harrell optimism bootstrap agrees with R rms validate; forests get out-of-fold figures only,
# because the bootstrap under-corrects a learner that nearly reproduces its training data
COX_TYPES = ("cox", "coxnet")


@dataclass
class Candidate:
    """One model type fitted on the whole cohort, with its bootstrap optimism when it is a Cox-type model."""

    kind: str
    pipeline: SurvivalPipeline
    optimism: OptimismResult | None
    seconds: dict[str, float] = field(default_factory=dict)


def pipeline_factory(kind: str, config: TrainingConfig) -> Callable[[], SurvivalPipeline]:
    """A zero-argument factory for an unfitted pipeline of ``kind`` (inner tuning included)."""
    f, m = config.features, config.models
    params: dict[str, Any] = {"alpha": m.cox_alpha} if kind == "cox" and m.cox_alpha else {}
    if kind == "rsf":
        params = {"n_estimators": m.rsf_trees, "inner_cv": m.inner_folds}
    elif kind == "coxnet":
        params = {"l1_ratio": m.coxnet_l1_ratio, "inner_cv": m.inner_folds}
    return partial(
        make_pipeline, kind, binary=list(f.binary), categorical=list(f.categorical), numeric=list(f.numeric),
        random_state=config.seed, impute=f.impute, **params,
    )


def fit_candidate(
    kind: str, config: TrainingConfig, data: TrainingData, *, progress: Callable[[str, int], None] | None = None
) -> Candidate:
    """Fit ``kind`` on the whole cohort and, for a Cox-type model, estimate its optimism by the bootstrap.

    Parameters
    ----------
    progress : callable, optional
        ``progress(stage, advance)``; called as resamples finish.
    """
    import time

    factory = pipeline_factory(kind, config)
    seconds = {}
    start = time.perf_counter()
    pipeline = factory().fit(data.X, data.y)
    seconds["fit"] = time.perf_counter() - start
    optimism = None
    if kind in COX_TYPES and config.validation.bootstrap > 0:
        start = time.perf_counter()
        optimism = bootstrap_optimism(
            factory, data.X, data.y, resamples=config.validation.bootstrap, seed=config.seed, n_jobs=config.n_jobs,
            progress=None if progress is None else partial(progress, f"{kind} bootstrap"),
        )
        seconds["bootstrap"] = time.perf_counter() - start
    return Candidate(kind=kind, pipeline=pipeline, optimism=optimism, seconds=seconds)


def comparison_factories(kinds: Sequence[str], config: TrainingConfig) -> dict[str, Any]:
    """Factories of the comparison: every kind in ``kinds`` plus the reference rows (:func:`reference_factories`)."""
    factories = {kind: pipeline_factory(kind, config) for kind in kinds}
    factories.update(reference_factories(partial(make_pipeline, "cox", random_state=config.seed),
                                         list(config.features.binary)))
    return factories


def compare_candidates(
    kinds: Sequence[str], config: TrainingConfig, data: TrainingData, *,
    progress: Callable[[str, int], None] | None = None,
) -> Comparison:
    """Every kind in ``kinds``, the Kaplan-Meier null model and the published model (Cox on pCE + LMD, when
    both are covariates), refitted on the same repeated stratified K-fold splits (:mod:`.comparison`)."""
    v = config.validation
    return compare(comparison_factories(kinds, config), data.X, data.y, horizons=v.horizons, folds=v.folds,
                   repeats=v.repeats,
                   seed=config.seed, n_jobs=config.n_jobs,
                   progress=None if progress is None else partial(progress, "cross-validation"))


def sample_size_section(chosen: Candidate, config: TrainingConfig, data: TrainingData, *,
                        cox: Candidate | None = None) -> dict[str, Any]:
    """The card's sample-size section: events per parameter of ``chosen`` and Riley's minimum n
    (its R2_CS from the Cox candidate ``cox`` when there is one)."""
    from cnslrisk.model.pipeline import n_parameters

    from .sample_size import assess_sample_size

    horizons = config.validation.horizons
    lp = cox.pipeline.predict(data.X) if cox is not None else None
    result = assess_sample_size(data.y, parameters=n_parameters(chosen.pipeline), linear_predictor=lp,
                                timepoint=horizons[len(horizons) // 2])
    return result.to_dict()


def training_km(y: np.ndarray) -> dict[str, list[float]]:
    """The cohort's Kaplan–Meier curve as plain lists (an aggregate: no row can be recovered from it)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    times, survival = kaplan_meier_estimator(y["event"], y["time"])
    return {"time": times.tolist(), "survival": survival.tolist()}


def risk_cutpoints(risk: np.ndarray) -> tuple[float, float]:
    """Tertiles of the training risk scores (interpolated, so no single patient's score is stored)."""
    low, high = np.quantile(risk, [1 / 3, 2 / 3])
    return float(low), float(high)


def coefficient_table(candidate: Candidate) -> pd.DataFrame | None:
    """Cox coefficients with HR, 95 % CI and p (None for models without them)."""
    from cnslrisk.model.summary import summary

    model = candidate.pipeline.named_steps["model"]
    if not hasattr(model, "variance_matrix_"):
        return None
    return summary(model)


def pattern_factory(config: TrainingConfig) -> Callable[[], Any]:
    """A factory for the unfitted relapse-pattern pipeline (encoder + cause-specific Cox models)."""
    from sklearn.pipeline import Pipeline

    from cnslrisk.model.features import FeatureEncoder
    from cnslrisk.model.pattern import CauseSpecificCox

    f, chosen = config.features, set(config.pattern_features)

    def make() -> Pipeline:
        encoder = FeatureEncoder([c for c in f.binary if c in chosen], [c for c in f.categorical if c in chosen],
                                 [c for c in f.numeric if c in chosen], impute=f.impute)
        model = CauseSpecificCox(censored=config.data.censored, alpha=config.pattern.alpha)
        return Pipeline([("encode", encoder.set_output(transform="pandas")), ("model", model)])

    return make


def fit_pattern(config: TrainingConfig, data: TrainingData, *, survival_kind: str | None = "cox",
                progress: Callable[[str, int], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Fit the relapse-pattern model on the whole cohort and cross-validate the incidences it shows.

    Parameters
    ----------
    survival_kind : str or None, default="cox"
        The survival model whose risk the pattern model splits between the causes in every prediction
        (:mod:`cnslrisk.model.coherent`): the cross-validation refits both on each training fold and judges
        those incidences. None validates the pattern model's own product-limit incidences instead.

    Returns
    -------
    pipeline : sklearn Pipeline
        Fitted encoder + :class:`~cnslrisk.model.pattern.CauseSpecificCox`.
    validation : dict
        The model card's ``pattern_validation`` section.
    """
    from cnslrisk.model.coherent import CoherentIncidence
    from cnslrisk.model.pattern import competing_outcome

    from .pattern_validation import validate_pattern_model

    factory = pattern_factory(config)
    X = data.X[config.pattern_features]
    pipeline = factory().fit(X, competing_outcome(data.cause, data.y["time"]))
    if survival_kind is not None:  # both models refitted on each fold, as a prediction combines them
        factory = partial(CoherentIncidence, pipeline_factory(survival_kind, config)(), factory(),
                          censored=config.data.censored)
        X = data.X
    v = config.validation
    validation = validate_pattern_model(
        factory, X, data.y["time"], data.cause, horizons=v.horizons, censored=config.data.censored, folds=v.folds,
        repeats=config.pattern.repeats, bootstrap=v.bootstrap, seed=config.seed, n_jobs=config.n_jobs,
        progress=None if progress is None else partial(progress, "pattern validation"),
    )
    return pipeline, validation


def _band_chunk(factory: Callable[[], Any], X: pd.DataFrame, y: np.ndarray, seeds: list[int]) -> list[Any]:
    members = []
    for seed in seeds:
        Xb, yb = resample(X, y, seed)
        try:
            members.append(factory().fit(Xb, yb))
        except (ValueError, ArithmeticError):  # a resample without the events a fit needs: left out
            members.append(None)
    return members


def fit_band(kind: str, config: TrainingConfig, data: TrainingData) -> list[Any] | None:
    """Bootstrap refits of the whole fitting procedure (tuning included), the 95 % band of models
    without a variance formula (see :mod:`cnslrisk.model.band`); failed resamples are left out.

    None for a forest with ``validation.forest_band = "jackknife"`` (the default): its band is the
    infinitesimal jackknife over its own trees, kept with the forest itself."""
    from .crossval import run_chunked, spawn_seeds

    if kind == "rsf" and config.validation.forest_band == "jackknife":
        return None

    factory = pipeline_factory(kind, config)
    seeds = spawn_seeds(config.seed + 1, config.validation.band_resamples)  # not the optimism bootstrap's
    members = run_chunked(partial(_band_chunk, factory), seeds, config.n_jobs, None, shared=(data.X, data.y))
    return [m for m in members if m is not None]
