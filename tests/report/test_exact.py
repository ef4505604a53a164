"""Exact tests of the report (scipy's fisher_exact) against a brute-force enumeration and R's documentation.

The reference enumerates every table with the observed margins by itertools, independently of
scipy. Tables larger than 2 x 2 are tested by Monte Carlo with B tables: the estimate
``(1 + hits) / (1 + B)`` has standard error ``sqrt(p (1 - p) / B)`` and a bias below ``1 / B``, so it
must fall within four standard errors plus ``1 / B`` of the exact value.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.special import gammaln

from cnslrisk.report.exact import N_RESAMPLES, exact_test


def _brute_force_freeman_halton(table):
    """Total probability of every table with the observed margins that is no more probable than the observed one."""
    x = np.asarray(table)
    rows, cols = x.sum(axis=1), x.sum(axis=0)

    def logp(t):
        return gammaln(rows + 1).sum() + gammaln(cols + 1).sum() - gammaln(x.sum() + 1) - gammaln(t + 1).sum()

    observed, total = logp(x), 0.0
    ranges = [range(min(rows[i], cols[j]) + 1) for i in range(x.shape[0] - 1) for j in range(x.shape[1] - 1)]
    for free in itertools.product(*ranges):
        t = np.zeros_like(x)
        t[:-1, :-1] = np.reshape(free, (x.shape[0] - 1, x.shape[1] - 1))
        t[:-1, -1] = rows[:-1] - t[:-1, :-1].sum(axis=1)
        t[-1, :] = cols - t[:-1, :].sum(axis=0)
        if (t >= 0).all() and t[-1].sum() == rows[-1] and logp(t) <= observed + 1e-7:
            total += np.exp(logp(t))
    return min(total, 1.0)


def _monte_carlo_tolerance(p, n_resamples=N_RESAMPLES):
    return 4 * np.sqrt(p * (1 - p) / n_resamples) + 1 / n_resamples


@pytest.mark.parametrize("table", [
    [[3, 0, 4], [1, 5, 2], [2, 2, 0]],
    [[6, 1], [2, 4], [0, 5]],
    [[1, 0, 2, 3]] * 2,
    [[6, 0, 1], [0, 5, 1], [1, 0, 5]],  # p about 7e-5: the Monte Carlo estimate near its floor 1 / B
])
def test_larger_tables_match_the_enumerated_p_value(table):
    exact = _brute_force_freeman_halton(table)
    result = exact_test(table)
    assert result["method"] == f"fisher-freeman-halton monte carlo ({N_RESAMPLES} tables, seed 0)"
    assert abs(result["p"] - exact) <= _monte_carlo_tolerance(exact)
    assert exact_test(table) == result  # seeded: the same table gives the same p-value


@pytest.mark.parametrize("table", [[[8, 2], [1, 5]], [[0, 7], [4, 3]], [[10, 10], [10, 10]], [[12, 1], [2, 11]]])
def test_two_by_two_is_fishers_exact_test(table):
    result = exact_test(table)
    assert result["method"] == "fisher exact"
    assert result["p"] == pytest.approx(_brute_force_freeman_halton(table), rel=1e-9)
    (a, b), (c, d) = table
    assert result["odds_ratio"] == (None if b * c == 0 else pytest.approx(a * d / (b * c)))


def test_empty_rows_are_dropped_and_a_remaining_two_by_two_is_tested_exactly():
    result = exact_test([[3, 4], [0, 0], [5, 1], [0, 0]])
    assert result == {"p": pytest.approx(_brute_force_freeman_halton([[3, 4], [5, 1]]), rel=1e-9),
                      "method": "fisher exact"}  # no odds ratio: the table asked about was 4 x 2


def test_monte_carlo_matches_r_reference():
    # R's ?fisher.test "Job satisfaction" table: fisher.test(Job) gives p = 0.7827 (network algorithm, exact).
    job = [[1, 2, 1, 0], [3, 3, 6, 1], [10, 10, 14, 9], [6, 7, 12, 11]]
    result = exact_test(job)
    assert abs(result["p"] - 0.7827) <= _monte_carlo_tolerance(0.7827) + 0.00005  # R prints four decimals
    other_seed = exact_test(job, seed=1)
    assert other_seed["method"].endswith("seed 1)") and other_seed["p"] != result["p"]


@pytest.mark.parametrize("table, message", [
    ([1, 2, 3], r"exact_test: table must be a 2-d array of counts >= 0; got shape \(3,\)"),
    ([[1, -1], [2, 3]], r"exact_test: table must be a 2-d array of counts >= 0; got shape \(2, 2\)"),
])
def test_bad_tables_are_refused(table, message):
    with pytest.raises(ValueError, match=message):
        exact_test(table)


@pytest.mark.parametrize("table", [[[3, 0], [4, 0]], [[0, 0, 0], [2, 5, 1]], [[0, 0], [0, 0]]])
def test_a_single_observed_level_is_not_testable(table):
    assert exact_test(table) == {"p": None, "method": "not testable (fewer than two observed levels)"}
