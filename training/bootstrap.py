"""Harrell's bootstrap optimism correction of Harrell's C and the calibration slope (as R rms ``validate``).

Every resample refits the model from its factory, so any tuning it contains is redone inside the
resample; seeds come from one :class:`numpy.random.SeedSequence` per call, so results are identical
for any ``n_jobs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from .crossval import Factory, Progress, failure_reason, run_chunked, spawn_seeds
from .metrics import calibration_slope, harrell_c

__all__ = ["OptimismResult", "bootstrap_optimism", "resample"]


def _final_step(est: Any) -> Any:
    while True:
        if hasattr(est, "steps"):
            est = est.steps[-1][1]
        elif hasattr(est, "best_estimator_"):
            est = est.best_estimator_
        else:
            return est


def _log_cumulative_hazard(est: Any, X: pd.DataFrame, t_ref: float) -> np.ndarray:
    s = np.asarray(est.predict_survival(X, [t_ref]), dtype=float)[:, 0]
    if ((s <= 0) | (s >= 1)).any():
        raise ValueError(f"predicted survival of 0 or 1 at the reference time {t_ref:g}")
    return np.log(-np.log(s))


_BOOT_METRICS = ("c_index", "calibration_slope")


def _scores(est: Any, X: pd.DataFrame, y: np.ndarray, linear: bool, t_ref: float) -> dict[str, Any]:
    """Harrell's C and the calibration slope of a fitted model on (X, y); a failure becomes its reason."""
    try:
        risk = np.asarray(est.predict(X), dtype=float)
    except Exception as exc:  # noqa: BLE001 - recorded as a failed resample
        return dict.fromkeys(_BOOT_METRICS, failure_reason(exc))
    out: dict[str, Any] = {}
    for name, fn in (
        ("c_index", lambda: harrell_c(y, risk)),
        ("calibration_slope", lambda: calibration_slope(y, risk if linear else _log_cumulative_hazard(est, X, t_ref))),
    ):
        try:
            out[name] = fn()
        except Exception as exc:  # noqa: BLE001 - recorded as a failed resample
            out[name] = failure_reason(exc)
    return out


def resample(X: pd.DataFrame, y: np.ndarray, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """One bootstrap resample: n rows drawn with replacement by ``default_rng(seed)``."""
    rows = np.random.default_rng(seed).integers(0, len(y), len(y))
    return X.iloc[rows], y[rows]


def _boot_chunk(
    factory: Factory, opts: tuple[str, float], X: pd.DataFrame, y: np.ndarray, tasks: list[Any]
) -> list[Any]:
    out = []
    for _, state in tasks:
        Xb, yb = resample(X, y, state)
        try:
            est = factory().fit(Xb, yb)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed resample
            out.append(failure_reason(exc))
            continue
        linear = _is_linear(est, opts[0])
        out.append((_scores(est, Xb, yb, linear, opts[1]), _scores(est, X, y, linear, opts[1])))
    return out


def _is_linear(est: Any, slope_on: str) -> bool:
    if slope_on == "auto":
        return hasattr(_final_step(est), "coef_")
    return slope_on == "linear_predictor"


@dataclass(frozen=True)
class OptimismResult:
    """Bootstrap optimism correction (Harrell) of Harrell's C and the calibration slope.

    Attributes
    ----------
    resamples : int
        Number of bootstrap resamples drawn.
    apparent, optimism, corrected : dict
        Metric -> value: on the data the model was fitted to; mean(resample score - original
        score) over the resamples where both are defined; apparent - optimism.
    used : dict
        Metric -> number of resamples that entered the optimism.
    per_resample : DataFrame
        One row per (resample, metric): ``boot`` and ``original`` scores (``nan`` when failed).
    failures : DataFrame
        One row per failed resample and metric: resample, metric, stage (fit/boot/original), reason.
    slope_on : str
        ``"linear_predictor"`` or ``"log_cumulative_hazard"`` (at ``reference_time``).
    reference_time : float
        Time of the log cumulative hazard log(-log S(t|x)) used for models without coefficients.
    """

    resamples: int
    apparent: dict[str, float]
    optimism: dict[str, float]
    corrected: dict[str, float]
    used: dict[str, int]
    per_resample: pd.DataFrame
    failures: pd.DataFrame
    slope_on: str
    reference_time: float

    @property
    def n_failed(self) -> int:
        """Number of resamples with at least one failure."""
        return int(self.failures["resample"].nunique())

    def to_dict(self) -> dict[str, Any]:
        """The model card's ``validation.bootstrap`` section, plus failure counts."""
        return {
            "resamples": self.resamples,
            "apparent": dict(self.apparent),
            "optimism": dict(self.optimism),
            "corrected": dict(self.corrected),
            "used": dict(self.used),
            "failed": self.n_failed,
            "slope_on": self.slope_on,
            "reference_time": self.reference_time,
        }


def bootstrap_optimism(
    factory: Factory,
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    resamples: int = 200,
    seed: int = 0,
    slope_on: str = "auto",
    reference_time: float | None = None,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> OptimismResult:
    """Optimism-corrected Harrell's C and calibration slope by the bootstrap (as R rms ``validate``).

    The model is fitted to all data to give the apparent scores. For each of ``resamples``
    bootstrap samples (n rows drawn with replacement) the model is refitted from ``factory``
    (repeating any tuning) and scored on the bootstrap sample and on the original data;
    optimism = mean(bootstrap score - original score) and corrected = apparent - optimism.

    The calibration slope is the coefficient of a Cox model (Efron ties) with one covariate, the
    model's score: its linear predictor when the final estimator has ``coef_`` (``slope_on="auto"``)
    or ``"linear_predictor"``; otherwise (``"log_cumulative_hazard"``) log(-log S(t_ref|x)), which for
    a Cox model equals the linear predictor plus the constant log H0(t_ref) and so gives the same
    slope. The apparent slope of an unpenalised Cox model is 1 by construction.

    Parameters
    ----------
    factory : callable
        Returns a new, unfitted estimator (``fit``, ``predict``, ``predict_survival``).
    X : DataFrame, shape = (n_samples, n_features)
        Covariates.
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    resamples : int, default: 200
        Number of bootstrap resamples.
    seed : int, default: 0
        Seed of the :class:`numpy.random.SeedSequence` spawning one seed per resample.
    slope_on : {"auto", "linear_predictor", "log_cumulative_hazard"}, default: "auto"
        Score regressed on for the calibration slope.
    reference_time : float, optional
        t_ref for ``"log_cumulative_hazard"``; default the median observed event time.
    n_jobs : int, default: 1
        Parallel jobs (joblib); results do not depend on it.
    progress : callable, optional
        Called with the number of resamples finished since the last call.

    Returns
    -------
    result : OptimismResult
        Apparent, optimism and corrected values, per-resample scores and failures.

    References
    ----------
    .. [1] Harrell FE, Lee KL, Mark DB. Multivariable prognostic models. Stat Med 1996;15:361-387.
    .. [2] Harrell FE. rms: Regression Modeling Strategies, R package, function ``validate.cph``.
    .. [3] Efron B, Tibshirani R. An Introduction to the Bootstrap. Chapman & Hall 1993, section 17.6.
    """
    if not isinstance(resamples, int | np.integer) or resamples < 1:
        raise ValueError(f"parameter resamples of bootstrap_optimism must be an int >= 1; got {resamples!r}")
    if slope_on not in ("auto", "linear_predictor", "log_cumulative_hazard"):
        raise ValueError(
            "parameter slope_on of bootstrap_optimism must be one of "
            f"{{auto, linear_predictor, log_cumulative_hazard}}; got {slope_on!r}"
        )
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    if not event.any():
        raise ValueError("y: all samples are censored; bootstrap optimism needs events")
    t_ref = float(np.median(time[event])) if reference_time is None else float(reference_time)

    full = factory().fit(X, y)
    linear = _is_linear(full, slope_on)
    scores = _scores(full, X, y, linear, t_ref)
    # an undefined apparent figure (e.g. the slope of a model penalised to a constant score) is
    # reported as NaN with its reason (resample -1 = the full-data fit), never raised or filled
    apparent = {name: np.nan if isinstance(v, str) else v for name, v in scores.items()}
    undefined = [(-1, name, "apparent", v) for name, v in scores.items() if isinstance(v, str)]
    tasks = list(enumerate(spawn_seeds(seed, resamples)))
    results = run_chunked(partial(_boot_chunk, factory, (slope_on, t_ref)), tasks, n_jobs, progress, shared=(X, y))
    return _optimism(
        results, apparent, resamples, "linear_predictor" if linear else "log_cumulative_hazard", t_ref, undefined
    )


def _optimism(
    results: list[Any], apparent: dict[str, float], resamples: int, slope_on: str, t_ref: float,
    failures: list[tuple[int, str, str, str]],
) -> OptimismResult:
    rows = []
    for b, res in enumerate(results):
        if isinstance(res, str):
            failures.extend((b, m, "fit", res) for m in _BOOT_METRICS)
            rows.extend((b, m, np.nan, np.nan) for m in _BOOT_METRICS)
            continue
        for m in _BOOT_METRICS:
            pair = [res[0][m], res[1][m]]
            for stage, v in zip(("boot", "original"), pair, strict=True):
                if isinstance(v, str):
                    failures.append((b, m, stage, v))
            rows.append((b, m, *(np.nan if isinstance(v, str) else v for v in pair)))
    per = pd.DataFrame(rows, columns=["resample", "metric", "boot", "original"])
    diff = (per["boot"] - per["original"]).groupby(per["metric"], sort=False)
    optimism = {m: float(diff.get_group(m).mean()) for m in _BOOT_METRICS}
    return OptimismResult(
        resamples=resamples,
        apparent=dict(apparent),
        optimism=optimism,
        corrected={m: apparent[m] - optimism[m] for m in _BOOT_METRICS},
        used={m: int(diff.get_group(m).count()) for m in _BOOT_METRICS},
        per_resample=per,
        failures=pd.DataFrame(failures, columns=["resample", "metric", "stage", "reason"]),
        slope_on=slope_on,
        reference_time=t_ref,
    )
