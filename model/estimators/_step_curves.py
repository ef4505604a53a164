"""Leaf curves kept as steps: lookups at grid columns and the ensemble median (numba).

A leaf's curve is a right-continuous step function on the forest's event-time grid: its value is
``initial`` before its first step column and ``values[k]`` from ``columns[k]`` on, the steps of
leaf ``i`` being ``ptr[i]:ptr[i + 1]`` (columns ascending). The ensemble value of a row at a column
is the sum of its leaves' values in tree order divided by the number of trees, the operations
scikit-survival's serial prediction performs on its dense arrays, hence the same bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["values_at", "dense_rows", "first_column_at_or_below", "route"]


def values_at(ptr: np.ndarray, columns: np.ndarray, values: np.ndarray, initial: float, leaves: np.ndarray,
              at: np.ndarray, n_columns: int) -> np.ndarray:
    """Value of each of ``leaves`` at each grid column of ``at`` (in [0, n_columns)), shape (len(leaves), len(at))."""
    owner = np.repeat(np.arange(ptr.size - 1, dtype=np.int64), np.diff(ptr))
    keys = owner * n_columns + columns
    query = leaves.astype(np.int64)[:, None] * n_columns + at[None, :]
    found = np.searchsorted(keys, query, side="right") - 1
    inside = found >= ptr[leaves][:, None]
    return np.where(inside, values[np.maximum(found, 0)], initial)


def dense_rows(ptr: np.ndarray, columns: np.ndarray, values: np.ndarray, initial: float, leaves: np.ndarray,
               n_columns: int) -> np.ndarray:
    """Curves of ``leaves`` on every grid column, shape (len(leaves), n_columns), by forward fill (exact)."""
    starts, counts = ptr[leaves], ptr[leaves + 1] - ptr[leaves]
    total = int(counts.sum())
    first = np.cumsum(counts) - counts
    steps = np.repeat(starts, counts) + (np.arange(total) - np.repeat(first, counts))
    index = np.zeros((leaves.size, n_columns), dtype=np.int64)
    index[np.repeat(np.arange(leaves.size), counts), columns[steps]] = steps + 1
    np.maximum.accumulate(index, axis=1, out=index)
    return np.concatenate([[initial], values])[index]


@njit(cache=True, nogil=True)
def first_column_at_or_below(leaves: np.ndarray, ptr: np.ndarray, columns: np.ndarray, survival: np.ndarray,
                             dense: np.ndarray, n_columns: int, level: float) -> np.ndarray:
    """First grid column where each row's ensemble survival is at or below ``level`` (-1: never).

    ``leaves`` is (n_trees, n_rows). The ensemble curve, summed in tree order, never increases
    (each leaf curve does not, and rounded sums of larger terms are not smaller), so a binary
    search over the columns finds the same column as a scan of the whole curve. All rows search
    together, tree after tree (each row's sum still runs in tree order), which reads the leaves
    in memory order. ``dense`` (n_leaves, n_columns), when not empty, holds every leaf's curve on
    the grid (a small forest's): a value is then read instead of scanning the leaf's steps.
    """
    n_trees, n_rows = leaves.shape
    lo = np.zeros(n_rows, dtype=np.int64)
    hi = np.full(n_rows, n_columns, dtype=np.int64)
    mid = np.zeros(n_rows, dtype=np.int64)
    total = np.zeros(n_rows)
    probes = 0
    while (1 << probes) <= n_columns:
        probes += 1
    for _ in range(probes):
        for row in range(n_rows):
            mid[row] = (lo[row] + hi[row]) // 2
            total[row] = 0.0
        for b in range(n_trees):
            for row in range(n_rows):
                if lo[row] < hi[row]:
                    leaf = leaves[b, row]
                    if dense.shape[0]:
                        value = dense[leaf, mid[row]]
                    else:  # the last step at or before the column, by bisection (a leaf may hold hundreds)
                        first, stop = ptr[leaf], ptr[leaf + 1]
                        while first < stop:
                            half = (first + stop) // 2
                            if columns[half] <= mid[row]:
                                first = half + 1
                            else:
                                stop = half
                        value = survival[first - 1] if first > ptr[leaf] else 1.0
                    total[row] += value
        for row in range(n_rows):
            if lo[row] < hi[row]:
                if total[row] / n_trees <= level:
                    hi[row] = mid[row]
                else:
                    lo[row] = mid[row] + 1
    out = np.empty(n_rows, dtype=np.int64)
    for row in range(n_rows):
        out[row] = lo[row] if lo[row] < n_columns else -1
    return out


@njit(cache=True, nogil=True)
def route(X: np.ndarray, roots: np.ndarray, feature: np.ndarray, threshold: np.ndarray, left: np.ndarray,
          right: np.ndarray, missing_left: np.ndarray, leaf_of_node: np.ndarray) -> np.ndarray:
    """Leaf index reached by each row of float32 ``X`` in each tree, shape (n_trees, n_rows).

    ``left``/``right`` are global node indices. As scikit-learn's ``Tree.apply``: a feature is
    compared in float64 with the threshold (``X <= threshold`` goes left), a NaN takes the side the
    node learned.
    """
    out = np.empty((roots.size, X.shape[0]), dtype=np.int32)
    for t in range(roots.size):
        for row in range(X.shape[0]):
            node = roots[t]
            while feature[node] >= 0:
                value = X[row, feature[node]]
                if np.isnan(value):
                    go_left = missing_left[node] != 0
                else:
                    go_left = np.float64(value) <= threshold[node]
                node = left[node] if go_left else right[node]
            out[t, row] = leaf_of_node[node]
    return out
