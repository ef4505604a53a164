"""Honest internal validation: repeated stratified cross-validation (bootstrap optimism: :mod:`.bootstrap`).

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

from .orphans import ExitWithParent

from .metrics import score_predictions

__all__ = [
    "CrossValidationResult", "cross_validate", "fold_splits", "run_chunked", "survival_grid", "spawn_seeds",
    "failure_reason",
]

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


def spawn_seeds(seed: int, count: int) -> list[int]:
    """One independent integer seed per repeat or resample, from ``SeedSequence(seed)``."""
    return [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(count)]


def fold_splits(
    strata: np.ndarray, folds: int, repeats: int, seed: int
) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train index, test index) of repeated stratified K-fold; repeat r uses child seed r."""
    out = []
    for r, state in enumerate(spawn_seeds(seed, repeats)):
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
        worker = ExitWithParent(fn)  # a killed training process takes its workers with it
        results = Parallel(n_jobs=n_jobs, return_as="generator")(delayed(worker)(c) for c in chunks)
    done: dict[int, Any] = {}
    for chunk, out in zip(chunks, results, strict=True):
        for task, value in zip(chunk, out, strict=True):
            done[id(task)] = value
        if progress is not None:
            progress(len(chunk))
    return [done[id(t)] for t in tasks]


def failure_reason(exc: Exception) -> str:
    """How a failed refit is recorded: ``"ValueError: message"``."""
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
            out.append(failure_reason(exc))
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
