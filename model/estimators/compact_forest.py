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
distinct training time, censored ones included, as ``unique_times_`` and flags the event times in
``is_event_time_``. At a censored-only time no leaf has an event, so its cumulative hazard adds 0
and its survival factor is exactly 1: every leaf curve, hence the ensemble curve, at a censored
time equals its value at the preceding event time (0 or 1 before the first one). The default grid
is therefore the distinct EVENT times; as right-continuous step functions the curves are the same
at every time point (checked bit for bit on every leaf in the tests). ``max_times`` coarsens the
grid further (see :meth:`CompactForest.from_sksurv`); the risk score keeps using all event times.

**Routing**: from 64 rows on, each tree routes the rows with scikit-learn's compiled ``Tree.apply``
on ``Tree`` objects rebuilt from the stored arrays (``Tree.__setstate__``, no pickle involved);
fewer rows run through all trees at once in numpy, level by level. Features are compared in
float32, as scikit-survival does. Leaf values are then
added tree by tree in the forest's order and divided by the number of trees, which reproduces
scikit-survival's serial prediction bit for bit.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
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
_PAIRS_PER_CHUNK = 1 << 20
_COMPILED_FROM_ROWS = 64


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

    Attributes
    ----------
    n_trees_ : int
        Number of trees.
    times_ : ndarray
        The time grid (``times``).
    """

    def __init__(self, *, node_offsets, feature, threshold, children_left, children_right, missing_left,
                 leaf_of_node, times, survival, cum_hazard, risk, n_features_in: int,
                 feature_names: Sequence[str] | None = None, metadata: dict[str, Any] | None = None):
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
            parts["feature"].append(t.feature)
            parts["threshold"].append(t.threshold)
            parts["children_left"].append(t.children_left)
            parts["children_right"].append(t.children_right)
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
        return np.ascontiguousarray(X, dtype=np.float32).astype(np.float64)

    def _compiled(self) -> list[Tree]:
        """scikit-learn ``Tree`` objects rebuilt from the split arrays (no leaf values), built once."""
        if self._trees is None:
            a, offsets = self.arrays, self.arrays["node_offsets"]
            self._trees = []
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
                self._trees.append(tree)
        return self._trees

    def apply(self, X: Any) -> np.ndarray:
        """Leaf reached by every row in every tree.

        From 64 rows on, each tree routes the rows with scikit-learn's compiled ``Tree.apply``
        (trees rebuilt from the stored arrays on first use); fewer rows go through all trees at
        once in numpy, which avoids one call per tree.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)

        Returns
        -------
        ndarray of int32, shape (n_trees, n_samples)
            Row of the reached leaf in the leaf tables.
        """
        X = self._matrix(X)
        n, n_trees = X.shape[0], self.n_trees_
        if n >= _COMPILED_FROM_ROWS:
            X32, offsets = X.astype(np.float32), self.arrays["node_offsets"]
            return np.stack([self.arrays["leaf_of_node"][offsets[t] + tree.apply(X32)]
                             for t, tree in enumerate(self._compiled())])
        feature, threshold = self.arrays["feature"], self.arrays["threshold"]
        missing_left, leaf_of_node = self.arrays["missing_left"].astype(bool), self.arrays["leaf_of_node"]
        out = np.empty((n, n_trees), dtype=np.int32)
        flat_out = out.reshape(-1)
        chunk = max(1, _PAIRS_PER_CHUNK // n_trees)
        for start in range(0, n, chunk):
            block = X[start:start + chunk]
            m = block.shape[0]
            flat_x = block.reshape(-1)
            pos = np.arange(start * n_trees, (start + m) * n_trees)
            nodes = np.tile(self._roots, m)
            rows = np.repeat(np.arange(m, dtype=np.int64) * X.shape[1], n_trees)
            while pos.size:
                feat = feature[nodes]
                done = feat < 0
                if done.any():
                    flat_out[pos[done]] = leaf_of_node[nodes[done]]
                    keep = ~done
                    pos, nodes, rows, feat = pos[keep], nodes[keep], rows[keep], feat[keep]
                x = flat_x[rows + feat]
                left = x <= threshold[nodes]
                nan = np.isnan(x)
                if nan.any():
                    left[nan] = missing_left[nodes[nan]]
                nodes = np.where(left, self._left[nodes], self._right[nodes])
        return np.ascontiguousarray(out.T)

    def _average(self, table: np.ndarray, leaves: np.ndarray, columns: np.ndarray | None = None) -> np.ndarray:
        # summed tree by tree in forest order, then one division: the same operations as
        # scikit-survival's serial prediction, hence the same bits (cumsum is sequential too)
        if columns is not None:
            table = np.ascontiguousarray(table[:, columns])  # once: then each tree is a plain row gather

        def gather(tree_leaves: np.ndarray) -> np.ndarray:
            return table[tree_leaves]

        if leaves.shape[1] < _COMPILED_FROM_ROWS:
            total = np.cumsum(gather(leaves), axis=0, dtype=np.float64)[-1]
        else:
            total = np.zeros((leaves.shape[1], *gather(leaves[0, :1]).shape[1:]), dtype=np.float64)
            for tree_leaves in leaves:
                total += gather(tree_leaves)
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
        return self._average(self.arrays["risk"], self.apply(X))

    def _curves(self, name: str, X: Any, return_array: bool) -> Any:
        arr = self._average(self.arrays[name], self.apply(X))
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
        return self._at(self.apply(X), times, kind)

    def _at(self, leaves: np.ndarray, times: Any, kind: str) -> np.ndarray:
        index = np.searchsorted(self.times_, np.atleast_1d(np.asarray(times, dtype=float)), side="right") - 1
        out = self._average(self.arrays[kind], leaves, np.maximum(index, 0))
        out[:, index < 0] = 1.0 if kind == "survival" else 0.0
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
        leaves = self.apply(X)
        return self._average(self.arrays["risk"], leaves), self._at(leaves, times, "survival")

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
