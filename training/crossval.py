"""The resampling machinery shared by every validation: fold splits, seeds, and running refits in parallel.

Every procedure built on it (the out-of-fold comparison, :mod:`.comparison`; the bootstrap optimism,
:mod:`.bootstrap`; the pattern model's validation) refits the model from its factory on every training
set, so any tuning the factory contains (inner cross-validation of a penalty or a forest grid) is
redone inside every fold and resample and never sees the data it is scored on. Random numbers come
from one :class:`numpy.random.SeedSequence` per call, spawned into one child per repeat or resample
in the calling process, so results are identical for any ``n_jobs`` and on any backend (local
processes or a Dask cluster, :mod:`.compute`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.model_selection import StratifiedKFold

from .compute import WorkUnit, active_runner, interleaved_chunks
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


def run_chunked(
    fn: Callable[..., list[Any]], tasks: Sequence[Any], n_jobs: int, progress: Progress | None, *,
    shared: Sequence[Any] = (),
) -> list[Any]:
    """Apply ``fn(*shared, chunk)`` to chunks of ``tasks``; one result per task, in task order.

    Runs on the Dask cluster of an enclosing :func:`~cnslrisk.training.compute.use_compute`, else in
    ``n_jobs`` local processes (in this process when ``n_jobs == 1``). ``shared`` is what every chunk
    needs (the cohort, the splits): a cluster receives it once, not with every task, so tasks should
    be small keys into it. Each chunk runs as a :class:`~cnslrisk.training.compute.WorkUnit` (one
    BLAS thread), so the results do not depend on where it ran.
    """
    unit = WorkUnit(fn)
    runner = active_runner()
    outputs = (runner.run(unit, tasks, shared, progress) if runner is not None
               else _run_local(unit, tasks, shared, n_jobs, progress))
    results: list[Any] = [None] * len(tasks)
    for chunk, out in outputs:
        for j, value in zip(chunk, out, strict=True):
            results[j] = value
    return results


def _run_local(unit: WorkUnit, tasks: Sequence[Any], shared: Sequence[Any], n_jobs: int,
               progress: Progress | None) -> list[tuple[list[int], list[Any]]]:
    """(task positions, results) of each chunk, run here (``n_jobs == 1``) or in joblib's processes."""
    chunks = interleaved_chunks(len(tasks), 1 if n_jobs == 1 else effective_n_jobs(n_jobs))
    batches: Iterable[list[Any]]
    if n_jobs == 1:
        batches = (unit(*shared, [tasks[j] for j in chunk]) for chunk in chunks)
    else:
        worker = ExitWithParent(unit)  # a killed training process takes its workers with it
        batches = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(worker)(*shared, [tasks[j] for j in chunk]) for chunk in chunks)
    outputs = []
    for chunk, out in zip(chunks, batches, strict=True):
        outputs.append((chunk, out))
        if progress is not None:
            progress(len(chunk))
    return outputs


def failure_reason(exc: Exception) -> str:
    """How a failed refit is recorded: ``"ValueError: message"``."""
    return f"{type(exc).__name__}: {exc}"
