"""Recalibrate a Cox-type model to a new cohort and register the result as a new version with its lineage.

Two standard updates (Steyerberg 2019, ch. 20; van Houwelingen 2000) keep the model's covariate
effects up to one factor and re-estimate what a new population changes first:

- ``intercept`` (recalibration in the large): the Breslow baseline cumulative hazard is
  re-estimated on the new cohort with the linear predictor lp as an offset, coefficients unchanged;
- ``slope``: the calibration slope g is estimated by a Cox model of the new outcome on lp,
  coefficients become g * b and the baseline is re-estimated with g * lp as offset.

``auto`` chooses ``slope`` when the likelihood-ratio test of g = 1 rejects at level ``alpha``
(LR = 2 (l(g_hat) - l(1)) on one degree of freedom), else ``intercept``.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import chi2

from cnslrisk.model.outputs import json_safe
from cnslrisk.model.predictor import RiskModel

from .config import TrainingConfig, load_config
from .data import TrainingData
from .fit import training_km
from .metrics import calibration_slope, likelihood_ratio
from .rescale import rescale_cox

__all__ = ["RecalibrationResult", "slope_test", "recalibrate_model", "recalibrate", "METHODS"]

METHODS = ("intercept", "slope", "auto")


@dataclass(frozen=True)
class RecalibrationResult:
    """A recalibrated model, the test behind the choice and the before/after figures.

    Attributes
    ----------
    model : RiskModel
        The updated model (a new object; the parent is unchanged).
    method : str
        ``intercept`` or ``slope`` (what was applied).
    test : dict
        ``slope``, ``lr``, ``p`` of the test of slope = 1, and ``chosen_by`` (``user`` or the rule).
    before, after : dict
        :func:`~cnslrisk.training.evaluate.point_figures` summaries on the cohort.
    tables : dict
        ``before`` and ``after`` calibration tables.
    """

    model: RiskModel
    method: str
    test: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    tables: dict[str, Any]


def slope_test(y: np.ndarray, linear_predictor: np.ndarray) -> dict[str, float]:
    """Calibration slope g of ``linear_predictor`` and the likelihood-ratio test of g = 1.

    ``LR = 2 (l(g_hat) - l(1))`` where l is the log partial likelihood (Efron ties) of the model with
    the single covariate lp; computed as ``likelihood_ratio(y, g_hat lp) - likelihood_ratio(y, lp)``
    (both are differences from l(0)). Under g = 1 it is chi-square with one degree of freedom.

    Parameters
    ----------
    y : structured array, shape (n_samples,)
    linear_predictor : ndarray, shape (n_samples,)

    Returns
    -------
    dict
        ``slope``, ``lr`` and ``p``.

    References
    ----------
    .. [1] Vergouwe Y, Nieboer D, Oostenbrink R, et al. A closed testing procedure to select an
           appropriate method for updating prediction models. Stat Med 2017;36:4529-4539.
    """
    lp = np.asarray(linear_predictor, dtype=float)
    g = calibration_slope(y, lp)
    lr = max(likelihood_ratio(y, g * lp) - likelihood_ratio(y, lp), 0.0)
    return {"slope": float(g), "lr": float(lr), "p": float(chi2.sf(lr, 1))}


def recalibrate_model(model: RiskModel, data: TrainingData, *, method: str = "auto", alpha: float = 0.05
                      ) -> RecalibrationResult:
    """Update the baseline (and optionally the slope) of a Cox-type model on a cohort.

    Parameters
    ----------
    model : RiskModel
        Kind ``cox`` or ``coxnet``.
    data : TrainingData
        The new cohort.
    method : {"intercept", "slope", "auto"}, default: "auto"
    alpha : float, default: 0.05
        Level of the test of slope = 1 used by ``auto``.

    Returns
    -------
    RecalibrationResult

    Raises
    ------
    ValueError
        For a model without a linear predictor, an unknown method or a non-positive slope.

    References
    ----------
    .. [1] Steyerberg EW. Clinical Prediction Models, 2nd ed. Springer 2019, chapter 20.
    .. [2] van Houwelingen HC. Validation, calibration, revision and combination of prognostic survival
           models. Stat Med 2000;19:3401-3415.
    """
    from .evaluate import point_figures

    if model.kind not in ("cox", "coxnet"):
        raise ValueError(f"recalibrate: model type {model.kind} has no linear predictor; only cox and coxnet models "
                         "can be recalibrated (train a new model instead)")
    if method not in METHODS:
        raise ValueError(f"parameter method of recalibrate must be one of {{{', '.join(METHODS)}}}; got {method!r}")
    estimator = model.pipeline[-1]
    Z = np.asarray(model.pipeline[:-1].transform(data.X[model.feature_columns]), dtype=float) - estimator.x_mean_
    lp = Z @ estimator.coef_
    test = slope_test(data.y, lp)
    chosen_by = "user"
    if method == "auto":
        method = "slope" if test["p"] < alpha else "intercept"
        chosen_by = f"likelihood-ratio test of slope = 1 at level {alpha:g} (p = {test['p']:.3g})"
    g = test["slope"] if method == "slope" else 1.0
    if g <= 0:
        raise ValueError(f"recalibrate: the calibration slope on this cohort is {g:.3f} (not positive); the model "
                         "does not discriminate here, so it cannot be rescaled (train a new model instead)")
    pipeline = rescale_cox(model.pipeline, data.X[model.feature_columns], data.y, g)
    metadata = {k: copy.deepcopy(v) for k, v in model.metadata.items() if k != "model"}
    updated = RiskModel(kind=model.kind, pipeline=pipeline, features=copy.deepcopy(model.features),
                        horizons=model.horizons, time_unit=model.time_unit,
                        time_grid=np.asarray(pipeline[-1].unique_times_, dtype=float),
                        risk_cutpoints=(g * model.risk_cutpoints[0], g * model.risk_cutpoints[1]),
                        training_km=training_km(data.y), metadata=metadata, pattern=model.pattern)
    before, after = point_figures(model, data.X, data.y), point_figures(updated, data.X, data.y)
    return RecalibrationResult(updated, method, {**test, "chosen_by": chosen_by, "alpha": alpha},
                               before["summary"], after["summary"],
                               {"before": before["calibration"], "after": after["calibration"]})


def recalibrate(
    model_uri: str,
    cohort: str | os.PathLike[str],
    *,
    config: TrainingConfig | str | os.PathLike[str] | None = None,
    method: str = "auto",
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Recalibrate a registered Cox-type model on a cohort and register it as a new version.

    The new version carries lineage tags (``recalibration.parent_version``, ``.method``,
    ``.chosen_by``, ``.cohort_sha256``, ``.slope``, ``.lr_p``), a ``recalibration`` section in its
    card, and its run holds the before/after calibration figures and summaries. No alias is moved:
    promote it with ``cnslrisk promote --version V --cohort HELD_OUT``.

    Returns
    -------
    dict
        ``name``, ``version``, ``parent_version``, ``method``, ``test``, ``run_id``, ``before``, ``after``.
    """
    import cnslrisk.registry as registry

    from .card import card_files
    from .evaluate import load_cohort
    from .plots import plot_calibration
    from .train import synthetic_example

    config = config if isinstance(config, TrainingConfig) else load_config(config)
    registry.use_tracking(config.mlflow.tracking_uri, config.mlflow.experiment)
    parent, info = registry.load_risk_model(model_uri)
    data = load_cohort(parent, cohort, config)
    result = recalibrate_model(parent, data, method=method, alpha=alpha)
    sha = data.provenance["sha256"]
    name = info.get("name") or config.mlflow.registered_model
    lineage = {"recalibration.parent_version": str(info.get("version") or model_uri),
               "recalibration.method": result.method, "recalibration.chosen_by": result.test["chosen_by"],
               "recalibration.cohort_sha256": sha, "recalibration.slope": f"{result.test['slope']:.6g}",
               "recalibration.lr_p": f"{result.test['p']:.6g}"}
    card = result.model.metadata.get("card", {})
    card.setdefault("model", {})["version"] = None  # the registry gives the new version on load
    card["recalibration"] = {"parent": {"name": name, "version": info.get("version")}, "method": result.method,
                             "test": result.test, "cohort": {k: data.provenance.get(k) for k in
                                                             ("source", "sha256", "n", "events")}}
    card.setdefault("limitations", []).append(
        f"Recalibrated ({result.method}) on cohort {sha[:12]}: validation figures above are the parent version's.")
    run_tags = {**lineage, "cnslrisk.cohort.sha256": sha, "cnslrisk.cohort.source": data.provenance["source"]}
    with registry.start_run(f"recalibrate {name} v{info.get('version')}", tags=run_tags) as run:
        run.log_json("recalibration.json", json_safe({"test": result.test, "before": result.before,
                                                     "after": result.after}))
        run.log_figures({f"calibration_{when}.png": plot_calibration(table, time_unit=parent.time_unit)
                         for when, table in result.tables.items()})
        ref = registry.log_risk_model(result.model, registered_name=name, input_example=synthetic_example(result.model),
                                      extra_files=card_files(card))
    registry.set_version_tags(ref.name, ref.version, {
        **lineage, "training_data.sha256": card.get("training_data", {}).get("sha256", ""),
        "model.type": result.model.kind})
    return json_safe({"name": ref.name, "version": ref.version, "parent_version": info.get("version"),
                   "method": result.method, "test": result.test, "run_id": run.run_id,
                   "before": result.before, "after": result.after})
