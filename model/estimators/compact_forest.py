"""A compact random survival forest: flat split arrays, leaf-only curves, vectorised routing, no pickle.

scikit-survival's ``RandomSurvivalForest`` keeps a cumulative hazard and a survival array on its
full time grid in every node of every tree, and can only be stored by pickling all of it. This
module keeps what prediction needs:

- the split structure of every tree (feature, threshold, left and right child, the side missing
  values take), as flat arrays concatenated over trees with per-tree node offsets;
- for the LEAVES only, the Nelson-Aalen cumulative hazard and the Kaplan-Meier survival on the
  forest's time grid, plus each leaf's risk score (the sum of its cumulative hazard over all
  training event times).

**Time grid.** scikit-survival 0.28 (``sksurv.tree._criterion.get_unique_times``) uses every
distinct training time, censored ones included, as ``unique_times_``. At a censored-only time no
leaf has an event, so every leaf curve, hence the ensemble curve, equals its value at the
preceding event time (0 or 1 before the first one). The default grid is therefore the distinct
EVENT times: as right-continuous steps the curves are the same at every time (checked bit for bit
on every leaf in the tests). ``max_times`` coarsens it further (:meth:`CompactForest.from_sksurv`).

**Scoring.** Under 64 rows go through all trees at once in numpy, level by level. From 64 rows on,
each tree routes them with scikit-learn's compiled ``Tree.apply`` on ``Tree`` objects rebuilt from
the arrays (``Tree.__setstate__``, no pickle) and its leaf values are gathered by node in one call.
The rows are first sorted by their features, coarsest first, so that neighbouring rows mostly take
the same path and the processor predicts the branches in ``Tree.apply``: that more than halves the
routing time. Parts of the sorted rows go to ``n_threads`` threads (``Tree.apply`` and numpy release
the GIL). Features are compared in float32, as in scikit-survival. Each row's leaf values are added
tree by tree in forest order and divided by the number of trees, as scikit-survival's serial
prediction does, so the result is the same bit for bit; sorting and threads keep that order.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.tree._tree import NODE_DTYPE, Tree
from sksurv.functions import StepFunction

__all__ = ["CompactForest", "ForestFileError", "FORMAT", "FORMAT_VERSION"]

FORMAT = "cnslrisk-compact-forest"
FORMAT_VERSION = 1
_NPZ = "forest.npz"
_JSON = "forest.json"
_ARRAYS = ("node_offsets", "feature", "threshold", "children_left", "children_right", "missing_left",
           "leaf_of_node", "times", "survival", "cum_hazard", "risk")
_CURVES = ("survival", "cum_hazard")
_COMPILED_FROM_ROWS = 64
_ROWS_PER_THREAD = 4096
_CACHED_TABLES = 8


class ForestFileError(ValueError):
    """A stored forest file is missing, altered or of an unknown format."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _grid_columns(times: np.ndarray, max_times: int | None, keep_times: Sequence[float]) -> np.ndarray:
    """Columns of the event-time grid kept by a coarsening (all of them when ``max_times`` is None)."""
    k = times.size
    if max_times is None or max_times >= k:
        return np.arange(k)
    if max_times < 2:
        raise ValueError(f"CompactForest: max_times={max_times} must be at least 2 or None")
    columns = np.round(np.linspace(0, k - 1, max_times)).astype(np.intp)
    # the step value at a kept time is the value at the last event time on or before it
    kept = np.searchsorted(times, np.asarray(keep_times, dtype=float), side="right") - 1
    return np.unique(np.concatenate([columns, kept[kept >= 0]]))


def _to_steps(table: np.ndarray) -> dict[str, np.ndarray]:
    """A leaf table as its steps: per leaf the first column and every column where the value changes."""
    change = np.ones(table.shape, dtype=bool)
    change[:, 1:] = table[:, 1:] != table[:, :-1]
    rows, cols = np.nonzero(change)
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=table.shape[0]))])
    return {"ptr": ptr.astype(np.int64), "col": cols.astype(np.min_scalar_type(table.shape[1])),
            "value": table[rows, cols]}


def _from_steps(ptr: np.ndarray, col: np.ndarray, value: np.ndarray, n_times: int) -> np.ndarray:
    """Inverse of :func:`_to_steps`: forward-fill each leaf's values over the grid (exact)."""
    rows = np.repeat(np.arange(ptr.size - 1), np.diff(ptr))
    index = np.zeros((ptr.size - 1, n_times), dtype=np.int32 if value.size < 2**31 else np.int64)
    index[rows, col] = np.arange(value.size)
    np.maximum.accumulate(index, axis=1, out=index)
    return value[index]


class CompactForest:
    """Flat-array random survival forest converted from a fitted scikit-survival forest.

    Build it with :meth:`from_sksurv` or :meth:`load`; the constructor takes the arrays as stored.

    Parameters
    ----------
    node_offsets : ndarray of int32, shape (n_trees + 1,)
        Start of each tree's nodes in the flat node arrays.
    feature, threshold, children_left, children_right, missing_left : ndarray, shape (n_nodes,)
        Split of each node; children are numbered within their tree, -1 at a leaf;
        ``missing_left`` is 1 where a missing value goes left.
    leaf_of_node : ndarray of int32, shape (n_nodes,)
        Row of each leaf in the leaf tables, -1 for a split node.
    times : ndarray, shape (n_times,)
        Ascending time grid of the leaf curves.
    survival, cum_hazard : ndarray, shape (n_leaves, n_times)
        Leaf Kaplan-Meier survival and Nelson-Aalen cumulative hazard on ``times``.
    risk : ndarray of float64, shape (n_leaves,)
        Leaf risk score: the cumulative hazard summed over all training event times.
    n_features_in : int
        Number of features.
    feature_names : sequence of str or None, default=None
        Feature names, when the forest was fitted on a DataFrame.
    metadata : dict or None, default=None
        JSON-serialisable facts stored with the forest (e.g. the wrapping estimator's parameters).
    n_threads : int or None, default=None
        Threads scoring a batch of at least 8,192 rows (each gets 4,096 rows or more); None uses
        every CPU. The predictions do not depend on it. It may be changed on a built forest.

    Attributes
    ----------
    n_trees_ : int
        Number of trees.
    times_ : ndarray
        The time grid (``times``).
    """

    def __init__(self, *, node_offsets, feature, threshold, children_left, children_right, missing_left,
                 leaf_of_node, times, survival, cum_hazard, risk, n_features_in: int,
                 feature_names: Sequence[str] | None = None, metadata: dict[str, Any] | None = None,
                 n_threads: int | None = None):
        self.arrays = {
            "node_offsets": np.asarray(node_offsets, dtype=np.int32),
            "feature": np.asarray(feature, dtype=np.int32),
            "threshold": np.asarray(threshold, dtype=np.float64),
            "children_left": np.asarray(children_left, dtype=np.int32),
            "children_right": np.asarray(children_right, dtype=np.int32),
            "missing_left": np.asarray(missing_left, dtype=np.uint8),
            "leaf_of_node": np.asarray(leaf_of_node, dtype=np.int32),
            "times": np.asarray(times, dtype=np.float64),
            "survival": np.asarray(survival),
            "cum_hazard": np.asarray(cum_hazard),
            "risk": np.asarray(risk, dtype=np.float64),
        }
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
    def from_sksurv(cls, forest: Any, *, max_times: int | None = None, keep_times: Sequence[float] = (),
                    dtype: str = "float64", feature_names: Sequence[str] | None = None) -> CompactForest:
        """Convert a fitted ``sksurv.ensemble.RandomSurvivalForest`` (``low_memory=False``).

        Parameters
        ----------
        forest : sksurv.ensemble.RandomSurvivalForest
            Fitted forest.
        max_times : int or None, default=None
            None keeps every distinct training event time (exact). An integer coarsens a longer
            grid to ``max_times`` event times evenly spaced in rank (first and last included),
            plus, for each of ``keep_times``, the last event time on or before it, so that
            curves at those times stay exact; elsewhere a curve reads the value at the kept
            event time before it. The risk score is unaffected.
        keep_times : sequence of float, default=()
            Times (e.g. the prediction horizons) whose curve values stay exact when coarsening.
        dtype : {"float64", "float32"}, default="float64"
            Storage type of the leaf curves. float32 rounds each leaf value with relative error
            at most 2**-24, so ensemble survival is off by at most 2**-24 (about 6e-8) and the
            cumulative hazard by 2**-24 times its largest value; sums run in float64.
        feature_names : sequence of str, optional
            Names to record; defaults to the forest's ``feature_names_in_`` when it has one.

        Returns
        -------
        CompactForest
        """
        if getattr(forest, "low_memory", False):
            raise ValueError("CompactForest: the forest was fitted with low_memory=True and holds no leaf curves; "
                             "refit with low_memory=False")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"CompactForest: dtype={dtype!r} is not one of {{float64, float32}}")
        is_event = np.asarray(forest.is_event_time_, dtype=bool)
        times = np.asarray(forest.unique_times_, dtype=np.float64)[is_event]
        columns = _grid_columns(times, max_times, keep_times)
        parts: dict[str, list[np.ndarray]] = {name: [] for name in _ARRAYS if name not in ("node_offsets", "times")}
        offsets, n_leaves = [0], 0
        for tree in forest.estimators_:
            t = tree.tree_
            leaf = t.children_left < 0
            leaf_rows = np.full(t.node_count, -1, dtype=np.int32)
            leaf_rows[leaf] = n_leaves + np.arange(leaf.sum(), dtype=np.int32)
            n_leaves += int(leaf.sum())
            chf = t.value[leaf][:, is_event, 0]
            for name in ("feature", "threshold", "children_left", "children_right"):
                parts[name].append(getattr(t, name))
            parts["missing_left"].append(t.missing_go_to_left)
            parts["leaf_of_node"].append(leaf_rows)
            parts["survival"].append(t.value[leaf][:, is_event, 1][:, columns].astype(dtype))
            parts["cum_hazard"].append(chf[:, columns].astype(dtype))
            parts["risk"].append(chf.sum(axis=1))
            offsets.append(offsets[-1] + t.node_count)
        names = feature_names if feature_names is not None else getattr(forest, "feature_names_in_", None)
        return cls(node_offsets=offsets, times=times[columns], n_features_in=forest.n_features_in_,
                   feature_names=names, **{name: np.concatenate(part) for name, part in parts.items()})

    def _matrix(self, X: Any) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in:
            raise ValueError(f"CompactForest: X has shape {X.shape}; expected (n_samples, {self.n_features_in})")
        # scikit-survival compares float32 features with float64 thresholds
        return np.ascontiguousarray(X, dtype=np.float32)

    def _compiled(self) -> list[Tree]:
        """scikit-learn ``Tree`` objects rebuilt from the split arrays (no leaf values), built once.

        Also sets the row sort keys of :meth:`_sum_compiled`: the used features, finest first (most
        distinct thresholds in the forest), as ``np.lexsort`` takes its primary key last.
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
        """Leaf rows reached by the (few) rows of float32 ``X`` in every tree, all trees at once in numpy."""
        n, n_trees = X.shape[0], self.n_trees_
        feature, threshold, leaf_of_node = self.arrays["feature"], self.arrays["threshold"], self.arrays["leaf_of_node"]
        out = np.empty(n_trees * n, dtype=np.int32)
        pos = np.arange(n_trees * n)
        nodes = np.repeat(self._roots, n)
        rows = np.tile(np.arange(n, dtype=np.int64) * X.shape[1], n_trees)
        flat_x = X.reshape(-1)
        while pos.size:
            feat = feature[nodes]
            done = feat < 0
            if done.any():
                out[pos[done]] = leaf_of_node[nodes[done]]
                keep = ~done
                pos, nodes, rows, feat = pos[keep], nodes[keep], rows[keep], feat[keep]
            x = flat_x[rows + feat]
            left = x <= threshold[nodes]  # float32 against float64: compared in float64
            nan = np.isnan(x)
            if nan.any():
                left[nan] = self.arrays["missing_left"][nodes[nan]].astype(bool)
            nodes = np.where(left, self._left[nodes], self._right[nodes])
        return out.reshape(n_trees, n)

    def apply(self, X: Any) -> np.ndarray:
        """Leaf reached by every row in every tree (numpy under 64 rows, else ``Tree.apply`` per tree).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray of int32, shape (n_trees, n_samples)
            Row of the reached leaf in the leaf tables.
        """
        X = self._matrix(X)
        if X.shape[0] < _COMPILED_FROM_ROWS:
            return self._route(X)
        offsets, leaf_of_node = self.arrays["node_offsets"], self.arrays["leaf_of_node"]
        return np.stack([leaf_of_node[offsets[t] + tree.apply(X)] for t, tree in enumerate(self._compiled())])

    def _rows(self, parts: Sequence[tuple[str, np.ndarray | None]], leaves: np.ndarray) -> np.ndarray:
        """Rows ``leaves`` of the leaf tables in ``parts`` (name, columns or None for all), side by side."""
        return np.column_stack([self.arrays[name][leaves] if columns is None else self.arrays[name][leaves][:, columns]
                                for name, columns in parts])

    def _node_tables(self, parts: Sequence[tuple[str, np.ndarray | None]]) -> list[np.ndarray]:
        """Per tree, the values of :meth:`_rows` indexed by node (zeros at split nodes), cached.

        ``Tree.apply``'s output then gathers them directly. Building one costs about as much as
        routing a thousand rows, hence the cache (at most 8 column sets, then it starts over).
        """
        key = tuple((name, None if columns is None else tuple(columns.tolist())) for name, columns in parts)
        tables = self._tables.get(key)
        if tables is None:
            leaf_of_node, offsets = self.arrays["leaf_of_node"], self.arrays["node_offsets"]
            leaf = leaf_of_node >= 0
            rows = self._rows(parts, leaf_of_node[leaf])
            table = np.zeros((leaf.size, rows.shape[1]), dtype=rows.dtype)
            table[leaf] = rows
            tables = [table[start:stop] for start, stop in zip(offsets[:-1], offsets[1:], strict=True)]
            if len(self._tables) >= _CACHED_TABLES:
                self._tables.clear()
            self._tables[key] = tables
        return tables

    def _sum_compiled(self, X: np.ndarray, parts: Sequence[tuple[str, np.ndarray | None]]) -> np.ndarray:
        """Sum over trees of the values of :meth:`_rows` at the leaves reached by float32 ``X``."""
        trees = self._compiled()
        tables = self._node_tables(parts)
        order = np.lexsort(X[:, self._sort_keys].T) if self._sort_keys.size else np.arange(X.shape[0])
        X = X[order]
        total = np.zeros((X.shape[0], tables[0].shape[1]), dtype=np.float64)

        def add(start: int, stop: int) -> None:
            # one thread owns these rows and adds their trees in forest order
            block, out = X[start:stop], total[start:stop]
            for tree, table in zip(trees, tables, strict=True):
                out += table.take(tree.apply(block), axis=0)

        n_parts = max(1, min(self.n_threads, X.shape[0] // _ROWS_PER_THREAD))
        edges = np.linspace(0, X.shape[0], n_parts + 1).astype(np.intp).tolist()
        if n_parts == 1:  # most batches: no thread to start
            add(0, X.shape[0])
        else:
            with ThreadPoolExecutor(n_parts) as pool:
                list(pool.map(add, edges[:-1], edges[1:]))
        unsorted = np.empty_like(total)
        unsorted[order] = total
        return unsorted

    def _mean(self, X: Any, parts: Sequence[tuple[str, np.ndarray | None]]) -> np.ndarray:
        """Ensemble mean of the leaf values in ``parts``, shape (n_samples, n_columns)."""
        # summed tree by tree in forest order, then one division: the same operations as
        # scikit-survival's serial prediction, hence the same bits (cumsum is sequential too)
        X = self._matrix(X)
        if X.shape[0] < _COMPILED_FROM_ROWS:
            leaves = self._route(X)
            values = self._rows(parts, leaves.reshape(-1))
            values = values.reshape(*leaves.shape, values.shape[1])
            total = np.cumsum(values, axis=0, dtype=np.float64)[-1]
        else:
            total = self._sum_compiled(X, parts)
        total /= self.n_trees_
        return total

    def predict(self, X: Any) -> np.ndarray:
        """Risk score: ensemble cumulative hazard summed over the training event times.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray, shape (n_samples,)
        """
        return self._mean(X, [("risk", None)])[:, 0]

    def _curves(self, name: str, X: Any, return_array: bool) -> Any:
        arr = self._mean(X, [(name, None)])
        if return_array:
            return arr
        return np.array([StepFunction(self.times_, row) for row in arr])

    def predict_survival_function(self, X: Any, return_array: bool = False) -> Any:
        """Ensemble survival on :attr:`times_` (array) or as step functions.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        return_array : bool, default=False
            Return an (n_samples, n_times) array instead of ``StepFunction`` objects.

        Returns
        -------
        ndarray
        """
        return self._curves("survival", X, return_array)

    def predict_cumulative_hazard_function(self, X: Any, return_array: bool = False) -> Any:
        """Ensemble cumulative hazard on :attr:`times_` (array) or as step functions.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        return_array : bool, default=False
            Return an (n_samples, n_times) array instead of ``StepFunction`` objects.

        Returns
        -------
        ndarray
        """
        return self._curves("cum_hazard", X, return_array)

    def _columns(self, times: Any) -> tuple[np.ndarray, np.ndarray]:
        """Grid column holding the step value at each of ``times``, and which times precede the grid."""
        index = np.searchsorted(self.times_, np.atleast_1d(np.asarray(times, dtype=float)), side="right") - 1
        return np.maximum(index, 0), index < 0

    def predict_at(self, X: Any, times: Any, kind: str = "survival") -> np.ndarray:
        """Ensemble survival or cumulative hazard at ``times`` as right-continuous steps.

        Only the requested columns of the leaf tables are averaged, so a few horizons cost
        little more than the risk score.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        times : array-like, shape (n_times,)
        kind : {"survival", "cum_hazard"}, default="survival"
            Survival is 1 and the cumulative hazard 0 before the first grid time.

        Returns
        -------
        ndarray, shape (n_samples, n_times)
        """
        columns, before = self._columns(times)
        out = self._mean(X, [(kind, columns)])
        out[:, before] = 1.0 if kind == "survival" else 0.0
        return out

    def predict_with_survival(self, X: Any, times: Any) -> tuple[np.ndarray, np.ndarray]:
        """Risk score and survival at ``times`` from a single routing of ``X`` (what a scorer needs).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        times : array-like, shape (n_times,)

        Returns
        -------
        risk : ndarray, shape (n_samples,)
            As :meth:`predict`.
        survival : ndarray, shape (n_samples, n_times)
            As :meth:`predict_at` with ``kind="survival"``.
        """
        columns, before = self._columns(times)
        both = self._mean(X, [("risk", None), ("survival", columns)])
        survival = np.ascontiguousarray(both[:, 1:])
        survival[:, before] = 1.0
        return np.ascontiguousarray(both[:, 0]), survival

    def save(self, directory: str | Path) -> dict[str, Any]:
        """Write ``forest.npz`` (arrays) and ``forest.json`` (metadata) into ``directory``.

        The leaf curves are written as steps (the first value and each change, with its grid
        column) and forward-filled on load, which restores them exactly; ``np.savez_compressed``
        is used and no array holds Python objects.

        Parameters
        ----------
        directory : str or path
            Created if missing.

        Returns
        -------
        dict
            Record to keep with the model: format, version, file names and their SHA-256.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays = {name: value for name, value in self.arrays.items() if name not in _CURVES}
        for name in _CURVES:
            arrays.update({f"{name}_{part}": v for part, v in _to_steps(self.arrays[name]).items()})
        np.savez_compressed(directory / _NPZ, **arrays)
        meta = {"format": FORMAT, "version": FORMAT_VERSION, "n_trees": self.n_trees_,
                "n_features_in": self.n_features_in, "feature_names": self.feature_names,
                "n_times": int(self.times_.size), "dtype": str(self.arrays["survival"].dtype),
                "metadata": self.metadata}
        (directory / _JSON).write_text(json.dumps(meta, indent=2) + "\n")
        return {"format": FORMAT, "version": FORMAT_VERSION, "files": {
            name: {"sha256": _sha256(directory / name)} for name in (_NPZ, _JSON)}}

    @classmethod
    def load(cls, directory: str | Path, record: dict[str, Any]) -> CompactForest:
        """Read a forest written by :meth:`save`, refusing files whose SHA-256 differs from ``record``.

        Parameters
        ----------
        directory : str or path
        record : dict
            The record :meth:`save` returned.

        Returns
        -------
        CompactForest

        Raises
        ------
        ForestFileError
            A file is missing or altered, or the record is of another format or version.
        """
        directory = Path(directory)
        if record.get("format") != FORMAT or record.get("version") != FORMAT_VERSION:
            raise ForestFileError(f"CompactForest load: record format {record.get('format')!r} version "
                                  f"{record.get('version')!r} is not {FORMAT!r} version {FORMAT_VERSION}")
        for name in (_NPZ, _JSON):
            if not (directory / name).is_file():
                raise ForestFileError(f"CompactForest load: {directory / name}: file is missing")
        for name in (_NPZ, _JSON):
            path = directory / name
            if _sha256(path) != record.get("files", {}).get(name, {}).get("sha256"):
                raise ForestFileError(f"CompactForest load: {path}: sha256 differs from the record; "
                                      "the file was altered or belongs to another model")
        meta = json.loads((directory / _JSON).read_text())
        with np.load(directory / _NPZ, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in _ARRAYS if name not in _CURVES}
            for name in _CURVES:
                parts = (npz[f"{name}_{part}"] for part in ("ptr", "col", "value"))
                arrays[name] = _from_steps(*parts, arrays["times"].size)
        return cls(**arrays, n_features_in=meta["n_features_in"], feature_names=meta["feature_names"],
                   metadata=meta["metadata"])
