"""Honest internal validation: repeated stratified cross-validation and bootstrap optimism correction.

Both procedures refit the model from its factory on every training set, so any tuning the factory
contains (inner cross-validation of a penalty or a forest grid) is redone inside every fold and
resample and never sees the data it is scored on. Random numbers come from one
:class:`numpy.random.SeedSequence` per call, spawned into one child per repeat or resample in
the calling process, so results are identical for any ``n_jobs``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.model_selection import StratifiedKFold

from .metrics import calibration_slope, harrell_c, score_predictions

__all__ = ["CrossValidationResult", "OptimismResult", "cross_validate", "bootstrap_optimism", "survival_grid"]

Factory = Callable[[], Any]
Progress = Callable[[int], Any]

SD_DEFINITION = "sample sd (ddof=1) across repeats of the per-repeat mean over defined folds"
_GRID_POINTS = 20


def survival_grid(horizons: Sequence[float]) -> np.ndarray:
    """Time points where survival is predicted: the horizons plus 20 equally spaced points between them."""
    h = np.asarray(horizons, dtype=float)
    if h.size == 0 or not np.all(np.isfinite(h)) or (h <= 0).any():
        raise ValueError(f"parameter horizons must be positive finite times; got {list(horizons)}")
    return np.unique(np.r_[h, np.linspace(h.min(), h.max(), _GRID_POINTS)])


def _seeds(seed: int, count: int) -> list[int]:
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(count)]


def fold_splits(
    strata: np.ndarray, folds: int, repeats: int, seed: int
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train index, test index) of repeated stratified K-fold; repeat r uses child seed r."""
    out = []
    for r, state in enumerate(_seeds(seed, repeats)):
        kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=state)
        for k, (train, test) in enumerate(kfold.split(np.zeros(len(strata)), strata)):
            out.append((r, k, train, test))
    return out


def _chunks(tasks: list[Any], n_jobs: int) -> list[list[Any]]:
    n = 1 if n_jobs == 1 else min(len(tasks), 4 * effective_n_jobs(n_jobs))
    return [c for c in (tasks[i::n] for i in range(n)) if c] if n > 1 else [[t] for t in tasks]


def run_chunked(
    fn: Callable[[list[Any]], list[Any]], tasks: list[Any], n_jobs: int, progress: Progress | None
) -> list[Any]:
    """Apply ``fn`` to chunks of ``tasks`` (in parallel when ``n_jobs != 1``); results in task order."""
    chunks = _chunks(tasks, n_jobs)
    results: Iterable[list[Any]]
    if n_jobs == 1:
        results = (fn(c) for c in chunks)
    else:
        results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(fn)(c) for c in chunks)
    done: dict[int, Any] = {}
    for chunk, out in zip(chunks, results, strict=True):
        for task, value in zip(chunk, out, strict=True):
            done[id(task)] = value
        if progress is not None:
            progress(len(chunk))
    return [done[id(t)] for t in tasks]


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _cv_chunk(
    factory: Factory, X: pd.DataFrame, y: np.ndarray, horizons: Sequence[float], tasks: list[Any]
) -> list[Any]:
    times = survival_grid(horizons)
    out = []
    for _, _, train, test in tasks:
        try:
            est = factory().fit(X.iloc[train], y[train])
            X_test = X.iloc[test]
            risk = np.asarray(est.predict(X_test), dtype=float)
            surv = np.asarray(est.predict_survival(X_test, times), dtype=float)
        except Exception as exc:  # noqa: BLE001 - a failed refit is recorded, not raised
            out.append(_failure(exc))
            continue
        out.append(score_predictions(y[train], y[test], risk, surv, times, horizons))
    return out


@dataclass(frozen=True)
class CrossValidationResult:
    """Per-fold metrics of repeated stratified K-fold cross-validation and their summary.

    Attributes
    ----------
    folds : DataFrame
        One row per (repeat, fold, metric): ``value`` (``nan`` when undefined) and ``reason``
        (empty when defined).
    notes : DataFrame
        One row per fold whose test follow-up was truncated for the IPCW metrics: repeat, fold, note.
    summary : DataFrame
        Indexed by metric: ``mean`` (mean of the per-repeat means), ``sd`` (see ``sd_definition``),
        ``n_defined`` and ``n_undefined`` (fold counts) and ``repeats_defined``.
    sd_definition : str
        How ``sd`` is computed.
    """

    folds: pd.DataFrame
    notes: pd.DataFrame
    summary: pd.DataFrame
    sd_definition: str = SD_DEFINITION

    def to_dict(self) -> dict[str, dict[str, float]]:
        """``{metric: {"mean", "sd", "n_defined", "n_undefined"}}`` with plain Python numbers (model card)."""
        return {
            m: {
                "mean": float(r["mean"]),
                "sd": float(r["sd"]),
                "n_defined": int(r["n_defined"]),
                "n_undefined": int(r["n_undefined"]),
            }
            for m, r in self.summary.iterrows()
        }


def _summarise(folds: pd.DataFrame) -> pd.DataFrame:
    defined = folds.assign(ok=folds["value"].notna())
    per_repeat = defined.groupby(["metric", "repeat"], sort=False)["value"].mean()
    summary = pd.DataFrame(
        {
            "mean": per_repeat.groupby(level="metric", sort=False).mean(),
            "sd": per_repeat.groupby(level="metric", sort=False).std(ddof=1),
            "n_defined": defined.groupby("metric", sort=False)["ok"].sum(),
            "n_undefined": (~defined["ok"]).groupby(defined["metric"], sort=False).sum(),
            "repeats_defined": per_repeat.notna().groupby(level="metric", sort=False).sum(),
        }
    )
    summary.index.name = "metric"
    return summary


def cross_validate(
    factory: Factory,
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
) -> CrossValidationResult:
    """Repeated stratified K-fold cross-validation of a survival model.

    Each repeat shuffles the rows with its own seed and splits them into ``folds`` folds
    stratified on ``strata`` (default: the event indicator). The model is fitted on the other
    folds and scored on the held-out one with :func:`~cnslrisk.training.metrics.score_predictions`.
    A fold whose refit fails gets every metric undefined with the error as reason.

    Parameters
    ----------
    factory : callable
        Returns a new, unfitted estimator with ``fit(X, y)``, ``predict(X)`` (risk score) and
        ``predict_survival(X, times)``.
    X : DataFrame, shape = (n_samples, n_features)
        Covariates.
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    horizons : sequence of float
        Prediction horizons, in the time unit of ``y``.
    folds : int, default: 5
        Number of folds.
    repeats : int, default: 10
        Number of repeats.
    seed : int, default: 0
        Seed of the :class:`numpy.random.SeedSequence` spawning one shuffle seed per repeat.
    strata : array-like, shape = (n_samples,), optional
        Labels to stratify on, e.g. a competing-event cause; default the event indicator.
    n_jobs : int, default: 1
        Parallel jobs (joblib); results do not depend on it.
    progress : callable, optional
        Called with the number of folds finished since the last call, e.g.
        ``lambda k: bar.advance(task, k)`` for a rich progress bar.

    Returns
    -------
    result : CrossValidationResult
        Per-fold table, truncation notes and summary.

    References
    ----------
    .. [1] Steyerberg EW. Clinical Prediction Models, 2nd ed. Springer 2019, chapter 17.
    """
    for name, value, low in (("folds", folds, 2), ("repeats", repeats, 1)):
        if not isinstance(value, int | np.integer) or value < low:
            raise ValueError(f"parameter {name} of cross_validate must be an int >= {low}; got {value!r}")
    strata = np.asarray(y[y.dtype.names[0]] if strata is None else strata)
    if strata.shape[0] != y.shape[0] or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"X, y and strata must have the same number of rows; got {X.shape[0]}, {y.shape[0]}, {strata.shape[0]}"
        )
    survival_grid(horizons)
    tasks = fold_splits(strata, folds, repeats, seed)
    scores = run_chunked(lambda c: _cv_chunk(factory, X, y, horizons, c), tasks, n_jobs, progress)

    rows, notes = [], []
    names = _metric_names(horizons)
    for (r, k, _, _), s in zip(tasks, scores, strict=True):
        if isinstance(s, str):
            rows.extend((r, k, m, np.nan, f"fit failed: {s}") for m in names)
            continue
        rows.extend((r, k, m, s["metrics"][m], s["reasons"].get(m, "")) for m in names)
        if s["note"]:
            notes.append((r, k, s["note"]))
    table = pd.DataFrame(rows, columns=["repeat", "fold", "metric", "value", "reason"])
    note_table = pd.DataFrame(notes, columns=["repeat", "fold", "note"])
    return CrossValidationResult(table, note_table, _summarise(table))


def _metric_names(horizons: Sequence[float]) -> list[str]:
    from .metrics import horizon_label

    labels = [horizon_label(h) for h in horizons]
    return ["c_index", "uno_c", *(f"auc_{h}" for h in labels), *(f"brier_{h}" for h in labels), "ibs"]


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
        return dict.fromkeys(_BOOT_METRICS, _failure(exc))
    out: dict[str, Any] = {}
    for name, fn in (
        ("c_index", lambda: harrell_c(y, risk)),
        ("calibration_slope", lambda: calibration_slope(y, risk if linear else _log_cumulative_hazard(est, X, t_ref))),
    ):
        try:
            out[name] = fn()
        except Exception as exc:  # noqa: BLE001 - recorded as a failed resample
            out[name] = _failure(exc)
    return out


def _boot_chunk(
    factory: Factory, X: pd.DataFrame, y: np.ndarray, opts: tuple[str, float], tasks: list[Any]
) -> list[Any]:
    out = []
    n = y.shape[0]
    for _, state in tasks:
        idx = np.random.default_rng(state).integers(0, n, n)
        Xb, yb = X.iloc[idx], y[idx]
        try:
            est = factory().fit(Xb, yb)
        except Exception as exc:  # noqa: BLE001 - recorded as a failed resample
            out.append(_failure(exc))
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
    tasks = list(enumerate(_seeds(seed, resamples)))
    results = run_chunked(lambda c: _boot_chunk(factory, X, y, (slope_on, t_ref), c), tasks, n_jobs, progress)
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
