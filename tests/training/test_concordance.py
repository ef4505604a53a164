"""The O(n log n) concordance counts give scikit-survival's Harrell and Uno C to the bit, and Wolbers' pairs."""

import numpy as np
import pytest
from sksurv.metrics import concordance_index_censored, concordance_index_ipcw
from sksurv.util import Surv

from cnslrisk.training.concordance import comparable_counts, concordance_from_counts, wolbers_counts
from cnslrisk.training.ipcw import CensoringSurvival, uno_c


def _outcomes(seed: int, n: int, *, distinct: int, risk_levels: int | None):
    """Times rounded to ``distinct`` values (many tied times); risks on a few levels or continuous."""
    rng = np.random.default_rng(seed)
    time = np.round(rng.exponential(10.0, n), 0 if distinct < 30 else 2) + 0.5
    event = rng.random(n) < 0.6
    if risk_levels is None:
        risk = rng.normal(size=n)
    else:  # a model on binary covariates: a handful of distinct scores, plus noise below the tie tolerance
        risk = rng.integers(0, risk_levels, n) * 0.7 + rng.uniform(-4e-9, 4e-9, n)
    return event, time, risk


CASES = [(seed, n, distinct, levels) for seed, n, distinct, levels in
         [(0, 2, 5, None), (1, 3, 5, 2), (2, 60, 10, 4), (3, 60, 100, None), (4, 500, 12, 3), (5, 500, 100, None),
          (6, 2000, 8, 2), (7, 2000, 100, 4), (8, 137, 3, 1)]]


@pytest.mark.parametrize("seed, n, distinct, levels", CASES)
def test_harrell_c_equals_sksurv_exactly(seed, n, distinct, levels):
    event, time, risk = _outcomes(seed, n, distinct=distinct, risk_levels=levels)
    event[0] = True
    expected = concordance_index_censored(event, time, risk)
    order, concordant, tied, comparable, counted = counts = comparable_counts(event, time, risk)
    assert concordance_from_counts(counts) == expected[0]
    assert (concordant.sum(), tied.sum()) == (expected[1], expected[3])
    assert comparable.sum() - concordant.sum() - tied.sum() == expected[2]


@pytest.mark.parametrize("seed, n, distinct, levels", CASES[2:])
def test_uno_c_equals_sksurv_exactly(seed, n, distinct, levels):
    event, time, risk = _outcomes(seed, n, distinct=distinct, risk_levels=levels)
    train_event, train_time, _ = _outcomes(seed + 100, n, distinct=distinct, risk_levels=levels)
    train_time[0], train_event[0] = time.max() + 1, False  # G stays positive over every test time
    tau = float(np.quantile(time, 0.8))
    y_train, y_test = Surv.from_arrays(train_event, train_time), Surv.from_arrays(event, time)
    expected = concordance_index_ipcw(y_train, y_test, risk, tau=tau)[0]
    assert uno_c(CensoringSurvival(train_event, train_time), event, time, risk, tau) == expected


@pytest.mark.parametrize("offset", [0.0, 0.3, 1e4])
def test_scores_at_the_tie_tolerance_follow_sksurv(offset):
    # scores 1e-8 apart: whether a pair is tied depends on the rounding of each difference, as in scikit-survival
    event, time, _ = _outcomes(11, 400, distinct=20, risk_levels=None)
    risk = offset + np.random.default_rng(12).integers(0, 6, 400) * 1e-8
    assert concordance_from_counts(comparable_counts(event, time, risk)) == concordance_index_censored(
        event, time, risk)[0]


def test_no_comparable_pair_raises():
    # one event, last in time: nothing comes after it
    with pytest.raises(ValueError, match="no comparable pairs"):
        concordance_from_counts(comparable_counts(np.array([False, True]), np.array([1.0, 2.0]), np.zeros(2)))


def _pairwise(time, case, censored, competing, marker):
    concordant = tied = usable = 0
    for i in np.flatnonzero(case):
        for j in range(time.size):
            if time[j] > time[i] or (time[j] == time[i] and censored[j]) or (competing[j] and time[j] <= time[i]):
                usable += 1
                concordant += marker[i] > marker[j]
                tied += marker[i] == marker[j]
    return concordant, tied, usable


@pytest.mark.parametrize("seed", range(6))
def test_wolbers_counts_equal_the_pairwise_loop(seed):
    rng = np.random.default_rng(seed)
    n = 150
    time = np.round(rng.exponential(5.0, n))
    cause = rng.choice(["a", "b", "none"], n)
    marker = np.round(rng.random(n), 1)  # ties in the marker too
    case, censored, competing = (cause == "a") & (time <= 6), cause == "none", cause == "b"
    assert wolbers_counts(time, case, censored, competing, marker) == _pairwise(time, case, censored, competing,
                                                                                marker)
