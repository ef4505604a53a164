"""Infinitesimal-jackknife variance of a bagged forest's prediction and its band on the log(-log) scale.

For a forest of B trees grown on resamples with in-bag counts ``N[b, i]``, the infinitesimal
jackknife (Efron 2014) estimates the variance of the ensemble prediction ``t(x) = mean_b t_b(x)`` by
``V_IJ = sum_i Cov_b(N[b, i], t_b(x))**2``. With ``Z`` the counts centred per training sample over
the trees and ``d`` the centred tree predictions, ``V_IJ = d' G d / B**2`` with ``G = Z Z'`` (B x B),
so one prediction costs one quadratic form in ``G`` whatever the training size. Its Monte Carlo
bias, ``sum_i Var(N_i) * v / B`` with ``v`` the variance of the trees' predictions (``n * v / B``
for the full bootstrap, Wager, Hastie & Efron 2014, eq. 7), is subtracted with
``sum_i Var(N_i)`` read off the recorded counts as ``trace(G) / B``, which also covers resamples of
``max_samples`` draws. With few trees the Monte Carlo noise of the corrected estimate can push it to or
below 0 (10 % of the bundled example's predictions at 200 trees, BENCHMARKS.md): a band of width 0 would
claim certainty, so there the forest falls back on the uncorrected estimate, which is conservative (its
bias is that positive Monte Carlo term), and says so (:func:`ij_variances`).

References
----------
.. [1] Efron B. Estimation and accuracy after model selection. JASA 2014;109:991-1007.
.. [2] Wager S, Hastie T, Efron B. Confidence intervals for random forests: the jackknife and the
   infinitesimal jackknife. JMLR 2014;15:1625-1651.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = ["inbag_gram", "gram_factor", "ij_variance", "ij_variances", "cloglog_band"]

_SAMPLES_PER_BLOCK = 8192
_COLUMNS = 64


def inbag_gram(counts: np.ndarray) -> np.ndarray:
    """``Z Z'`` of the in-bag counts (n_trees, n_samples) centred per sample, built in blocks of samples."""
    counts = np.asarray(counts)
    gram = np.zeros((counts.shape[0], counts.shape[0]))
    for lo in range(0, counts.shape[1], _SAMPLES_PER_BLOCK):
        block = counts[:, lo:lo + _SAMPLES_PER_BLOCK].astype(np.float64)
        block -= block.mean(axis=0)
        gram += block @ block.T
    return gram


def gram_factor(gram: np.ndarray) -> np.ndarray:
    """``W`` (n_trees, rank) with ``W W' = gram`` from its eigen-decomposition (rank <= n_samples - 1).

    With fewer training patients than trees (the bundled example: 60 and 200) the quadratic form
    costs ``n_trees x rank`` instead of ``n_trees**2``.
    """
    values, vectors = np.linalg.eigh(gram)
    keep = values > values.max(initial=0.0) * 1e-12
    return vectors[:, keep] * np.sqrt(values[keep])


def ij_variance(tree_values: np.ndarray, gram: np.ndarray, factor: np.ndarray | None = None) -> np.ndarray:
    """Bias-corrected IJ variance of the mean over trees (axis 0) of ``tree_values``, floored at 0.

    Parameters and the order of the products as in :func:`ij_variances`.
    """
    corrected, _ = ij_variances(tree_values, gram, factor)
    return np.maximum(corrected, 0.0)


def ij_variances(tree_values: np.ndarray, gram: np.ndarray, factor: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Bias-corrected (not floored) and uncorrected IJ variances of the mean over trees (axis 0) of ``tree_values``.

    The products run on blocks of exactly 64 predictions (the last one padded), so every
    prediction goes through the same BLAS kernel whatever the batch it comes in: one patient
    scored alone gets the bits it gets in a million-row file.

    Parameters
    ----------
    tree_values : ndarray, shape (n_trees, ...)
        Each tree's prediction.
    gram : ndarray, shape (n_trees, n_trees)
        :func:`inbag_gram` of the forest's in-bag counts.
    factor : ndarray, shape (n_trees, rank), optional
        :func:`gram_factor` of ``gram`` (computed when not given).

    Returns
    -------
    corrected, uncorrected : ndarray, shape ``tree_values.shape[1:]``
        ``(d'Gd - trace(G)/B d'd) / B**2`` and ``d'Gd / B**2``.
    """
    n_trees = tree_values.shape[0]
    factor = gram_factor(gram) if factor is None else factor
    d = tree_values.reshape(n_trees, -1)
    d = d - d.mean(axis=0)
    m = d.shape[1]
    padded = np.zeros((n_trees, -(-m // _COLUMNS) * _COLUMNS))
    padded[:, :m] = d
    quadratic = np.empty(padded.shape[1])
    for lo in range(0, padded.shape[1], _COLUMNS):
        projected = factor.T @ np.ascontiguousarray(padded[:, lo:lo + _COLUMNS])
        quadratic[lo:lo + _COLUMNS] = np.einsum("km,km->m", projected, projected)
    bias = np.trace(gram) / n_trees * np.einsum("bm,bm->m", d, d)
    shape = tree_values.shape[1:]
    return ((quadratic[:m] - bias) / n_trees**2).reshape(shape), (quadratic[:m] / n_trees**2).reshape(shape)


def cloglog_band(survival: np.ndarray, variance: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise band ``S ** exp(+-z se)`` with ``se = sqrt(variance) / |S log S|`` (delta method on log(-log S)).

    Where the variance is 0, or S is 0 or 1 (every tree agrees), the band is the point itself.
    """
    z = NormalDist().inv_cdf(0.5 + level / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(variance) / np.abs(survival * np.log(survival))
        spread = np.exp(z * se)
        lower, upper = survival ** spread, survival ** (1 / spread)
    flat = (variance == 0) | (survival <= 0) | (survival >= 1)
    return np.where(flat, survival, lower), np.where(flat, survival, upper)
