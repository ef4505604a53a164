"""Feature encoding plus a survival estimator in one scikit-learn pipeline, and the factory that builds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import available_if

from .estimators import CoxPH, PenalizedCox, SurvivalForest
from .estimators.firth import FirthCoxPH
from .features import FeatureEncoder
from .pattern import CauseSpecificCox

__all__ = ["SurvivalPipeline", "make_pipeline", "n_parameters", "pipeline_to_dict", "pipeline_from_dict", "KINDS"]

KINDS = ("cox", "coxnet", "rsf")


def _final_has(name: str):
    return lambda self: hasattr(self._final_estimator, name)


class SurvivalPipeline(Pipeline):
    """A :class:`sklearn.pipeline.Pipeline` that also routes the survival prediction methods.

    ``predict_survival``, ``predict_cumulative_hazard`` and ``predict_survival_interval`` run
    ``X`` through every transform and call the final estimator's method of the same name
    (when it has one). scikit-survival gives every Pipeline ``predict_survival_function`` and
    ``predict_cumulative_hazard_function`` the same way, so its scorers take a pipeline too.
    """

    def _encoded(self, X: Any) -> Any:
        for _, _, transform in self._iter(with_final=False):
            X = transform.transform(X)
        return X

    @available_if(_final_has("predict_survival"))
    def predict_survival(self, X: Any, times: Any) -> np.ndarray:
        """Survival probabilities at ``times``, shape (n_samples, n_times)."""
        return self._final_estimator.predict_survival(self._encoded(X), times)

    @available_if(_final_has("predict_cumulative_hazard"))
    def predict_cumulative_hazard(self, X: Any, times: Any) -> np.ndarray:
        """Cumulative hazard at ``times``, shape (n_samples, n_times)."""
        return self._final_estimator.predict_cumulative_hazard(self._encoded(X), times)

    @available_if(_final_has("predict_survival_interval"))
    def predict_survival_interval(self, X: Any, times: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``(lower, upper)`` band for the survival probabilities at ``times``."""
        return self._final_estimator.predict_survival_interval(self._encoded(X), times, level=level)


def make_pipeline(
    kind: str,
    *,
    binary: Sequence[str] = (),
    categorical: Sequence[str] = (),
    numeric: Sequence[str] = (),
    random_state: int | None = 0,
    n_jobs: int | None = None,
    impute: str | None = None,
    **params: Any,
) -> SurvivalPipeline:
    """Build the ``encode`` → ``model`` pipeline for one model kind.

    ``"cox"`` is the ordinary Cox model (:class:`~cnslrisk.model.estimators.firth.FirthCoxPH`: Firth's
    penalty only where the partial likelihood is monotone; a :class:`CoxPH` ridge with ``alpha > 0``).
    ``"cox"`` gets unscaled features (coefficients per unit of each covariate), ``"coxnet"``
    standardised ones (the penalty needs a common scale), ``"rsf"`` unscaled ones (trees do
    not care). The encoder outputs a DataFrame, so the estimator records the encoded names.

    Parameters
    ----------
    kind : {"cox", "coxnet", "rsf"}
        Model kind.
    binary, categorical, numeric : sequence of str
        Covariates by kind (columns of the checked cohort).
    random_state : int or None, default=0
        Seed passed to the estimators that use one.
    n_jobs : int or None, default=None
        Parallelism passed to the estimators that use it.
    impute : {"median"} or None, default=None
        Declared imputation (see :class:`FeatureEncoder`); None refuses missing values.
    **params
        Hyperparameters of the estimator (e.g. ``l1_ratio=0.9`` for coxnet).

    Returns
    -------
    SurvivalPipeline
        Steps ``encode`` (:class:`FeatureEncoder`) and ``model``.
    """
    if kind == "cox":  # the ordinary Cox model, Firth's penalty only where its likelihood is monotone; alpha: ridge
        model: Any = CoxPH(**params) if params.get("alpha") else FirthCoxPH(**{k: v for k, v in params.items()
                                                                              if k != "alpha"})
    elif kind == "coxnet":
        model = PenalizedCox(random_state=random_state, n_jobs=n_jobs, **params)
    elif kind == "rsf":
        model = SurvivalForest(random_state=random_state, n_jobs=n_jobs, **params)
    else:
        raise ValueError(f"make_pipeline: kind {kind!r} is not one of {{{', '.join(KINDS)}}}")
    encoder = FeatureEncoder(
        tuple(binary), tuple(categorical), tuple(numeric), scale=kind == "coxnet", impute=impute
    ).set_output(transform="pandas")
    return SurvivalPipeline([("encode", encoder), ("model", model)])


def pipeline_to_dict(pipeline: Pipeline) -> dict[str, Any]:
    """A fitted ``encode`` → ``model`` pipeline of a Cox-type model as plain JSON-safe parameters.

    Parameters
    ----------
    pipeline : Pipeline
        Steps ``encode`` (:class:`FeatureEncoder`) and ``model`` (:class:`CoxPH`,
        :class:`PenalizedCox` or :class:`~cnslrisk.model.pattern.CauseSpecificCox`).

    Returns
    -------
    dict
        ``encoder``, ``estimator`` (their ``to_dict``) and ``estimator_class``.
    """
    estimator = pipeline.named_steps["model"]
    return {
        "encoder": pipeline.named_steps["encode"].to_dict(),
        "estimator": estimator.to_dict(),
        "estimator_class": type(estimator).__name__,
    }


def pipeline_from_dict(params: Mapping[str, Any], *, plain: bool = False) -> Pipeline:
    """Rebuild the pipeline that :func:`pipeline_to_dict` wrote (no pickle involved).

    Parameters
    ----------
    params : dict
        Output of :func:`pipeline_to_dict`.
    plain : bool, default=False
        Return a plain :class:`sklearn.pipeline.Pipeline` instead of a :class:`SurvivalPipeline`.

    Returns
    -------
    Pipeline
    """
    classes = {"CoxPH": CoxPH, "FirthCoxPH": FirthCoxPH, "PenalizedCox": PenalizedCox,
               "CauseSpecificCox": CauseSpecificCox}
    estimator = classes[params["estimator_class"]].from_dict(params["estimator"])
    # as make_pipeline does: the encoder hands named columns to the estimator
    encoder = FeatureEncoder.from_dict(params["encoder"]).set_output(transform="pandas")
    return (Pipeline if plain else SurvivalPipeline)([("encode", encoder), ("model", estimator)])


def n_parameters(model: Any, X: pd.DataFrame | None = None) -> int:
    """Number of candidate parameters (encoded columns), the denominator of events per parameter.

    Parameters
    ----------
    model : SurvivalPipeline, FeatureEncoder or mapping
        A pipeline or encoder (fitted, or unfitted together with ``X``), or a feature spec
        ``{"binary": [...], "categorical": [...], "numeric": [...]}`` counted on ``X``.
    X : pandas.DataFrame, optional
        Cohort on which the category levels are learned when ``model`` is not fitted.

    Returns
    -------
    int
        Binary and numeric columns plus, per categorical column, its number of levels minus one.
    """
    if isinstance(model, Mapping):
        encoder = FeatureEncoder(
            tuple(model.get("binary", ())), tuple(model.get("categorical", ())), tuple(model.get("numeric", ()))
        )
    else:
        encoder = model.steps[0][1] if isinstance(model, Pipeline) else model
    if hasattr(encoder, "levels_"):
        return int(encoder.n_features_out_)
    if X is None:
        raise ValueError("n_parameters: the encoder is not fitted; pass the cohort X to count category levels")
    probe = FeatureEncoder(
        encoder.binary, encoder.categorical, encoder.numeric, categories=encoder.categories, impute="median"
    )
    return int(probe.fit(X).n_features_out_)
