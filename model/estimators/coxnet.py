"""Elastic-net Cox (scikit-survival's coxnet) with the penalty chosen by inner cross-validation."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold
from sklearn.utils._param_validation import Interval, StrOptions
from sksurv.linear_model import CoxnetSurvivalAnalysis

from ._breslow import RiskSets, partial_likelihood
from ._linear import LinearCoxMixin

__all__ = ["PenalizedCox", "inner_splits"]


def inner_splits(event: np.ndarray, n_splits: int, random_state: int | None, owner: str) -> list:
    """Stratified (on the event indicator) shuffled K-fold splits for inner model selection.

    Parameters
    ----------
    event : ndarray of bool, shape (n_samples,)
        Event indicator.
    n_splits : int
        Number of folds.
    random_state : int or None
        Seed of the shuffle.
    owner : str
        Estimator name used in the error message.

    Returns
    -------
    list of (train, test) index arrays
    """
    n_events = int(event.sum())
    smallest = min(n_events, event.size - n_events)
    if smallest < n_splits:
        raise ValueError(
            f"{owner} fit: inner_cv={n_splits} folds need at least {n_splits} events and {n_splits} censored "
            f"patients; got {n_events} events and {event.size - n_events} censored (lower inner_cv)"
        )
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    return list(folds.split(np.zeros((event.size, 1)), event))


def _fold_path(X, y, alphas, l1_ratio, train) -> np.ndarray:
    """Verweij-van Houwelingen contribution of one fold for every alpha on the path."""
    model = CoxnetSurvivalAnalysis(alphas=alphas, l1_ratio=l1_ratio).fit(X[train], y[train])
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    full = RiskSets.build(time, event)
    part = RiskSets.build(time[train], event[train])
    out = np.full(alphas.size, -np.inf)
    for k in range(model.coef_.shape[1]):
        beta = model.coef_[:, k]
        out[k] = (
            partial_likelihood(X, beta, full, ties="breslow", with_information=False).loglik
            - partial_likelihood(X[train], beta, part, ties="breslow", with_information=False).loglik
        )
    return out


class PenalizedCox(LinearCoxMixin, BaseEstimator):
    """Elastic-net Cox model with the penalty chosen by inner stratified K-fold cross-validation.

    The path of ``n_alphas`` penalties comes from scikit-survival's coxnet fitted on all data.
    Each penalty is scored by the cross-validated partial likelihood of Verweij & van
    Houwelingen (1993), ``CVPL(alpha) = sum_k [l(beta_{-k}) - l_{-k}(beta_{-k})]`` (Breslow ties,
    as coxnet fits them), which is ``cv.glmnet``'s default (``type.measure = "deviance"``,
    ``grouped = TRUE``) and is steadier than Harrell's C on small folds. The largest CVPL wins;
    the model is refitted on all data along the same path and kept as a plain linear Cox model
    (coefficients plus a Breslow baseline centred on the training means). Inputs should be
    standardised (``FeatureEncoder(scale=True)``).

    Parameters
    ----------
    l1_ratio : float, default=0.5
        Elastic-net mixing in (0, 1]: 1 is the lasso, small values approach ridge.
    n_alphas : int, default=50
        Length of the penalty path.
    alpha_min_ratio : float or "auto", default="auto"
        Smallest penalty as a fraction of the largest (coxnet's rule for "auto").
    inner_cv : int, default=5
        Number of inner folds.
    random_state : int or None, default=0
        Seed of the fold shuffle.
    n_jobs : int or None, default=None
        Folds fitted in parallel.

    Attributes
    ----------
    alphas_ : ndarray, shape (n_alphas,)
        The penalty path.
    cv_scores_ : ndarray, shape (n_alphas,)
        Cross-validated partial log-likelihood of each penalty (-inf where coxnet stopped early).
    alpha_ : float
        The chosen penalty.
    coef_ : ndarray, shape (n_features,)
        Coefficients at ``alpha_`` (per standardised unit when inputs are standardised).
    x_mean_, unique_times_, cum_baseline_hazard_, baseline_survival_, max_time_, n_features_in_, feature_names_in_
        As in :class:`CoxPH`: training means, the Breslow baseline at ``coef_``, the end of follow-up
        and the columns seen in fit.

    References
    ----------
    .. [1] Simon, N., Friedman, J., Hastie, T. and Tibshirani, R. (2011). Regularization paths for
       Cox's proportional hazards model via coordinate descent. J. Stat. Softw. 39(5), 1-13.
    .. [2] Verweij, P. J. M. and van Houwelingen, H. C. (1993). Cross-validation in survival analysis.
       Statistics in Medicine, 12(24), 2305-2314.
    """

    _parameter_constraints: dict = {
        "l1_ratio": [Interval(numbers.Real, 0, 1, closed="right")],
        "n_alphas": [Interval(numbers.Integral, 2, None, closed="left")],
        "alpha_min_ratio": [Interval(numbers.Real, 0, 1, closed="neither"), StrOptions({"auto"})],
        "inner_cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
    }

    def __init__(
        self,
        l1_ratio: float = 0.5,
        *,
        n_alphas: int = 50,
        alpha_min_ratio: float | str = "auto",
        inner_cv: int = 5,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ):
        self.l1_ratio = l1_ratio
        self.n_alphas = n_alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.inner_cv = inner_cv
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit_coef(self, X: np.ndarray, y: np.ndarray, Z: np.ndarray, event: np.ndarray, risk: RiskSets) -> None:
        splits = inner_splits(event, self.inner_cv, self.random_state, "PenalizedCox")
        path = CoxnetSurvivalAnalysis(
            n_alphas=self.n_alphas, alpha_min_ratio=self.alpha_min_ratio, l1_ratio=self.l1_ratio
        ).fit(X, y)
        alphas = path.alphas_
        folds = Parallel(n_jobs=self.n_jobs)(
            delayed(_fold_path)(X, y, alphas, self.l1_ratio, train) for train, _ in splits
        )
        self.alphas_ = alphas
        self.cv_scores_ = np.sum(folds, axis=0)
        best = int(np.argmax(self.cv_scores_))
        self.alpha_ = float(alphas[best])
        self.coef_ = path.coef_[:, best].copy()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe linear Cox form (coef, x_mean, Breslow baseline, chosen alpha).

        Returns
        -------
        dict
        """
        return self._export({"alpha": self.alpha_})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PenalizedCox:
        """Rebuild a fitted :class:`PenalizedCox` from the dict :meth:`to_dict` wrote (no pickle involved)."""
        model = cls._restore(d)
        model.alpha_ = float(d["alpha"])
        return model
