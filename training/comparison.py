"""One comparison on the same splits: every candidate, the null model and the published model, out of fold.

Every kind is refitted on the training part of the SAME repeated stratified K-fold splits and
predicts survival for the held-out part. Two sets of figures come out of these predictions:

- the **point figure** of a metric of absolute risk (Brier score at each horizon, integrated Brier
  score, calibration slope, calibration-in-the-large) is computed on the pooled out-of-fold
  predictions of one repeat (every patient predicted once, by a model that never saw them) and
  averaged over the repeats; a rank metric (Harrell's and Uno's C, time-dependent AUC) is the mean
  over the K x R folds of its value in each fold, because a ranking pooled over folds would mix the
  scales of K different models (the null model would not even get C = 0.5);
- its **interval** is the corrected repeated-CV t interval of Bouckaert and Frank (2004), from the
  K x R per-fold values of the same metric: the sample variance of the fold values times
  (1/(K R) + n_test/n_train), with K R - 1 degrees of freedom. A naive interval (variance / (K R))
  or a patient bootstrap of the pooled predictions ignores that the training sets overlap and is
  too narrow.

Paired differences between two kinds use the same folds for both, so the between-fold variation
they share cancels. The metrics are those of :func:`~cnslrisk.training.metrics.score_predictions`
with the risk score taken as the predicted cumulative hazard at the reference time t_ref (the
largest horizon), which means the same for every model type, plus ``calibration_slope``
(:func:`~cnslrisk.training.calibration.calibration_slope_at`, the score centred within each fold)
and ``calibration_in_the_large_<h>`` (mean predicted risk minus Kaplan-Meier risk at h).

References
----------
.. [1] Bouckaert RR, Frank E. Evaluating the replicability of significance tests for comparing learning
       algorithms. PAKDD 2004, LNCS 3056:3-12.
.. [2] Nadeau C, Bengio Y. Inference for the generalization error. Machine Learning 2003;52:239-281.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator

from cnslrisk.model.estimators._breslow import step_lookup

from .calibration import calibration_in_the_large, calibration_slope_at
from .crossval import Factory, Progress, failure_reason, fold_splits, run_chunked, survival_grid
from .ipcw import kaplan_meier
from .metrics import horizon_label, score_predictions

__all__ = ["KaplanMeierNull", "Comparison", "compare", "corrected_interval", "held_out_figures", "metric_names",
           "reference_kinds", "reference_factories", "REFERENCE_KINDS"]

NULL, PUBLISHED = "null", "published"
REFERENCE_KINDS = (NULL, PUBLISHED)
PUBLISHED_COVARIATES = ("pce", "lmd")


class KaplanMeierNull(BaseEstimator):
    """The null model: everyone gets the training cohort's Kaplan-Meier curve (risk score 0 for all).

    Attributes
    ----------
    unique_times_ : ndarray
        Distinct training times of the Kaplan-Meier estimate.
    survival_ : ndarray
        The Kaplan-Meier estimate at ``unique_times_``.
    """

    def fit(self, X: Any, y: np.ndarray) -> KaplanMeierNull:
        self.unique_times_, self.survival_ = kaplan_meier(y[y.dtype.names[0]], y[y.dtype.names[1]])
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.zeros(len(X))

    def predict_survival(self, X: Any, times: Sequence[float]) -> np.ndarray:
        curve = step_lookup(self.unique_times_, self.survival_, np.asarray(times, dtype=float), before=1.0)
        return np.broadcast_to(curve, (len(X), curve.size)).copy()


def metric_names(horizons: Sequence[float]) -> list[str]:
    """The metrics of a comparison, in card order."""
    labels = [horizon_label(h) for h in horizons]
    return ["c_index", "uno_c", "ibs", *(f"brier_{h}" for h in labels), *(f"auc_{h}" for h in labels),
            "calibration_slope", *(f"calibration_in_the_large_{h}" for h in labels)]


def corrected_interval(values: np.ndarray, point: float, *, n_train: float, n_test: float, level: float = 0.95,
                       sided: str = "two") -> tuple[float, float]:
    """Corrected repeated-CV t interval around ``point`` from per-fold ``values`` (Bouckaert & Frank 2004).

    Parameters
    ----------
    values : ndarray
        The metric (or a paired difference) in each fold; undefined folds (nan) are left out.
    point : float
        The centre (the pooled out-of-fold figure).
    n_train, n_test : float
        Mean training and test set sizes of the folds.
    level : float, default=0.95
    sided : {"two", "lower"}, default="two"
        ``"lower"`` gives a one-sided bound (upper end infinite).

    Returns
    -------
    lower, upper : float
        nan when fewer than two folds are defined.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2 or not np.isfinite(point):
        return float("nan"), float("nan")
    se = np.sqrt(v.var(ddof=1) * (1.0 / v.size + n_test / n_train))
    quantile = level if sided == "lower" else 1 - (1 - level) / 2
    half = float(stats.t.ppf(quantile, v.size - 1) * se)
    return (point - half, float("inf")) if sided == "lower" else (point - half, point + half)


def pooled_metric(metric: str) -> bool:
    """Whether the point figure of ``metric`` comes from pooled predictions (else the mean over folds)."""
    return not metric.startswith(("c_index", "uno_c", "auc_"))


def held_out_figures(y_train: np.ndarray, y_test: np.ndarray, survival: np.ndarray, times: np.ndarray,
                     horizons: Sequence[float], t_ref: float, groups: np.ndarray | None = None) -> dict[str, float]:
    """Every metric of one set of held-out predictions (nan where undefined)."""
    column = {float(t): j for j, t in enumerate(times)}
    at_ref = survival[:, column[t_ref]]
    risk = -np.log(np.clip(at_ref, 1e-300, None))  # predicted cumulative hazard at t_ref
    out = dict(score_predictions(y_train, y_test, risk, survival, times, horizons)["metrics"])
    try:
        out["calibration_slope"] = calibration_slope_at(y_test, at_ref, t_ref, groups=groups)
    except ValueError:
        out["calibration_slope"] = float("nan")
    for h in horizons:
        out[f"calibration_in_the_large_{horizon_label(h)}"] = calibration_in_the_large(
            y_test, survival[:, column[float(h)]], h)
    return out


def _fold_chunk(factories: Mapping[str, Factory], horizons: Sequence[float], X: pd.DataFrame, y: np.ndarray,
                splits: Sequence[tuple[int, int, np.ndarray, np.ndarray]], tasks: list[Any]) -> list[Any]:
    """Refit, predict the held-out rows and score them; a worker returns predictions and figures, never models."""
    times, t_ref = survival_grid(horizons), float(max(horizons))
    out = []
    for kind, split in tasks:
        _, _, train, test = splits[split]
        try:
            model = factories[kind]().fit(X.iloc[train], y[train])
            predicted = np.asarray(model.predict_survival(X.iloc[test], times), dtype=float)
        except Exception as exc:  # noqa: BLE001 - a failed refit is recorded, not raised
            out.append(failure_reason(exc))
            continue
        out.append((predicted, held_out_figures(y[train], y[test], predicted, times, horizons, t_ref)))
    return out


def _pooled_chunk(horizons: Sequence[float], y: np.ndarray, tasks: list[Any]) -> list[dict[str, float]]:
    times, t_ref = survival_grid(horizons), float(max(horizons))
    return [held_out_figures(y, y, predicted, times, horizons, t_ref, groups=folds) for predicted, folds in tasks]


@dataclass(frozen=True)
class Comparison:
    """Every kind's figures from the same out-of-fold predictions, and the paired differences.

    Attributes
    ----------
    kinds : tuple of str
        The kinds compared, in the order given.
    per_fold : DataFrame
        One row per (kind, repeat, fold, metric): ``value`` (nan when undefined).
    pooled : DataFrame
        One row per (kind, repeat, metric): the figure of that repeat's pooled out-of-fold predictions.
    failures : DataFrame
        One row per failed refit: kind, repeat, fold, reason.
    folds, repeats, n : int
    reference_time : float
        t_ref of the risk score and the calibration slope.
    horizons : tuple of float
    first_repeat : dict of kind to ndarray, shape (n, len(times))
        Each kind's out-of-fold survival of the first repeat at ``times`` (nan rows where a refit failed),
        for calibration plots.
    times : ndarray
        The time grid of the predictions (:func:`~cnslrisk.training.crossval.survival_grid`).
    """

    kinds: tuple[str, ...]
    per_fold: pd.DataFrame
    pooled: pd.DataFrame
    failures: pd.DataFrame
    folds: int
    repeats: int
    n: int
    reference_time: float
    horizons: tuple[float, ...]
    first_repeat: dict[str, np.ndarray]
    times: np.ndarray

    def first_repeat_at(self, kind: str, horizons: Sequence[float]) -> np.ndarray:
        """Out-of-fold survival of the first repeat at ``horizons``, shape (n, len(horizons))."""
        return self.first_repeat[kind][:, np.searchsorted(self.times, np.asarray(horizons, dtype=float))]

    @property
    def metrics(self) -> list[str]:
        return metric_names(self.horizons)

    def _sizes(self) -> dict[str, float]:
        return {"n_test": self.n / self.folds, "n_train": self.n * (self.folds - 1) / self.folds}

    def _point(self, kind: str, metric: str) -> float:
        source = self.pooled.loc[(kind, metric), "value"] if pooled_metric(metric) else self._folds(kind, metric)
        values = np.atleast_1d(np.asarray(source, dtype=float))
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    def _folds(self, kind: str, metric: str) -> pd.Series:
        return self.per_fold.xs((kind, metric), level=("kind", "metric"))["value"]

    def figure(self, kind: str, metric: str) -> dict[str, float]:
        """``mean`` (pooled out-of-fold, averaged over repeats), ``ci_lower``, ``ci_upper`` (corrected t)."""
        point = self._point(kind, metric)
        lower, upper = corrected_interval(self._folds(kind, metric).to_numpy(), point, **self._sizes())
        return {"mean": point, "ci_lower": lower, "ci_upper": upper}

    def lower_bound(self, kind: str, metric: str, level: float = 0.95) -> float:
        """One-sided corrected lower confidence bound of ``metric`` for ``kind``."""
        return corrected_interval(self._folds(kind, metric).to_numpy(), self._point(kind, metric), level=level,
                                  sided="lower", **self._sizes())[0]

    def difference(self, kind: str, other: str, metric: str) -> dict[str, float]:
        """``kind`` minus ``other``: pooled difference and the corrected interval of the per-fold differences."""
        point = self._point(kind, metric) - self._point(other, metric)
        diff = (self._folds(kind, metric) - self._folds(other, metric)).to_numpy()
        lower, upper = corrected_interval(diff, point, **self._sizes())
        return {"mean": point, "ci_lower": lower, "ci_upper": upper}

    def table(self, kind: str) -> dict[str, dict[str, float]]:
        """``{metric: {mean, ci_lower, ci_upper}}`` of one kind (the card's ``candidates.<kind>.cv``)."""
        return {m: self.figure(kind, m) for m in self.metrics}

    def paired(self, kind: str, other: str) -> dict[str, dict[str, float]]:
        """``{metric: {mean, ci_lower, ci_upper}}`` of ``kind`` minus ``other``."""
        return {m: self.difference(kind, other, m) for m in self.metrics}

    def to_frame(self) -> pd.DataFrame:
        """One row per (kind, metric): mean, ci_lower, ci_upper (the run's ``comparison.csv``)."""
        return pd.DataFrame([{"kind": kind, "metric": metric, **figure} for kind in self.kinds
                             for metric, figure in self.table(kind).items()])


def compare(
    factories: Mapping[str, Factory],
    X: pd.DataFrame,
    y: np.ndarray,
    *,
    horizons: Sequence[float],
    folds: int = 5,
    repeats: int = 10,
    seed: int = 0,
    strata: np.ndarray | None = None,
    n_jobs: int = 1,
    progress: Progress | None = None,
) -> Comparison:
    """Refit every kind on the same repeated stratified K-fold splits and score its out-of-fold predictions.

    Parameters
    ----------
    factories : mapping of kind to callable
        Zero-argument factories of unfitted estimators with ``fit`` and ``predict_survival(X, times)``;
        include ``"null"`` (:class:`KaplanMeierNull`) to compare against knowing nothing.
    X, y
        Covariates and outcome (bool event, float time).
    horizons : sequence of float
        Prediction horizons; the largest is the reference time of the risk score and calibration slope.
    folds, repeats, seed
        The splits (:func:`~cnslrisk.training.crossval.fold_splits`), identical for every kind.
    strata : array-like, optional
        Labels to stratify on (default the event indicator).
    n_jobs : int, default=1
        Parallel jobs; results do not depend on it.
    progress : callable, optional
        Called with the number of refits finished since the last call.

    Returns
    -------
    Comparison
    """
    for name, value, low in (("folds", folds, 2), ("repeats", repeats, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"parameter {name} of compare must be an int >= {low}; got {value!r}")
    times = survival_grid(horizons)
    t_ref = float(max(horizons))
    strata = np.asarray(y[y.dtype.names[0]] if strata is None else strata)
    splits = fold_splits(strata, folds, repeats, seed)
    tasks = [(kind, s) for kind in factories for s in range(len(splits))]  # keys into the splits each worker holds
    results = run_chunked(partial(_fold_chunk, dict(factories), tuple(horizons)), tasks, n_jobs, progress,
                          shared=(X, y, splits))

    names = metric_names(horizons)
    fold_rows, failures = [], []
    oof = {(kind, r): np.full((len(y), times.size), np.nan) for kind in factories for r in range(repeats)}
    fold_of = {r: np.empty(len(y), dtype=int) for r in range(repeats)}
    for (kind, s), result in zip(tasks, results, strict=True):
        r, k, _, test = splits[s]
        fold_of[r][test] = k
        if isinstance(result, str):
            failures.append((kind, r, k, result))
            fold_rows.extend((kind, r, k, m, np.nan) for m in names)
            continue
        oof[kind, r][test] = result[0]
        fold_rows.extend((kind, r, k, m, result[1][m]) for m in names)
    complete = [key for key, predicted in oof.items() if not np.isnan(predicted).any()]
    pooled_scores = dict(zip(complete, run_chunked(
        partial(_pooled_chunk, tuple(horizons)), [(oof[key], fold_of[key[1]]) for key in complete], n_jobs, None,
        shared=(y,)), strict=True))
    pooled_rows = [(kind, r, m, pooled_scores.get((kind, r), {}).get(m, np.nan)) for kind, r in oof for m in names]
    per_fold = pd.DataFrame(fold_rows, columns=["kind", "repeat", "fold", "metric", "value"]).set_index(
        ["kind", "metric", "repeat", "fold"]).sort_index()
    pooled = pd.DataFrame(pooled_rows, columns=["kind", "repeat", "metric", "value"]).set_index(
        ["kind", "metric"]).sort_index()
    return Comparison(kinds=tuple(factories), per_fold=per_fold, pooled=pooled,
                      failures=pd.DataFrame(failures, columns=["kind", "repeat", "fold", "reason"]),
                      folds=folds, repeats=repeats, n=len(y), reference_time=t_ref,
                      horizons=tuple(float(h) for h in horizons),
                      first_repeat={kind: oof[kind, 0] for kind in factories}, times=times)


def reference_kinds(columns: Sequence[str]) -> tuple[str, ...]:
    """The reference rows a comparison on ``columns`` gets: ``null`` always, ``published`` with pCE and LMD."""
    return (NULL, PUBLISHED) if all(c in columns for c in PUBLISHED_COVARIATES) else (NULL,)


def reference_factories(make: Callable[..., Any], columns: Sequence[str]) -> dict[str, Factory]:
    """Factories of :func:`reference_kinds`; ``make(binary=[...])`` builds an unfitted Cox pipeline."""
    factories: dict[str, Factory] = {NULL: KaplanMeierNull}
    if PUBLISHED in reference_kinds(columns):
        factories[PUBLISHED] = lambda: make(binary=list(PUBLISHED_COVARIATES))
    return factories
