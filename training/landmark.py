"""Fit and validate the post-response (landmark) model named by a config's ``[landmark]`` table.

The patients progression-free at the landmark with a known best response are a cohort of their own,
on the time left after the landmark; the baseline machinery (Cox fit, repeated cross-validation,
bootstrap optimism, sample size, the relapse-pattern model and its validation) runs on it
unchanged, through a config whose covariates are the landmark covariates plus the response.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from cnslrisk.model.landmark import LandmarkModel
from cnslrisk.model.pipeline import n_parameters

from .card import coefficients_dict
from .comparison import NULL
from .config import ConfigError, LandmarkConfig, TrainingConfig
from .data import TrainingData
from .fit import coefficient_table, compare_candidates, fit_candidate, fit_pattern, sample_size_section
from .pattern_card import pattern_section

__all__ = ["landmark_config", "landmark_data", "fit_landmark", "MIN_LANDMARK_EVENTS"]

# below this many events after the landmark a Cox model with the response levels cannot be estimated
# or validated (5-fold CV leaves about 2 events per fold)
MIN_LANDMARK_EVENTS = 10

_METHOD = ("landmark Cox model (van Houwelingen 2007): fitted on the patients progression-free at the landmark with "
           "a known best response, on the time left after it, with the response as a covariate; gives "
           "P(T > h | T > landmark) and the pattern incidences between the landmark and h, for horizons h after it")
_CAVEAT = ("Valid only for a patient progression-free at the landmark whose best response was assessed by then. A "
           "response first seen later would credit the patient with progression-free time already survived "
           "(immortal-time bias).")


def _estimation(estimator: object, alpha: float) -> str:
    """How the landmark Cox model was estimated (its card's method line)."""
    if alpha > 0:
        return f"ridge penalty alpha {alpha:g} (asked for in the config)"
    if getattr(estimator, "penalty_", "none") == "firth":
        return f"Firth's penalised likelihood: {estimator.separation_}"
    return "ordinary (unpenalised) Cox model; Firth's penalty would apply only if its likelihood were monotone"


def landmark_config(config: TrainingConfig) -> TrainingConfig:
    """The config of the landmark cohort: landmark covariates plus the response, residual horizons, Cox only."""
    lm, f = config.landmark, config.features
    chosen = set(config.landmark_features)
    features = replace(f, binary=tuple(c for c in f.binary if c in chosen),
                       categorical=(*(c for c in f.categorical if c in chosen), lm.response),
                       numeric=tuple(c for c in f.numeric if c in chosen))
    horizons = tuple(h - lm.time for h in config.validation.horizons if h > lm.time)
    return replace(config, features=features, validation=replace(config.validation, horizons=horizons),
                   models=replace(config.models, fit=("cox",), cox_alpha=lm.alpha),
                   pattern=replace(config.pattern, features=(*config.landmark_features, lm.response)),
                   landmark=LandmarkConfig())


def landmark_data(config: TrainingConfig, data: TrainingData) -> TrainingData:
    """The patients progression-free at the landmark with a known response, on the time left after it.

    Raises
    ------
    ConfigError
        When fewer than :data:`MIN_LANDMARK_EVENTS` events follow the landmark.
    """
    lm = config.landmark
    at_risk = data.y["time"] > lm.time
    known = np.fromiter((r is not None for r in data.response), dtype=bool, count=data.n)
    keep = at_risk & known
    columns = [c for c in config.feature_columns if c in set(config.landmark_features)]
    X = data.X.loc[keep, columns].assign(**{lm.response: data.response[keep]}).reset_index(drop=True)
    y = data.y[keep].copy()
    y["time"] -= lm.time
    events = int(y["event"].sum())
    if events < MIN_LANDMARK_EVENTS:
        raise ConfigError(
            f"landmark.time = {lm.time:g}: {int(keep.sum())} patients are progression-free then with a known "
            f"{lm.response}, followed by {events} events; at least {MIN_LANDMARK_EVENTS} are needed (an earlier "
            "landmark keeps more)")
    provenance = {**data.provenance, "n": int(keep.sum()), "events": events,
                  "progression_free_at_landmark": int(at_risk.sum()),
                  "missing_response": int((at_risk & ~known).sum())}
    return TrainingData(X=X, y=y, cause=None if data.cause is None else data.cause[keep], provenance=provenance)


def fit_landmark(config: TrainingConfig, data: TrainingData, *, progress: Callable[[str, int], None] | None = None
                 ) -> tuple[LandmarkModel, dict[str, Any]]:
    """Fit and validate the post-response model (the whole procedure of the baseline Cox candidate).

    Returns
    -------
    model : LandmarkModel
    section : dict
        The model card's ``post_response`` section.
    """
    lm = config.landmark
    lconfig, ldata = landmark_config(config), landmark_data(config, data)
    stage = None if progress is None else (lambda name, advance: progress(f"post-response {name}", advance))
    candidate = fit_candidate("cox", lconfig, ldata, progress=stage)
    comparison = compare_candidates(["cox"], lconfig, ldata, progress=stage)
    estimator = candidate.pipeline.named_steps["model"]
    model = LandmarkModel(time=lm.time, response=lm.response, pipeline=candidate.pipeline,
                          time_grid=np.asarray(estimator.unique_times_, dtype=float))
    section: dict[str, Any] = {
        "landmark_time": lm.time,
        "time_unit": config.data.time_unit,
        "response": lm.response,
        "response_levels": model.levels,
        "features": [*config.landmark_features, lm.response],
        "method": f"{_METHOD}; {_estimation(estimator, lm.alpha)}",
        "caveat": _CAVEAT,
        "progression_free_at_landmark": ldata.provenance["progression_free_at_landmark"],
        "missing_response": ldata.provenance["missing_response"],
        "n": ldata.n,
        "events": ldata.events,
        "parameters": n_parameters(candidate.pipeline),
        "coefficients": coefficients_dict(coefficient_table(candidate), candidate.pipeline),
        "validation": {"cv": comparison.table("cox"), "null_cv": comparison.table(NULL),
                       "bootstrap": candidate.optimism.to_dict() if candidate.optimism else None,
                       "horizons_after_landmark": list(lconfig.validation.horizons)},
        "sample_size": sample_size_section(candidate, lconfig, ldata, cox=candidate),
    }
    if ldata.cause is not None:
        model.pattern_split = config.pattern.incidence == "split"
        model.pattern, section["pattern_validation"] = fit_pattern(
            lconfig, ldata, progress=stage, survival_kind="cox" if model.pattern_split else None)
        section["pattern_model"] = pattern_section(candidate.pipeline, model.pattern, ldata.X,
                                                   lconfig.validation.horizons, lconfig.pattern_features,
                                                   split=model.pattern_split)
    return model, section
