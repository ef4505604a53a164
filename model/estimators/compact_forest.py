"""A compact random survival forest: flat split arrays, leaf curves as steps, vectorised routing, no pickle.

scikit-survival's ``RandomSurvivalForest`` keeps a cumulative hazard and a survival array on its
full time grid in every node of every tree. This module keeps what prediction needs:

- the split structure of every tree (feature, threshold, left and right child, the side missing
  values take), as flat arrays concatenated over trees with per-tree node offsets;
- for the LEAVES only, the Nelson-Aalen cumulative hazard and the Kaplan-Meier survival as STEPS on
  the forest's grid of distinct training EVENT times (a leaf's curve changes only at its own
  in-bag event times: a few steps per leaf, so memory grows with the training size, never with
  leaves x grid), plus each leaf's risk score (its cumulative hazard summed over the event times);
- optionally the B x B Gram matrix of the trees' centred in-bag counts, for the
  infinitesimal-jackknife band (:mod:`._ij_variance`).

**Time grid.** scikit-survival's grid also holds the censored-only times, where no leaf curve
moves; as right-continuous steps the curves on the event-time grid are the same at every time.

**Scoring.** Under 64 rows go through all trees in one compiled loop (numba). From 64 rows on,
each tree routes them with scikit-learn's compiled ``Tree.apply`` on ``Tree`` objects rebuilt from
the arrays (``Tree.__setstate__``, no pickle), and the requested columns are gathered from per-tree
tables indexed by node. The rows are first sorted by their features, coarsest first, so that
neighbouring rows take the same paths (the branches are predicted), and parts of them go to
``n_threads`` threads. Each row's leaf values are added tree by tree in forest order and divided by
the number of trees, as scikit-survival's serial prediction does, so the results are the same bit
for bit whatever the batch, its order or the threads.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

import numpy as np
from sklearn.tree._tree import NODE_DTYPE, Tree
from sksurv.functions import StepFunction
from threadpoolctl import ThreadpoolController

from ._ij_variance import cloglog_band, gram_factor, ij_variances, inbag_gram
from ._step_curves import dense_rows, first_column_at_or_below, route, values_at

__all__ = ["CompactForest"]

_COMPILED_FROM_ROWS = 64
_ROWS_PER_THREAD = 4096
_BLOCK_ROWS = 8192
_CACHED_TABLES = 8
_DENSE_VALUES = 1 << 20  # rows x grid values held at once for whole curves
_TABLE_COLUMNS = 64  # more grid columns than this are read off the leaves' steps (:meth:`_from_steps`)
_DENSE_LEAF_VALUES = 1 << 20  # leaves x grid values kept for the median search of a small forest (8 MB)
_INITIAL = {"survival": 1.0, "cum_hazard": 0.0}
_STEPS = {"survival": "step_surv", "cum_hazard": "step_chf"}
ARRAYS = ("node_offsets", "feature", "threshold", "children_left", "children_right", "missing_left",
          "leaf_of_node", "times", "step_ptr", "step_col", "step_chf", "step_surv", "risk")


class CompactForest:
    """Flat-array random survival forest, built by :class:`~.forest.SurvivalForest` or :meth:`from_sksurv`.

    Parameters
    ----------
    node_offsets : ndarray of int32, shape (n_trees + 1,)
        Start of each tree's nodes in the flat node arrays.
    feature, threshold, children_left, children_right, missing_left : ndarray, shape (n_nodes,)
        Split of each node; children are numbered within their tree, -1 at a leaf;
        ``missing_left`` is 1 where a missing value goes left.
    leaf_of_node : ndarray of int32, shape (n_nodes,)
        Index of each leaf (forest order), -1 for a split node.
    times : ndarray, shape (n_times,)
        Ascending grid of distinct training event times.
    step_ptr : ndarray of int64, shape (n_leaves + 1,)
        Steps of leaf ``k`` are ``step_ptr[k]:step_ptr[k + 1]``.
    step_col : ndarray of int, shape (n_steps,)
        Grid column from which each step holds (ascending within a leaf).
    step_chf, step_surv : ndarray of float64, shape (n_steps,)
        Nelson-Aalen cumulative hazard and Kaplan-Meier survival from that column on (0 and 1 before
        a leaf's first step).
    risk : ndarray of float64, shape (n_leaves,)
        Leaf risk score: the cumulative hazard summed over all training event times.
    n_features_in : int
    feature_names : sequence of str or None, default=None
    metadata : dict or None, default=None
        JSON-serialisable facts stored with the forest.
    inbag_gram : ndarray of shape (n_trees, n_trees) or None, default=None
        Gram matrix of the centred in-bag counts (:func:`._ij_variance.inbag_gram`); enables the
        band of :meth:`predict_summary`.
    inbag_counts : ndarray of shape (n_trees, n_samples) or None, default=None
        The counts themselves, as a fitted forest has them: :attr:`inbag_gram` is computed from them
        when first asked for (a forest only scored, as in cross-validation, never needs it) and they
        are then dropped.
    n_threads : int or None, default=None
        Threads scoring a batch of at least 8,192 rows; None uses every CPU. Results do not depend on it.

    Attributes
    ----------
    n_trees_ : int
    times_ : ndarray
        The time grid (``times``).
    """

    def __init__(self, *, n_features_in: int, feature_names: Sequence[str] | None = None,
                 metadata: dict[str, Any] | None = None, inbag_gram: np.ndarray | None = None,
                 inbag_counts: np.ndarray | None = None, n_threads: int | None = None, **arrays: np.ndarray):
        dtypes = {"node_offsets": np.int32, "feature": np.int32, "threshold": np.float64, "children_left": np.int32,
                  "children_right": np.int32, "missing_left": np.uint8, "leaf_of_node": np.int32,
                  "times": np.float64, "step_ptr": np.int64, "step_col": np.int64, "step_chf": np.float64,
                  "step_surv": np.float64, "risk": np.float64}
        self.arrays = {name: np.ascontiguousarray(arrays[name], dtype=dtypes[name]) for name in ARRAYS}
        self._gram = None if inbag_gram is None else np.asarray(inbag_gram, dtype=np.float64)
        self._inbag_counts = inbag_counts
        self._factor: np.ndarray | None = None
        self._dense_survival: np.ndarray | None = None
        self.n_features_in = int(n_features_in)
        self.feature_names = None if feature_names is None else [str(name) for name in feature_names]
        self.metadata = dict(metadata or {})
        self.n_threads = (os.cpu_count() or 1) if n_threads is None else int(n_threads)
        offsets = self.arrays["node_offsets"]
        self.n_trees_ = offsets.size - 1
        self.times_ = self.arrays["times"]
        # global child indices; a leaf points to itself
        tree_of_node = np.repeat(np.arange(self.n_trees_), np.diff(offsets))
        own = np.arange(offsets[-1], dtype=np.int64)
        base = offsets[tree_of_node].astype(np.int64)
        leaf = self.arrays["children_left"] < 0
        self._left = np.where(leaf, own, base + self.arrays["children_left"])
        self._right = np.where(leaf, own, base + self.arrays["children_right"])
        self._roots = offsets[:-1].astype(np.int64)
        self._trees: list[Tree] | None = None
        self._sort_keys: np.ndarray | None = None
        self._tables: dict[tuple, list[np.ndarray]] = {}

    @classmethod
    def from_sksurv(cls, forest: Any, *, feature_names: Sequence[str] | None = None) -> CompactForest:
        """Convert a fitted ``sksurv.ensemble.RandomSurvivalForest`` (``low_memory=False``).

        Each leaf's dense curves are cut to their steps on the event-time grid (exact).
        """
        if getattr(forest, "low_memory", False):
            raise ValueError("CompactForest: the forest was fitted with low_memory=True and holds no leaf curves; "
                             "refit with low_memory=False")
        is_event = np.asarray(forest.is_event_time_, dtype=bool)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in ARRAYS if name not in ("node_offsets", "times")}
        offsets, n_leaves = [0], 0
        for tree in forest.estimators_:
            t = tree.tree_
            leaf = t.children_left < 0
            leaf_rows = np.full(t.node_count, -1, dtype=np.int32)
            leaf_rows[leaf] = n_leaves + np.arange(leaf.sum(), dtype=np.int32)
            n_leaves += int(leaf.sum())
            chf, surv = t.value[leaf][:, is_event, 0], t.value[leaf][:, is_event, 1]
            change = (np.diff(chf, axis=1, prepend=0.0) != 0) | (np.diff(surv, axis=1, prepend=1.0) != 0)
            rows, cols = np.nonzero(change)
            for name in ("feature", "threshold", "children_left", "children_right"):
                parts[name].append(getattr(t, name))
            parts["missing_left"].append(t.missing_go_to_left)
            parts["leaf_of_node"].append(leaf_rows)
            parts["step_ptr"].append(np.bincount(rows, minlength=leaf.sum()))  # steps per leaf, summed below
            parts["step_col"].append(cols)
            parts["step_chf"].append(chf[rows, cols])
            parts["step_surv"].append(surv[rows, cols])
            parts["risk"].append(chf.sum(axis=1))  # scikit-survival's own sum over the event times
            offsets.append(offsets[-1] + t.node_count)
        arrays = {name: np.concatenate(part) for name, part in parts.items()}
        arrays["step_ptr"] = np.concatenate([[0], np.cumsum(arrays["step_ptr"])])
        names = feature_names if feature_names is not None else getattr(forest, "feature_names_in_", None)
        return cls(node_offsets=offsets, times=np.asarray(forest.unique_times_, dtype=np.float64)[is_event],
                   n_features_in=forest.n_features_in_, feature_names=names, **arrays)

    @property
    def inbag_gram(self) -> np.ndarray | None:
        """Gram matrix of the trees' centred in-bag counts (n_trees, n_trees), None without resampling."""
        if self._gram is None and self._inbag_counts is not None:
            self._gram, self._inbag_counts = inbag_gram(self._inbag_counts), None
        return self._gram

    def _ij_factor(self) -> np.ndarray:
        if self._factor is None:
            self._factor = gram_factor(self.inbag_gram)
        return self._factor

    @property
    def n_leaves_(self) -> int:
        return self.arrays["risk"].size

    def _matrix(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in:
            raise ValueError(f"CompactForest: X has shape {X.shape}; expected (n_samples, {self.n_features_in})")
        # scikit-survival compares float32 features with float64 thresholds
        return np.ascontiguousarray(X, dtype=np.float32)

    def _compiled(self) -> list[Tree]:
        """scikit-learn ``Tree`` objects rebuilt from the split arrays (no leaf values), built once.

        Also sets the row sort keys: the used features, finest first (most distinct thresholds in
        the forest), as ``np.lexsort`` takes its primary key last.
        """
        if self._trees is None:
            a, offsets = self.arrays, self.arrays["node_offsets"]
            trees = []
            for start, stop in zip(offsets[:-1], offsets[1:], strict=True):
                nodes = np.zeros(stop - start, dtype=NODE_DTYPE)
                for field, name in (("left_child", "children_left"), ("right_child", "children_right"),
                                    ("feature", "feature"), ("threshold", "threshold"),
                                    ("missing_go_to_left", "missing_left")):
                    nodes[field] = a[name][start:stop]
                nodes["n_node_samples"], nodes["weighted_n_node_samples"] = 1, 1.0
                tree = Tree(self.n_features_in, np.ones(1, dtype=np.intp), 1)
                tree.__setstate__({"max_depth": int(stop - start), "node_count": int(stop - start), "nodes": nodes,
                                   "values": np.zeros((stop - start, 1, 1))})
                trees.append(tree)
            n_thresholds = np.array([np.unique(a["threshold"][a["feature"] == j]).size
                                     for j in range(self.n_features_in)])
            keys = np.argsort(-n_thresholds, kind="stable")
            self._sort_keys = keys[n_thresholds[keys] > 0]
            self._trees = trees
        return self._trees

    def _route(self, X: np.ndarray) -> np.ndarray:
        """Leaf reached by the (few) rows of float32 ``X`` in every tree, all trees in one compiled loop."""
        a = self.arrays
        return route(X, self._roots, a["feature"], a["threshold"], self._left, self._right, a["missing_left"],
                     a["leaf_of_node"])

    def apply(self, X: Any) -> np.ndarray:
        """Leaf reached by every row in every tree, shape (n_trees, n_samples) (one compiled loop under 64 rows)."""
        X = self._matrix(X)
        if X.shape[0] < _COMPILED_FROM_ROWS:
            return self._route(X)
        offsets, leaf_of_node = self.arrays["node_offsets"], self.arrays["leaf_of_node"]
        return np.stack([leaf_of_node[offsets[t] + tree.apply(X)] for t, tree in enumerate(self._compiled())])

    def _leaf_table(self, parts: Sequence[tuple[str, np.ndarray | None]]) -> np.ndarray:
        """Every leaf's values side by side: ``("risk", None)`` or a curve at grid columns, shape (n_leaves, k)."""
        leaves = np.arange(self.n_leaves_)
        a = self.arrays
        return np.column_stack([a["risk"] if name == "risk" else values_at(
            a["step_ptr"], a["step_col"], a[_STEPS[name]], _INITIAL[name], leaves, columns, self.times_.size)
            for name, columns in parts])

    def _node_tables(self, parts: Sequence[tuple[str, np.ndarray | None]]) -> list[np.ndarray]:
        """Per tree, :meth:`_leaf_table` indexed by node (zeros at split nodes), cached (8 column sets)."""
        key = tuple((name, None if columns is None else tuple(columns.tolist())) for name, columns in parts)
        tables = self._tables.get(key)
        if tables is None:
            leaf_of_node, offsets = self.arrays["leaf_of_node"], self.arrays["node_offsets"]
            leaf = leaf_of_node >= 0
            rows = self._leaf_table(parts)
            table = np.zeros((leaf.size, rows.shape[1]))
            table[leaf] = rows[leaf_of_node[leaf]]
            tables = [table[start:stop] for start, stop in zip(offsets[:-1], offsets[1:], strict=True)]
            if len(self._tables) >= _CACHED_TABLES:
                self._tables.clear()
            self._tables[key] = tables
        return tables

    def _sorted_parts(self, X: np.ndarray, work) -> None:
        """Run ``work(order_slice)`` on contiguous parts of the rows sorted by features, on threads."""
        self._compiled()
        order = np.lexsort(X[:, self._sort_keys].T) if self._sort_keys.size else np.arange(X.shape[0])
        n_parts = max(1, min(self.n_threads, X.shape[0] // _ROWS_PER_THREAD))
        edges = np.linspace(0, X.shape[0], n_parts + 1).astype(np.intp).tolist()
        slices = [order[lo:hi] for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        if n_parts == 1:  # most batches: no thread to start
            work(slices[0])
        else:
            with ThreadPoolExecutor(n_parts) as pool:
                list(pool.map(work, slices))

    def _mean(self, X: Any, parts: Sequence[tuple[str, np.ndarray | None]]) -> np.ndarray:
        """Ensemble mean of the leaf values in ``parts``, shape (n_samples, n_columns)."""
        # summed tree by tree in forest order, then one division: scikit-survival's serial operations
        X = self._matrix(X)
        if X.shape[0] < _COMPILED_FROM_ROWS:
            leaves = self._route(X)
            values = self._leaf_table_rows(parts, leaves.reshape(-1))
            values = values.reshape(*leaves.shape, values.shape[1])
            total = np.cumsum(values, axis=0, dtype=np.float64)[-1]
        else:
            trees, tables = self._compiled(), self._node_tables(parts)
            total = np.zeros((X.shape[0], tables[0].shape[1]))

            def add(rows: np.ndarray) -> None:
                block, out = X[rows], np.zeros((rows.size, total.shape[1]))
                for tree, table in zip(trees, tables, strict=True):
                    out += table.take(tree.apply(block), axis=0)
                total[rows] = out

            self._sorted_parts(X, add)
        total /= self.n_trees_
        return total

    def _leaf_table_rows(self, parts: Sequence[tuple[str, np.ndarray | None]], leaves: np.ndarray) -> np.ndarray:
        a = self.arrays
        return np.column_stack([a["risk"][leaves] if name == "risk" else values_at(
            a["step_ptr"], a["step_col"], a[_STEPS[name]], _INITIAL[name], leaves, columns, self.times_.size)
            for name, columns in parts])

    def predict(self, X: Any) -> np.ndarray:
        """Risk score: ensemble cumulative hazard summed over the training event times, shape (n_samples,)."""
        return self._mean(X, [("risk", None)])[:, 0]

    def _curves(self, name: str, X: Any, return_array: bool) -> Any:
        """Ensemble curve on the whole grid: each tree's dense leaf rows added in forest order, rows in blocks."""
        X = self._matrix(X)
        a, n_times = self.arrays, self.times_.size
        out = np.zeros((X.shape[0], n_times))
        step = max(1, _DENSE_VALUES // max(n_times, 1))
        for lo in range(0, X.shape[0], step):
            leaves = self.apply(X[lo:lo + step])
            total = out[lo:lo + step]
            for tree_leaves in leaves:
                total += dense_rows(a["step_ptr"], a["step_col"], a[_STEPS[name]], _INITIAL[name], tree_leaves,
                                    n_times)
        out /= self.n_trees_
        if return_array:
            return out
        return np.array([StepFunction(self.times_, row) for row in out])

    def predict_survival_function(self, X: Any, return_array: bool = False) -> Any:
        """Ensemble survival on :attr:`times_`: an (n_samples, n_times) array or ``StepFunction`` objects."""
        return self._curves("survival", X, return_array)

    def predict_cumulative_hazard_function(self, X: Any, return_array: bool = False) -> Any:
        """Ensemble cumulative hazard on :attr:`times_`: an array or ``StepFunction`` objects."""
        return self._curves("cum_hazard", X, return_array)

    def _columns(self, times: Any) -> tuple[np.ndarray, np.ndarray]:
        """Grid column holding the step value at each of ``times``, and which times precede the grid."""
        index = np.searchsorted(self.times_, np.atleast_1d(np.asarray(times, dtype=float)), side="right") - 1
        return np.maximum(index, 0), index < 0

    def predict_at(self, X: Any, times: Any, kind: str = "survival") -> np.ndarray:
        """Ensemble survival or cumulative hazard at ``times`` (right-continuous steps), shape (n_samples, n_times).

        Survival is 1 and the cumulative hazard 0 before the first grid time.
        """
        columns, before = self._columns(times)
        if np.unique(columns).size > _TABLE_COLUMNS:
            out = self._from_steps(X, kind)[:, columns]
        else:
            out = self._mean(X, [(kind, columns)])
        out[:, before] = _INITIAL[kind]
        return out

    def _from_steps(self, X: Any, name: str) -> np.ndarray:
        """Ensemble curve on the whole grid from the reached leaves' steps, rows in blocks.

        Past 64 columns a table per tree (nodes x columns) would outgrow the forest itself; instead
        each reached leaf adds its steps' increments at their columns (tree by tree, so each row's
        sums run in the same order whatever the batch) and one cumulative sum per row makes the
        curve. It agrees with the tree-by-tree sums of :meth:`_curves` to rounding (1e-15), not bit
        for bit.
        """
        X = self._matrix(X)
        a, n_times = self.arrays, self.times_.size
        ptr, values, initial = a["step_ptr"], a[_STEPS[name]], _INITIAL[name]
        first = np.zeros(values.size, dtype=bool)
        first[ptr[:-1][np.diff(ptr) > 0]] = True
        increments = values - np.where(first, initial, np.concatenate([[initial], values[:-1]]))
        out = np.empty((X.shape[0], n_times))
        step = max(1, _DENSE_VALUES // max(n_times, 1))
        for lo in range(0, X.shape[0], step):
            leaves = self.apply(X[lo:lo + step])  # (n_trees, rows): tree-major, as the sums must run
            rows = np.broadcast_to(np.arange(leaves.shape[1]), leaves.shape).ravel()
            starts, counts = ptr[leaves.ravel()], np.diff(ptr)[leaves.ravel()]
            total = int(counts.sum())
            index = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
            flat = np.repeat(rows, counts) * n_times + a["step_col"][index]
            summed = np.bincount(flat, weights=increments[index], minlength=leaves.shape[1] * n_times)
            block = np.cumsum(summed.reshape(leaves.shape[1], n_times), axis=1)
            out[lo:lo + step] = (block + initial * self.n_trees_) / self.n_trees_
        return out

    def predict_with_survival(self, X: Any, times: Any) -> tuple[np.ndarray, np.ndarray]:
        """Risk score and survival at ``times`` from a single routing of ``X``."""
        columns, before = self._columns(times)
        both = self._mean(X, [("risk", None), ("survival", columns)])
        survival = np.ascontiguousarray(both[:, 1:])
        survival[:, before] = 1.0
        return np.ascontiguousarray(both[:, 0]), survival

    def predict_summary(self, X: Any, times: Any, grid: Any | None = None, level: float | None = None
                        ) -> dict[str, np.ndarray]:
        """Risk, survival at ``times``, median on ``grid`` and the IJ band at ``level``, from one routing.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        times : array-like, shape (n_times,)
        grid : array-like, optional
            Ascending times: ``median`` is the first of them where the ensemble survival is at or
            below 0.5 (NaN if none), exactly as read off the whole curve.
        level : float, optional
            Adds ``lower`` and ``upper``: :func:`._ij_variance.cloglog_band` of the bias-corrected
            IJ variance (needs ``inbag_gram``), or of the uncorrected one where the corrected is not
            positive though the trees disagree (too few trees for the correction), which ``conservative``
            marks.

        Returns
        -------
        dict of ndarray
            ``risk`` (n,), ``survival`` (n, n_times), and ``median`` (n,), ``lower``/``upper``
            (n, n_times) and ``conservative`` (n, n_times) of bool when asked for.
        """
        if level is not None and self.inbag_gram is None:
            raise ValueError("CompactForest: this forest holds no in-bag counts (bootstrap=False or an old file); "
                             "its infinitesimal-jackknife band is not available")
        X = self._matrix(X)
        columns, before = self._columns(times)
        parts = [("risk", None), ("survival", columns)]
        n = X.shape[0]
        out = {"risk": np.empty(n), "survival": np.empty((n, columns.size))}
        if grid is not None:
            out["median"] = np.empty(n)
            grid = np.asarray(grid, dtype=float)
        if level is not None:
            out["lower"], out["upper"] = np.empty((n, columns.size)), np.empty((n, columns.size))
            out["conservative"] = np.empty((n, columns.size), dtype=bool)
        leaf_table = self._leaf_table_rows if n < _COMPILED_FROM_ROWS else None
        table = None if leaf_table else self._leaf_table(parts)

        def work(rows: np.ndarray) -> None:
            for lo in range(0, rows.size, _BLOCK_ROWS):
                part = rows[lo:lo + _BLOCK_ROWS]
                leaves = self.apply(X[part])
                values = leaf_table(parts, leaves.reshape(-1)) if leaf_table else table[leaves.reshape(-1)]
                values = values.reshape(*leaves.shape, values.shape[1])
                total = _tree_order_sum(values) / self.n_trees_
                survival = total[:, 1:]
                survival[:, before] = 1.0
                out["risk"][part], out["survival"][part] = total[:, 0], survival
                if grid is not None:
                    out["median"][part] = self._median(leaves, grid)
                if level is not None:
                    corrected, uncorrected = ij_variances(values[:, :, 1:], self.inbag_gram, factor)
                    conservative = (corrected <= 0) & (uncorrected > 0)
                    variance = np.where(corrected > 0, corrected, uncorrected)
                    out["lower"][part], out["upper"][part] = cloglog_band(survival, variance, level)
                    out["conservative"][part] = conservative

        factor = None if level is None else self._ij_factor()
        # BLAS on one thread: our threads already use the cores, and on a busy machine a BLAS pool
        # spinning for a one-row product costs tens of milliseconds
        with _blas().limit(limits=1, user_api="blas"):
            if n < _COMPILED_FROM_ROWS:
                work(np.arange(n))
            else:
                self._sorted_parts(X, work)
        return out

    def _median(self, leaves: np.ndarray, grid: np.ndarray) -> np.ndarray:
        a = self.arrays
        if self._dense_survival is None:  # a small forest's whole curves (8 MB at most), else none
            small = self.n_leaves_ * self.times_.size <= _DENSE_LEAF_VALUES
            self._dense_survival = (dense_rows(a["step_ptr"], a["step_col"], a["step_surv"], 1.0,
                                               np.arange(self.n_leaves_), self.times_.size) if small
                                    else np.zeros((0, 1)))
        column = first_column_at_or_below(np.ascontiguousarray(leaves, dtype=np.int64), a["step_ptr"], a["step_col"],
                                          a["step_surv"], self._dense_survival, self.times_.size, 0.5)
        # the first grid time on or after the crossing's event time reads a curve at or below 0.5
        crossing = np.where(column >= 0, self.times_[np.maximum(column, 0)], np.inf)
        index = np.searchsorted(grid, crossing, side="left")
        return np.where(index < grid.size, grid[np.minimum(index, grid.size - 1)], np.nan)


@lru_cache(maxsize=1)
def _blas() -> ThreadpoolController:
    """The process's thread pools, found once (finding them reads every loaded library)."""
    return ThreadpoolController()


def _tree_order_sum(values: np.ndarray) -> np.ndarray:
    """Sum over axis 0 (trees), one tree after another as scikit-survival's serial prediction adds them:
    numpy reduces a leading axis by adding its slices in order (pairwise summation is only used along
    the contiguous axis); the tests compare with the tree-by-tree sums."""
    return values.sum(axis=0)
