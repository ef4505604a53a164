"""Concordance indices in O(n log n): Harrell's, Uno's (IPCW) and Wolbers' competing-risks C.

scikit-survival compares every event with every later sample (O(n²) time, and memory for the
pairwise version of Wolbers' C), which at a registry's size costs more than the fits being
validated. Here each sample's risk is ranked once and a Fenwick (binary indexed) tree counts, for
every event, the later samples below, tied with and above its score while the samples are swept in
time order. The definitions are scikit-survival's to the bit: the same comparable pairs (a censored
sample at an event's time is comparable, a tied event is not), ties in score within ``tied_tol``
counting one half, and Uno's weighted sums accumulated in the order of ``numpy.argsort(time)``, as
scikit-survival adds them, so that the figures are identical, not merely close
(``tests/training/test_concordance.py``).
"""

from __future__ import annotations

import numpy as np
from numba import njit
from sksurv.exceptions import NoComparablePairException

__all__ = ["comparable_counts", "concordance_from_counts", "wolbers_counts"]


@njit(cache=True, nogil=True)
def _add(tree: np.ndarray, rank: int) -> None:
    k = rank + 1
    while k < tree.size:
        tree[k] += 1
        k += k & -k


@njit(cache=True, nogil=True)
def _below(tree: np.ndarray, rank: int) -> int:
    """How many inserted samples have a rank below ``rank``."""
    total, k = 0, rank
    while k > 0:
        total += tree[k]
        k -= k & -k
    return total


@njit(cache=True, nogil=True)
def _tie_bounds(risk: np.ndarray, levels: np.ndarray, tied_tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, the first level not clearly below its risk and the first level clearly above it.

    "Clearly below" is ``risk - level > tied_tol`` and "clearly above" ``level - risk > tied_tol``, each
    computed as scikit-survival computes ``|est - est_i|`` (a rounded difference, monotone in the level),
    so levels ``[lower, upper)`` are exactly the ties and levels below ``lower`` the concordant ones.
    """
    n, m = risk.size, levels.size
    lower, upper = np.empty(n, np.int64), np.empty(n, np.int64)
    for i in range(n):
        r = risk[i]
        a, b = 0, m
        while a < b:
            mid = (a + b) // 2
            if r - levels[mid] > tied_tol:
                a = mid + 1
            else:
                b = mid
        lower[i] = a
        a, b = 0, m
        while a < b:
            mid = (a + b) // 2
            if levels[mid] - r > tied_tol:
                b = mid
            else:
                a = mid + 1
        upper[i] = a
    return lower, upper


@njit(cache=True, nogil=True)
def _sweep(order: np.ndarray, time: np.ndarray, before: np.ndarray, query: np.ndarray, after: np.ndarray,
           rank: np.ndarray, lower: np.ndarray, upper: np.ndarray, levels: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Count, for every queried sample, the samples of later times (and of its own time if ``before``) below,
    tied with and in all, sweeping from the last time to the first.

    At each time the ``before`` samples enter the tree, the ``query`` samples are counted against it, and
    the ``after`` samples enter it for the earlier times.
    """
    n = order.size
    tree = np.zeros(levels + 1, np.int64)
    concordant, tied, comparable = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, np.int64)
    counted = np.zeros(n, np.bool_)
    end = n
    while end > 0:
        start = end - 1
        while start > 0 and time[order[start - 1]] == time[order[end - 1]]:
            start -= 1
        for p in range(start, end):
            if before[order[p]]:
                _add(tree, rank[order[p]])
        for p in range(start, end):
            i = order[p]
            if query[i]:
                below = _below(tree, lower[i])
                concordant[p] = below
                tied[p] = _below(tree, upper[i]) - below
                comparable[p] = _below(tree, levels)
                counted[p] = start < n - 1  # scikit-survival never visits a last sample standing alone
        for p in range(start, end):
            if after[order[p]]:
                _add(tree, rank[order[p]])
        end = start
    return concordant, tied, comparable, counted


def comparable_counts(event: np.ndarray, time: np.ndarray, risk: np.ndarray, tied_tol: float = 1e-8
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per event, the comparable later samples with a lower, a tied and any score (Harrell's pairs).

    Parameters
    ----------
    event : ndarray of bool, shape (n_samples,)
    time : ndarray of float, shape (n_samples,)
    risk : ndarray of float, shape (n_samples,)
        Finite risk scores (higher = earlier event).
    tied_tol : float, default=1e-8
        Scores within this distance are tied (scikit-survival's rule).

    Returns
    -------
    order : ndarray of int
        ``numpy.argsort(time)``; the other arrays are indexed by position in it.
    concordant, tied, comparable : ndarray of int
        For the event at each position: comparable samples with a lower score (beyond the tolerance),
        with a tied score, and in all.
    counted : ndarray of bool
        Positions scikit-survival visits (events; a last sample on its own is not visited).
    """
    order = np.argsort(time)  # scikit-survival's order (not a stable sort): Uno's sums follow it
    levels = np.unique(risk)
    lower, upper = _tie_bounds(risk, levels, float(tied_tol))
    event = np.ascontiguousarray(event, dtype=bool)
    # a censored sample at an event's time is comparable with it, a tied event is not
    return (order, *_sweep(order, np.ascontiguousarray(time, dtype=float), ~event, event, event,
                           np.searchsorted(levels, risk), lower, upper, levels.size))


def concordance_from_counts(counts: tuple[np.ndarray, ...], weights: np.ndarray | None = None) -> float:
    """C = sum of w (concordant + tied / 2) / sum of w comparable, as scikit-survival accumulates it.

    Parameters
    ----------
    counts : tuple
        The output of :func:`comparable_counts`.
    weights : ndarray, shape (n_samples,), optional
        Per-sample weight of each event (Uno's squared inverse censoring probabilities); default 1.

    Returns
    -------
    float
        ``nan`` when no pair is comparable although events were visited.

    Raises
    ------
    NoComparablePairException
        A ValueError, when no event is visited (no comparable pairs), with scikit-survival's message.
    """
    order, concordant, tied, comparable, counted = counts
    if not counted.any():
        raise NoComparablePairException("Data has no comparable pairs, cannot estimate concordance index.")
    w = np.ones(order.size) if weights is None else np.asarray(weights, dtype=float)[order]
    w, concordant, tied, comparable = w[counted], concordant[counted], tied[counted], comparable[counted]
    # running sums in scikit-survival's order: the same additions, so the same last bits
    numerator = np.cumsum(w * concordant + 0.5 * w * tied)[-1]
    denominator = np.cumsum(w * comparable)[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(numerator) / np.float64(denominator))


def wolbers_counts(time: np.ndarray, case: np.ndarray, censored: np.ndarray, competing: np.ndarray,
                   marker: np.ndarray) -> tuple[int, int, int]:
    """Usable pairs of Wolbers' C: (case above the other, marker tied, usable), summed over the cases.

    A pair (i, j) is usable when i is a case and j is known event-free of the cause at ``T_i``: a later
    sample, a sample censored at ``T_i`` or a competing event at or before ``T_i``; markers are compared
    exactly (no tolerance), as in :func:`~cnslrisk.training.pattern_validation.wolbers_c`.

    Parameters
    ----------
    time : ndarray of float, shape (n_samples,)
    case, censored, competing : ndarray of bool, shape (n_samples,)
        Cases (the cause by the horizon), censored samples, events of another cause.
    marker : ndarray of float, shape (n_samples,)
        Finite markers (higher = the cause more likely early).

    Returns
    -------
    concordant, tied, usable : int
    """
    levels = np.unique(marker)
    rank = np.searchsorted(levels, marker)  # markers are compared exactly: ties are the same level
    time = np.ascontiguousarray(time, dtype=float)
    nobody = np.zeros(time.size, dtype=bool)
    # later samples, and those censored at the case's time; then, time reversed, competing events at or before it
    later = _sweep(np.argsort(time), time, censored, case, ~censored, rank, rank, rank + 1, levels.size)
    earlier = _sweep(np.argsort(-time), -time, competing, case, nobody, rank, rank, rank + 1, levels.size)
    return tuple(int(a.sum() + b.sum()) for a, b in zip(later[:3], earlier[:3], strict=True))
