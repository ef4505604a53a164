"""The resampling machinery shared by every validation: fold splits, seeds, and running refits in parallel.

Every procedure built on it (the out-of-fold comparison, :mod:`.comparison`; the bootstrap optimism,
:mod:`.bootstrap`; the pattern model's validation) refits the model from its factory on every training
set, so any tuning the factory contains (inner cross-validation of a penalty or a forest grid) is
redone inside every fold and resample and never sees the data it is scored on. Random numbers come
from one :class:`numpy.random.SeedSequence` per call, spawned into one child per repeat or resample
in the calling process, so results are identical for any ``n_jobs``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.model_selection import StratifiedKFold

from .orphans import ExitWithParent

__all__ = ["Factory", "Progress", "fold_splits", "run_chunked", "survival_grid", "spawn_seeds", "failure_reason"]

Factory = Callable[[], Any]
Progress = Callable[[int], Any]

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
