"""Exact tests of independence in a contingency table, by :func:`scipy.stats.fisher_exact`.

A 2 x 2 table gets Fisher's exact test (hypergeometric, two-sided). A larger table gets its
Freeman-Halton extension: the p-value is the probability, under the multivariate hypergeometric
law of tables with the observed margins, of a table no more probable than the observed one. SciPy
estimates it from ``n_resamples`` tables drawn with :data:`scipy.stats.random_table` and a fixed
seed, as ``(1 + #{P(table) <= P(observed)}) / (1 + n_resamples)``; its Monte Carlo standard error
is at most ``0.5 / sqrt(n_resamples)`` (0.0016 for the default).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import MonteCarloMethod, fisher_exact

__all__ = ["N_RESAMPLES", "exact_test"]

N_RESAMPLES = 100_000
"""Tables drawn for the Monte Carlo p-value of a table larger than 2 x 2 (standard error <= 0.0016)."""


def exact_test(table: Any, *, n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """Fisher's exact test of independence for an r x c table of counts.

    Rows and columns that are all zero are dropped first. A 2 x 2 table is tested exactly; a
    larger one by the Freeman-Halton extension, estimated by Monte Carlo.

    Parameters
    ----------
    table : array-like of int, shape (n_rows, n_columns)
        Observed counts.
    n_resamples : int, default: :data:`N_RESAMPLES`
        Tables drawn for the Monte Carlo estimate of a table larger than 2 x 2.
    seed : int, default: 0
        Seed of that draw (the same table and seed give the same p-value).

    Returns
    -------
    dict
        ``p`` (float, or None when fewer than two rows or columns have counts) and ``method``
        (``"fisher exact"``, ``"fisher-freeman-halton monte carlo (<B> tables, seed <s>)"`` or
        ``"not testable (fewer than two observed levels)"``); a table given as 2 x 2 with no empty
        row or column also has ``odds_ratio``: the sample odds ratio ``a d / (b c)`` that
        :func:`scipy.stats.fisher_exact` reports (None when infinite).

    Raises
    ------
    ValueError
        When ``table`` is not a 2-d array of counts >= 0.

    References
    ----------
    .. [1] Fisher, R. A. (1935). The logic of inductive inference. JRSS, 98(1), 39-82.
    .. [2] Freeman, G. H. and Halton, J. H. (1951). Note on an exact treatment of contingency,
       goodness of fit and other problems of significance. Biometrika, 38(1/2), 141-149.
    """
    x = np.asarray(table, dtype=np.int64)
    if x.ndim != 2 or (x < 0).any():
        raise ValueError(f"exact_test: table must be a 2-d array of counts >= 0; got shape {x.shape}")
    observed = x[x.sum(axis=1) > 0][:, x.sum(axis=0) > 0]
    if min(observed.shape) < 2:
        return {"p": None, "method": "not testable (fewer than two observed levels)"}
    if observed.shape == (2, 2):
        result = fisher_exact(observed, alternative="two-sided")
        out = {"p": float(result.pvalue), "method": "fisher exact"}
        if x.shape == (2, 2):
            odds = float(result.statistic)
            out["odds_ratio"] = odds if np.isfinite(odds) else None
        return out
    method = MonteCarloMethod(n_resamples=n_resamples, rng=np.random.default_rng(seed))
    return {"p": float(fisher_exact(observed, method=method).pvalue),
            "method": f"fisher-freeman-halton monte carlo ({n_resamples} tables, seed {seed})"}
