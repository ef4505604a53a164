"""Log-rank survival trees grown as scikit-survival grows them, keeping only each leaf's steps (numba).

scikit-survival's ``SurvivalTree`` (0.28) is scikit-learn's depth-first builder and best splitter
with a log-rank criterion that stores a cumulative hazard and a survival curve over EVERY distinct
training time in EVERY node; its risk-set counter also walks that whole grid for every sample of
every node. :func:`grow_tree` makes the same trees with none of that:

- the same random draws: scikit-learn's ``rand_r`` (xorshift) seeded like the splitter, the same
  Fisher-Yates feature sampling with known and newly found constant features, the same depth-first
  order, stopping rules, split positions (``FEATURE_THRESHOLD`` ties in float32) and thresholds;
- the same log-rank statistic, computed with the same floating-point operations in the same order
  on the node's own distinct times (the grid's other times add exact zeros), so ties between
  candidate splits resolve as in scikit-survival;
- at a leaf, the Nelson-Aalen cumulative hazard and Kaplan-Meier survival only where the leaf's
  in-bag samples have an event (as steps on the forest's event-time grid), and the leaf's risk
  score, summed over the event-time grid in order as scikit-survival's low-memory trees do.

Memory is linear in the number of samples; time per node is its samples times its distinct times
(once per candidate split position of the features drawn). Missing values are not supported (the
model's encoder refuses them).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["grow_tree", "apply_tree"]

_RAND_R_MAX = 2147483647
_FEATURE_THRESHOLD = np.float32(1e-7)
_MASK32 = 0xFFFFFFFF


@njit(cache=True, nogil=True)
def _rand_int(low: int, high: int, state: np.ndarray) -> int:
    """scikit-learn's ``rand_int``: ``low + our_rand_r(state) % (high - low)`` on a uint32 state."""
    s = state[0]
    if s == 0:
        s = 1
    s = (s ^ (s << 13)) & _MASK32
    s = s ^ (s >> 17)
    s = (s ^ (s << 5)) & _MASK32
    state[0] = s
    return low + (s % (_RAND_R_MAX + 1)) % (high - low)


@njit(cache=True, nogil=True)
def _logrank(at_risk_left: float, left_at_risk_delta: np.ndarray, left_events: np.ndarray,
             total_at_risk: np.ndarray, total_events: np.ndarray, n_times: int) -> float:
    """|log-rank z| of the left group, scikit-survival's ``proxy_impurity_improvement`` operation by operation."""
    numer = 0.0
    denom = 0.0
    for k in range(n_times):
        if at_risk_left == 0.0:
            break  # every later term is an exact zero
        n_k = total_at_risk[k]
        d_k = total_events[k]
        ratio = at_risk_left / n_k
        numer += left_events[k] - d_k * ratio
        if n_k > 1.0:
            v = (n_k - d_k) / (n_k - 1.0) * d_k
            denom += ratio * (1.0 - ratio) * v
        at_risk_left -= left_at_risk_delta[k]
    if denom != 0.0:
        return abs(numer / np.sqrt(denom))
    return -np.inf


@njit(cache=True, nogil=True)
def _node_times(ids: np.ndarray, time_index: np.ndarray, event: np.ndarray, weight: np.ndarray,
                local_time: np.ndarray, times_out: np.ndarray, at_risk: np.ndarray, events: np.ndarray) -> int:
    """Distinct times of the samples ``ids`` (ascending), their weighted at-risk and event counts.

    Sets ``local_time[s]`` to each sample's rank among those times; returns how many there are.
    The counts are sums of integer weights, hence exact in any order.
    """
    order = np.argsort(time_index[ids])
    m = 0
    last = -1
    for j in range(ids.size):
        s = ids[order[j]]
        t = time_index[s]
        if t != last:
            times_out[m] = t
            at_risk[m] = 0.0
            events[m] = 0.0
            m += 1
            last = t
        local_time[s] = m - 1
        at_risk[m - 1] += weight[s]
        if event[s]:
            events[m - 1] += weight[s]
    for k in range(m - 2, -1, -1):
        at_risk[k] += at_risk[k + 1]
    return m


@njit(cache=True, nogil=True)
def _leaf(ids: np.ndarray, time_index: np.ndarray, event: np.ndarray, weight: np.ndarray, event_column: np.ndarray,
          n_event_times: int, local_time: np.ndarray, times_buf: np.ndarray, at_risk: np.ndarray, events: np.ndarray,
          col_out: np.ndarray, chf_out: np.ndarray, surv_out: np.ndarray, offset: int) -> tuple[int, float]:
    """Write the leaf's steps from ``offset``; return the new offset and the leaf's risk score."""
    m = _node_times(ids, time_index, event, weight, local_time, times_buf, at_risk, events)
    chf = 0.0
    surv = 1.0
    first = offset
    for k in range(m):
        if events[k] > 0.0:
            ratio = events[k] / at_risk[k]
            chf += ratio
            surv *= 1.0 - ratio
            col_out[offset] = event_column[times_buf[k]]
            chf_out[offset] = chf
            surv_out[offset] = surv
            offset += 1
    risk = 0.0
    if offset > first:  # the cumulative hazard summed over every event time, in order
        j = first
        value = 0.0
        for c in range(col_out[first], n_event_times):
            while j < offset and col_out[j] == c:
                value = chf_out[j]
                j += 1
            risk += value
    return offset, risk


@njit(cache=True, nogil=True)
def _push(stack: np.ndarray, top: int, start: int, end: int, depth: int, parent: int, is_left: int,
          n_constant: int) -> None:
    stack[top, 0] = start
    stack[top, 1] = end
    stack[top, 2] = depth
    stack[top, 3] = parent
    stack[top, 4] = is_left
    stack[top, 5] = n_constant


@njit(cache=True, nogil=True)
def grow_tree(X: np.ndarray, time_index: np.ndarray, event: np.ndarray, weight: np.ndarray, event_column: np.ndarray,
              n_event_times: int, max_features: int, min_samples_leaf: int, min_samples_split: int, max_depth: int,
              seed: int):
    """Grow one tree on the samples of nonzero ``weight``.

    Parameters
    ----------
    X : ndarray of float32, shape (n_samples, n_features), C-contiguous, no NaN
    time_index : ndarray of int64, shape (n_samples,)
        Rank of each sample's time among the forest's distinct training times.
    event : ndarray of bool, shape (n_samples,)
    weight : ndarray of float64, shape (n_samples,)
        In-bag counts (0: out of bag).
    event_column : ndarray of int64, shape (n_distinct_times,)
        Column of each distinct time in the event-time grid (-1 for a censored-only time).
    n_event_times : int
    max_features, min_samples_leaf, min_samples_split, max_depth : int
        As scikit-survival resolves them (``max_features_``, ``min_samples_split`` at least
        ``2 * min_samples_leaf``, ``max_depth`` 2**31 - 1 for None).
    seed : int
        The splitter's ``rand_r`` state: ``RandomState(tree_seed).randint(0, RAND_R_MAX)``.

    Returns
    -------
    feature, children_left, children_right : ndarray of int64, shape (n_nodes,)
    threshold : ndarray of float64, shape (n_nodes,)
    missing_left : ndarray of uint8, shape (n_nodes,)
    leaf_ptr : ndarray of int64, shape (n_leaves + 1,)
        Steps of leaf ``k`` (leaves numbered in node order) are ``leaf_ptr[k]:leaf_ptr[k + 1]``.
    step_col : ndarray of int64
        Event-grid column of each step.
    step_chf, step_surv : ndarray of float64
        Cumulative hazard and survival from that column on.
    leaf_risk : ndarray of float64, shape (n_leaves,)
    max_depth_seen : int
    """
    n, p = X.shape
    samples = np.flatnonzero(weight != 0.0)
    m = samples.size
    cap = 2 * m + 1
    feature = np.full(cap, -2, dtype=np.int64)
    threshold = np.full(cap, -2.0)
    left = np.full(cap, -1, dtype=np.int64)
    right = np.full(cap, -1, dtype=np.int64)
    missing_left = np.zeros(cap, dtype=np.uint8)
    leaf_ptr = np.zeros(cap + 1, dtype=np.int64)
    leaf_risk = np.zeros(cap)
    step_col = np.zeros(m, dtype=np.int64)
    step_chf = np.zeros(m)
    step_surv = np.zeros(m)
    features = np.arange(p)
    constant_features = np.zeros(p, dtype=np.int64)
    state = np.zeros(1, dtype=np.int64)  # a uint32 held in int64: the shifts below cannot overflow
    state[0] = seed
    # scratch
    local_time = np.zeros(n, dtype=np.int64)
    times_buf = np.zeros(m, dtype=np.int64)
    total_at_risk = np.zeros(m)
    total_events = np.zeros(m)
    left_delta = np.zeros(m)
    left_events = np.zeros(m)
    values = np.zeros(m, dtype=np.float32)
    sorted_ids = np.zeros(m, dtype=np.int64)
    sorted_values = np.zeros(m, dtype=np.float32)
    buffer = np.zeros(m, dtype=np.int64)
    # depth-first stack: start, end, depth, parent, is_left, n_constant_features
    stack = np.zeros((cap, 6), dtype=np.int64)
    stack[0, 1] = m
    stack[0, 3] = -1
    top = 1
    n_nodes = 0
    n_leaves = 0
    n_steps = 0
    depth_seen = -1
    while top > 0:
        top -= 1
        start, end, depth = stack[top, 0], stack[top, 1], stack[top, 2]
        parent, is_left, n_known = stack[top, 3], stack[top, 4], stack[top, 5]
        n_node = end - start
        is_leaf = depth >= max_depth or n_node < min_samples_split or n_node < 2 * min_samples_leaf
        best_pos = end
        best_feature = -2
        best_threshold = -2.0
        best_missing_left = 0
        n_total = n_known
        if not is_leaf:
            ids = samples[start:end]
            n_times = _node_times(ids, time_index, event, weight, local_time, times_buf, total_at_risk,
                                  total_events)
            best_stat = -np.inf
            f_i = p
            n_visited = 0
            n_found = 0
            n_drawn = 0
            while f_i > n_total and (n_visited < max_features or n_visited <= n_found + n_drawn):
                n_visited += 1
                f_j = _rand_int(n_drawn, f_i - n_found, state)
                if f_j < n_known:
                    features[n_drawn], features[f_j] = features[f_j], features[n_drawn]
                    n_drawn += 1
                    continue
                f_j += n_found
                current = features[f_j]
                for j in range(n_node):
                    values[j] = X[ids[j], current]
                order = np.argsort(values[:n_node])
                for j in range(n_node):
                    sorted_ids[j] = ids[order[j]]
                    sorted_values[j] = values[order[j]]
                if sorted_values[n_node - 1] <= sorted_values[0] + _FEATURE_THRESHOLD:
                    features[f_j], features[n_total] = features[n_total], features[f_j]
                    n_found += 1
                    n_total += 1
                    continue
                f_i -= 1
                features[f_i], features[f_j] = features[f_j], features[f_i]
                left_delta[:n_times] = 0.0
                left_events[:n_times] = 0.0
                weight_left = 0.0
                moved = 0
                pos = 0
                while pos < n_node:
                    pos += 1
                    while pos < n_node and sorted_values[pos] <= sorted_values[pos - 1] + _FEATURE_THRESHOLD:
                        pos += 1
                    if pos == n_node:
                        continue
                    if pos < min_samples_leaf or n_node - pos < min_samples_leaf:
                        continue
                    for j in range(moved, pos):
                        s = sorted_ids[j]
                        k = local_time[s]
                        left_delta[k] += weight[s]
                        if event[s]:
                            left_events[k] += weight[s]
                        weight_left += weight[s]
                    moved = pos
                    stat = _logrank(weight_left, left_delta, left_events, total_at_risk, total_events, n_times)
                    if stat > best_stat:
                        best_stat = stat
                        best_pos = start + pos
                        best_feature = current
                        best_threshold = np.float64(sorted_values[pos - 1]) / 2.0 + np.float64(sorted_values[pos]) / 2.0
                        best_missing_left = 1 if pos > n_node - pos else 0
            # scikit-learn's bookkeeping of constant features for the children
            for j in range(n_known):
                features[j] = constant_features[j]
            for j in range(n_known, n_total):
                constant_features[j] = features[j]
            is_leaf = best_pos >= end
        node = n_nodes
        n_nodes += 1
        if parent >= 0:
            if is_left:
                left[parent] = node
            else:
                right[parent] = node
        if depth > depth_seen:
            depth_seen = depth
        if is_leaf:
            n_steps, risk = _leaf(samples[start:end], time_index, event, weight, event_column, n_event_times,
                                  local_time, times_buf, total_at_risk, total_events, step_col, step_chf, step_surv,
                                  n_steps)
            leaf_risk[n_leaves] = risk
            n_leaves += 1
            leaf_ptr[n_leaves] = n_steps
            continue
        feature[node] = best_feature
        threshold[node] = best_threshold
        missing_left[node] = best_missing_left
        # left samples first (X <= threshold, compared in float64 as scikit-learn does), order kept
        n_left = 0
        n_right = 0
        for j in range(start, end):
            s = samples[j]
            if np.float64(X[s, best_feature]) <= best_threshold:
                samples[start + n_left] = s
                n_left += 1
            else:
                buffer[n_right] = s
                n_right += 1
        samples[start + n_left:end] = buffer[:n_right]
        _push(stack, top, best_pos, end, depth + 1, node, 0, n_total)  # right first: the left is grown next
        _push(stack, top + 1, start, best_pos, depth + 1, node, 1, n_total)
        top += 2
    return (feature[:n_nodes].copy(), left[:n_nodes].copy(), right[:n_nodes].copy(), threshold[:n_nodes].copy(),
            missing_left[:n_nodes].copy(), leaf_ptr[:n_leaves + 1].copy(), step_col[:n_steps].copy(),
            step_chf[:n_steps].copy(), step_surv[:n_steps].copy(), leaf_risk[:n_leaves].copy(), depth_seen)


@njit(cache=True, nogil=True)
def apply_tree(X: np.ndarray, rows: np.ndarray, feature: np.ndarray, threshold: np.ndarray,
               children_left: np.ndarray, children_right: np.ndarray) -> np.ndarray:
    """Node reached by each of ``rows`` of float32 ``X`` (no NaN), as scikit-learn's ``Tree.apply``."""
    out = np.empty(rows.size, dtype=np.int64)
    for j in range(rows.size):
        node = 0
        while children_left[node] >= 0:
            if np.float64(X[rows[j], feature[node]]) <= threshold[node]:
                node = children_left[node]
            else:
                node = children_right[node]
        out[j] = node
    return out
