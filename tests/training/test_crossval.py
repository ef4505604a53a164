"""Fold splits and the survival grid shared by every resampling procedure."""

import numpy as np

from cnslrisk.training.crossval import fold_splits, survival_grid


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
