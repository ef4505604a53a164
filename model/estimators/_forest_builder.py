"""Grow a random survival forest as scikit-survival's ``RandomSurvivalForest`` does, straight into a CompactForest.

The random numbers are scikit-survival's (through scikit-learn's forest): one ``randint(2**31 - 1)``
per tree from ``check_random_state(random_state)``, that seed's bootstrap draw
(``_generate_sample_indices``: ``max_samples`` draws with replacement) and, from a fresh
``RandomState(seed)``, the splitter's ``rand_r`` state. Trees are grown by
:func:`._logrank_tree.grow_tree` on threads (it releases the GIL) and assembled in forest order, so
the forest does not depend on ``n_jobs``. What is kept per tree is what the artifact stores (splits
and leaf steps) plus the tree's in-bag counts, whose centred Gram matrix is the forest's
infinitesimal-jackknife band.
"""

from __future__ import annotations

import math
import numbers
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from joblib import effective_n_jobs
from sklearn.ensemble._bootstrap import _get_n_samples_bootstrap
from sklearn.utils import check_random_state
from sksurv.metrics import concordance_index_censored

from ._logrank_tree import apply_tree, grow_tree
from .compact_forest import CompactForest

__all__ = ["TreeParams", "grow_forest"]

_MAX_INT = np.iinfo(np.int32).max
_RAND_R_MAX = 2147483647


@dataclass(frozen=True)
class TreeParams:
    """scikit-survival's tree parameters, as ``SurvivalTree._check_params`` resolves them."""

    min_samples_leaf: int | float = 3
    min_samples_split: int | float = 6
    max_features: int | float | str | None = "sqrt"
    max_depth: int | None = None

    def resolve(self, n_samples: int, n_features: int) -> tuple[int, int, int, int]:
        """(max_features, min_samples_leaf, min_samples_split, max_depth) as integers."""
        leaf = self.min_samples_leaf
        leaf = leaf if isinstance(leaf, numbers.Integral) else int(math.ceil(leaf * n_samples))
        split = self.min_samples_split
        split = split if isinstance(split, numbers.Integral) else max(2, int(math.ceil(split * n_samples)))
        f = self.max_features
        if f == "sqrt":
            features = max(1, int(np.sqrt(n_features)))
        elif f == "log2":
            features = max(1, int(np.log2(n_features)))
        elif f is None:
            features = n_features
        elif isinstance(f, numbers.Integral):
            features = int(f)
        else:
            features = max(1, int(f * n_features))
        if not 0 < features <= n_features:
            raise ValueError(f"parameter max_features must be in (0, n_features={n_features}]; got {f!r}")
        depth = 2**31 - 1 if self.max_depth is None else int(self.max_depth)
        return features, int(leaf), max(int(split), 2 * int(leaf)), depth


def grow_forest(X: np.ndarray, event: np.ndarray, time: np.ndarray, *, n_estimators: int, params: TreeParams,
                bootstrap: bool = True, max_samples: int | float | None = None, random_state=None,
                n_jobs: int | None = None, oob_score: bool = False,
                feature_names=None) -> tuple[CompactForest, float | None]:
    """Grow the forest on float32 ``X`` (no NaN) and return it with its out-of-bag Harrell's C (or None).

    The out-of-bag prediction of a sample is the mean risk score of the trees it was not drawn
    for, as scikit-survival's ``oob_score_``; samples every tree drew are left out with its warning.
    """
    n, p = X.shape
    times, time_index = np.unique(time, return_inverse=True)
    is_event = np.zeros(times.size, dtype=bool)
    is_event[time_index[event]] = True
    event_column = np.where(is_event, np.cumsum(is_event) - 1, -1).astype(np.int64)
    n_event_times = int(is_event.sum())
    n_draws = _get_n_samples_bootstrap(n_samples=n, max_samples=max_samples, sample_weight=None) if bootstrap else n
    max_features, leaf, split, depth = params.resolve(n, p)
    seeds = check_random_state(random_state).randint(_MAX_INT, size=n_estimators)
    time_index = time_index.astype(np.int64)
    event = np.asarray(event, dtype=bool)

    local = threading.local()

    def one(seed: int) -> tuple:
        # scikit-learn draws the resample and the splitter's state from two fresh RandomState(seed);
        # reseeding one generator per thread gives the same numbers (a new RandomState costs 15x more)
        rng = getattr(local, "rng", None) or np.random.RandomState()
        local.rng = rng
        rng.seed(seed)
        state = rng.randint(0, _RAND_R_MAX)
        rng.seed(seed)
        counts = np.bincount(rng.randint(0, n, n_draws), minlength=n) if bootstrap else np.ones(n, dtype=np.int64)
        tree = grow_tree(X, time_index, event, counts.astype(np.float64), event_column, n_event_times,
                         max_features, leaf, split, depth, state)
        oob = None
        if oob_score:
            rows = np.flatnonzero(counts == 0)
            nodes = apply_tree(X, rows, tree[0], tree[3], tree[1], tree[2])
            leaf_index = np.cumsum(tree[1] < 0) - 1
            oob = rows, tree[9][leaf_index[nodes]]
        return tree, counts.astype(np.uint16), oob

    workers = max(1, min(effective_n_jobs(n_jobs), n_estimators))
    if workers == 1:
        grown = [one(int(seed)) for seed in seeds]
    else:
        with ThreadPoolExecutor(workers) as pool:
            grown = list(pool.map(one, (int(seed) for seed in seeds)))
    forest = _assemble(grown, times[is_event], p, feature_names)
    if bootstrap:
        forest._inbag_counts = np.stack([counts for _, counts, _ in grown])
    score = _oob_score(grown, event, time) if oob_score else None
    return forest, score


def _assemble(grown: list[tuple], times: np.ndarray, n_features: int, feature_names) -> CompactForest:
    """One CompactForest from the trees' arrays, in forest order."""
    parts: dict[str, list[np.ndarray]] = {name: [] for name in (
        "feature", "children_left", "children_right", "threshold", "missing_left", "leaf_of_node", "step_ptr",
        "step_col", "step_chf", "step_surv", "risk")}
    offsets, n_leaves, n_steps = [0], 0, 0
    for (feature, left, right, threshold, missing, ptr, col, chf, surv, risk, _), _, _ in grown:
        leaf = left < 0
        leaf_of_node = np.full(left.size, -1, dtype=np.int32)
        leaf_of_node[leaf] = n_leaves + np.arange(leaf.sum(), dtype=np.int32)
        for name, value in (("feature", feature), ("children_left", left), ("children_right", right),
                            ("threshold", threshold), ("missing_left", missing), ("leaf_of_node", leaf_of_node),
                            ("step_ptr", n_steps + ptr[1:]), ("step_col", col), ("step_chf", chf),
                            ("step_surv", surv), ("risk", risk)):
            parts[name].append(value)
        n_leaves += int(leaf.sum())
        n_steps += int(ptr[-1])
        offsets.append(offsets[-1] + left.size)
    arrays = {name: np.concatenate(part) for name, part in parts.items()}
    arrays["step_ptr"] = np.concatenate([[0], arrays["step_ptr"]])
    return CompactForest(node_offsets=offsets, times=times, n_features_in=n_features, feature_names=feature_names,
                         **arrays)


def _oob_score(grown: list[tuple], event: np.ndarray, time: np.ndarray) -> float:
    import warnings

    predictions, n_predictions = np.zeros(event.size), np.zeros(event.size)
    for _, _, (rows, risk) in grown:
        predictions[rows] += risk
        n_predictions[rows] += 1
    if (n_predictions == 0).any():
        warnings.warn("Some inputs do not have OOB scores. This probably means too few trees were used to compute "
                      "any reliable oob estimates.", UserWarning, stacklevel=3)
        n_predictions[n_predictions == 0] = 1
    return float(concordance_index_censored(event, time, predictions / n_predictions)[0])
