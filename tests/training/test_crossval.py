"""Fold splits, the survival grid and the chunked runner shared by every resampling procedure."""

import os
from functools import partial

import numpy as np
import pytest

from cnslrisk.training.compute import interleaved_chunks
from cnslrisk.training.crossval import fold_splits, run_chunked, survival_grid


def test_folds_are_stratified_on_the_given_labels(cohort):
    cause = np.where(cohort.y["event"], np.where(cohort.X["lmd"], "distant", "local"), "none")
    for _, _, train, test in fold_splits(cause, 5, 2, 0):
        assert np.intersect1d(train, test).size == 0 and train.size + test.size == cause.size
    for level in np.unique(cause):
        per_fold = [np.sum(cause[test] == level) for r, _, _, test in fold_splits(cause, 5, 2, 0) if r == 0]
        # stratified K-fold puts floor or ceil of count / K of each label in every fold
        assert max(per_fold) - min(per_fold) <= 1
    # a repeat uses the same child seed whatever the number of repeats
    first = fold_splits(cause, 5, 1, 3)
    for a, b in zip(first, fold_splits(cause, 5, 4, 3)[:5], strict=True):
        np.testing.assert_array_equal(a[3], b[3])


def test_survival_grid_contains_horizons():
    grid = survival_grid([12, 3, 6])
    assert set([3.0, 6.0, 12.0]) <= set(grid) and grid[0] == 3 and grid[-1] == 12 and np.all(np.diff(grid) > 0)


def _tag(offset, values, chunk):
    return [(task, float(values[task]) + offset, os.getpid()) for task in chunk]


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_run_chunked_returns_every_task_in_order_with_the_shared_data(n_jobs):
    values = np.arange(10.0) * 3
    progress = []
    out = run_chunked(partial(_tag, 0.5), list(range(10)), n_jobs, progress.append, shared=(values,))
    assert [(task, value) for task, value, _ in out] == [(t, 3 * t + 0.5) for t in range(10)]
    assert sum(progress) == 10
    # in this process only when asked for one job
    assert ({pid for *_, pid in out} == {os.getpid()}) == (n_jobs == 1)


def test_chunks_interleave_and_cover_every_task_once():
    chunks = interleaved_chunks(10, 2)
    assert sorted(j for c in chunks for j in c) == list(range(10))
    assert chunks[0] == [0, 8] and len(chunks) == 8
    assert interleaved_chunks(3, 1) == [[0], [1], [2]]
