"""Exact tests of independence in a contingency table: Fisher (2 x 2) and Freeman-Halton (r x c).

The Freeman-Halton p-value is the total probability, under the multivariate hypergeometric law of
tables with the observed margins, of every table no more probable than the observed one. Tables
are enumerated column by column when there are at most ``max_tables`` of them; otherwise the
p-value is estimated from ``n_resamples`` tables drawn with :data:`scipy.stats.random_table` and
a fixed seed, as ``(1 + #{P(table) <= P(observed)}) / (1 + n_resamples)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln
from scipy.stats import fisher_exact, random_table

__all__ = ["exact_test", "freeman_halton"]

_REL_TOL = 1e-7  # tables within this relative probability of the observed one count as "as extreme" (as R does)


def _expand(states: np.ndarray, acc: np.ndarray, total: int, limit: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Every way to fill one column of sum ``total`` below each state's remaining row margins (None past ``limit``)."""
    m, r = states.shape
    owner = np.arange(m)
    remaining = np.full(m, total)
    cells = np.empty((m, 0), dtype=np.int64)
    for i in range(r - 1):
        counts = np.minimum(states[owner, i], remaining) + 1
        keep = np.repeat(np.arange(owner.size), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        value = np.arange(keep.size) - starts
        if keep.size > limit:
            return None
        owner, remaining = owner[keep], remaining[keep] - value
        cells = np.column_stack([cells[keep], value])
    ok = remaining <= states[owner, r - 1]
    owner, cells = owner[ok], np.column_stack([cells[ok], remaining[ok]])
    return states[owner] - cells, acc[owner] + gammaln(cells + 1).sum(axis=1)


def freeman_halton(
    table: Any, *, max_tables: int = 2_000_000, n_resamples: int = 100_000, seed: int = 0
) -> dict[str, Any]:
    """Freeman-Halton exact test of independence for an r x c table of counts.

    Parameters
    ----------
    table : array-like of int, shape (n_rows, n_columns)
        Observed counts; rows or columns that are all zero are dropped.
    max_tables : int, default=2_000_000
        Largest number of partial tables enumerated before switching to Monte Carlo.
    n_resamples : int, default=100_000
        Tables drawn for the Monte Carlo estimate.
    seed : int, default=0
        Seed of the Monte Carlo draw (the same table and seed give the same p-value).

    Returns
    -------
    dict
        ``p`` (float, or None when fewer than two rows or columns have counts), ``method``
        (``"freeman-halton exact"`` or ``"freeman-halton monte carlo (<B> tables, seed <s>)"``).

    References
    ----------
    .. [1] Freeman, G. H. and Halton, J. H. (1951). Note on an exact treatment of contingency,
       goodness of fit and other problems of significance. Biometrika, 38(1/2), 141-149.
    .. [2] Mehta, C. R. and Patel, N. R. (1983). A network algorithm for performing Fisher's exact
       test in r x c contingency tables. JASA, 78(382), 427-434.
    """
    x = np.asarray(table, dtype=np.int64)
    if x.ndim != 2 or (x < 0).any():
        raise ValueError(f"freeman_halton: table must be a 2-d array of counts >= 0; got shape {x.shape}")
    x = x[x.sum(axis=1) > 0][:, x.sum(axis=0) > 0]
    if min(x.shape) < 2:
        return {"p": None, "method": "not testable (fewer than two observed levels)"}
    if x.shape[1] > x.shape[0]:
        x = x.T
    rows, cols = x.sum(axis=1), x.sum(axis=0)
    constant = gammaln(rows + 1).sum() + gammaln(cols + 1).sum() - gammaln(x.sum() + 1)
    observed = constant - gammaln(x + 1).sum()
    states, acc = rows[None, :].copy(), np.zeros(1)
    for total in cols[:-1]:
        expanded = _expand(states, acc, int(total), max_tables)
        if expanded is None:
            break
        states, acc = expanded
    else:
        logp = constant - acc - gammaln(states + 1).sum(axis=1)
        as_extreme = logp <= observed + _REL_TOL
        return {"p": float(min(1.0, np.exp(logp[as_extreme]).sum())), "method": "freeman-halton exact"}
    draws = random_table(rows, cols, seed=np.random.default_rng(seed)).rvs(size=n_resamples)
    logp = constant - gammaln(draws + 1).sum(axis=(1, 2))
    hits = int((logp <= observed + _REL_TOL).sum())
    return {
        "p": (1 + hits) / (1 + n_resamples),
        "method": f"freeman-halton monte carlo ({n_resamples} tables, seed {seed})",
    }


def exact_test(table: Any, **kwargs: Any) -> dict[str, Any]:
    """Fisher's exact test for a 2 x 2 table (with its odds ratio), Freeman-Halton otherwise.

    Parameters
    ----------
    table : array-like of int, shape (n_rows, n_columns)
        Observed counts.
    **kwargs
        Passed to :func:`freeman_halton`.

    Returns
    -------
    dict
        ``p`` and ``method``; for a 2 x 2 table also ``odds_ratio`` (conditional on nothing: the
        sample odds ratio ``a d / (b c)`` that :func:`scipy.stats.fisher_exact` reports).

    References
    ----------
    .. [1] Fisher, R. A. (1935). The logic of inductive inference. JRSS, 98(1), 39-82.
    """
    x = np.asarray(table, dtype=np.int64)
    if x.shape == (2, 2) and (x.sum(axis=0) > 0).all() and (x.sum(axis=1) > 0).all():
        result = fisher_exact(x, alternative="two-sided")
        odds = float(result.statistic)
        return {"p": float(result.pvalue), "method": "fisher exact",
                "odds_ratio": odds if np.isfinite(odds) else None}
    return freeman_halton(x, **kwargs)
