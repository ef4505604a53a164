"""Cox proportional hazards with Efron ties, standard errors and pointwise bands for predicted survival."""

from __future__ import annotations

import numbers
import warnings
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.stats import norm
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from ..summary import coefficient_table
from ._breslow import RiskSets, partial_likelihood, step_lookup
from ._linear import LinearCoxMixin

__all__ = ["CoxPH", "newton_raphson"]


def newton_raphson(Z: np.ndarray, risk: RiskSets, *, alpha: float, ties: str, tol: float, n_iter: int):
    """Newton-Raphson with step halving on the (optionally ridge-penalised) log partial likelihood.

    The one Cox coefficient solver: :class:`CoxPH`, Firth's fallback and training's calibration slopes
    all call it (Z already checked and centred).

    Returns
    -------
    beta, partial_likelihood, information, iterations
    """

    def evaluate(beta):
        pl = partial_likelihood(Z, beta, risk, ties=ties)
        penalised = pl.loglik - 0.5 * alpha * beta @ beta
        return pl, penalised, pl.gradient - alpha * beta, pl.information + alpha * np.eye(beta.size)

    beta = np.zeros(Z.shape[1])
    pl, value, grad, info = evaluate(beta)
    for iteration in range(1, n_iter + 1):
        try:
            step = cho_solve(cho_factor(info), grad)
        except LinAlgError as exc:
            raise ValueError(
                "CoxPH fit: the information matrix is singular; a covariate is constant or collinear "
                "with others, or separates events completely (remove it or set alpha > 0)"
            ) from exc
        candidate = beta + step
        new = evaluate(candidate)
        halvings = 0
        while not new[1] >= value - 1e-12 * abs(value) and halvings < 30:
            step = step / 2
            candidate = beta + step
            new = evaluate(candidate)
            halvings += 1
        beta = candidate
        pl, value, grad, info = new
        if np.max(np.abs(step)) < tol:
            return beta, pl, info, iteration
    warnings.warn(
        f"CoxPH fit: Newton-Raphson did not converge in n_iter={n_iter} iterations; increase n_iter or check for "
        "a covariate that separates events (coefficients may be diverging)",
        ConvergenceWarning,
        stacklevel=3,
    )
    return beta, pl, info, n_iter


class CoxPH(LinearCoxMixin, BaseEstimator):
    """Cox proportional hazards model with Efron ties, Wald inference and a Breslow baseline.

    The coefficients maximise the log partial likelihood (Efron's handling of ties, optionally a
    ridge penalty ``alpha / 2 * ||beta||^2``) by Newton-Raphson until the largest coefficient
    step is below ``tol``. The variance is the inverse observed information at the estimate.
    The baseline cumulative hazard is Breslow's estimator for a patient at the training means.

    Parameters
    ----------
    alpha : float, default=0.0
        Ridge penalty; 0 gives the ordinary Cox model.
    ties : {"efron", "breslow"}, default="efron"
        Handling of tied event times in the partial likelihood.
    tol : float, default=1e-9
        Convergence tolerance on the largest absolute Newton step.
    n_iter : int, default=100
        Maximum number of Newton iterations.

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,)
        Log hazard ratios.
    variance_matrix_ : ndarray, shape (n_features, n_features)
        Inverse observed information at ``coef_``.
    standard_errors_ : ndarray, shape (n_features,)
        Square roots of the diagonal of ``variance_matrix_``.
    z_ : ndarray, shape (n_features,)
        Wald statistics ``coef / se``.
    p_values_ : ndarray, shape (n_features,)
        Two-sided Wald p-values.
    summary_ : pandas.DataFrame
        The lifelines-style coefficient table (:func:`cnslrisk.model.summary.coefficient_table`).
    log_likelihood_ : float
        Log partial likelihood at ``coef_``.
    n_iter_ : int
        Newton iterations used.
    x_mean_ : ndarray, shape (n_features,)
        Training means; the linear predictor and the baseline are centred on them.
    unique_times_ : ndarray, shape (n_event_times,)
        Distinct event times.
    cum_baseline_hazard_ : ndarray, shape (n_event_times,)
        Breslow cumulative baseline hazard at ``unique_times_``.
    baseline_survival_ : ndarray, shape (n_event_times,)
        ``exp(-cum_baseline_hazard_)``.
    max_time_ : float
        Largest training time: the end of the step functions' domain (as scikit-survival's).
    cum_baseline_var_ : ndarray, shape (n_event_times,)
        ``sum_{t_j <= t} d_j / S0_j^2``, the baseline term of the prediction variance.
    cum_risk_mean_ : ndarray, shape (n_event_times, n_features)
        ``A(t) = sum_{t_j <= t} zbar_j dH0_j``, the risk-set mean term of the prediction variance.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Feature names, when X was a DataFrame.

    References
    ----------
    .. [1] Cox, D. R. (1972). Regression models and life-tables. JRSS B, 34(2), 187-220.
    .. [2] Efron, B. (1977). The efficiency of Cox's likelihood function for censored data. JASA, 72, 557-565.
    .. [3] Therneau, T. M. and Grambsch, P. M. (2000). Modeling Survival Data: Extending the Cox Model.
       Springer, sections 3.2 and 10.2.
    """

    _parameter_constraints: dict = {
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "ties": [StrOptions({"efron", "breslow"})],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, alpha: float = 0.0, *, ties: str = "efron", tol: float = 1e-9, n_iter: int = 100):
        self.alpha = alpha
        self.ties = ties
        self.tol = tol
        self.n_iter = n_iter

    def _fit_coef(self, X: np.ndarray, y: np.ndarray, Z: np.ndarray, event: np.ndarray, risk: RiskSets) -> None:
        beta, pl, info, self.n_iter_ = newton_raphson(
            Z, risk, alpha=float(self.alpha), ties=self.ties, tol=self.tol, n_iter=self.n_iter
        )
        self.coef_ = beta
        self.log_likelihood_ = pl.loglik
        self.variance_matrix_ = np.linalg.inv(info)
        self._set_inference()

    def _set_baseline(self, baseline: dict[str, np.ndarray]) -> None:
        super()._set_baseline(baseline)
        self.cum_baseline_var_ = baseline["cum_var"]
        self.cum_risk_mean_ = baseline["cum_mean"]

    def _set_inference(self) -> None:
        self.standard_errors_ = np.sqrt(np.diag(self.variance_matrix_))
        self.z_ = self.coef_ / self.standard_errors_
        self.p_values_ = 2 * norm.sf(np.abs(self.z_))
        names = getattr(self, "feature_names_in_", None)
        names = [f"x{i}" for i in range(self.coef_.size)] if names is None else [str(n) for n in names]
        self.summary_ = coefficient_table(self.coef_, self.standard_errors_, names)

    def predict_survival_interval(self, X: Any, times: Any, level: float = 0.95, *, check_input: bool = True
                                  ) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise confidence interval for ``S(t | x)``, delta method on the log(-log) scale.

        For a new covariate vector ``z = x - x_mean`` with ``r = exp(z beta)``, the variance of
        the Breslow estimate ``H(t|z) = r H0(t)`` is (Tsiatis 1981; Therneau & Grambsch 2000, §10.2)

        ``Var H(t|z) = r^2 [ sum_{t_j<=t} d_j / S0_j^2 + q(t)' V q(t) ]``,
        ``q(t) = sum_{t_j<=t} (z - zbar_j) d_j / S0_j = z H0(t) - A(t)``,

        with ``S0_j`` the risk-set sum of ``exp(z_i beta)``, ``zbar_j = S1_j / S0_j`` the
        risk-weighted mean and ``V`` the coefficient variance. With ``se = sqrt(Var H)`` and
        ``c`` the normal quantile, ``log H = log(-log S)`` has standard error ``se / H`` and the
        band is ``S ** exp(+c se / H)`` (lower) to ``S ** exp(-c se / H)`` (upper). This is R's
        ``survfit.coxph(..., conf.type = "log-log")`` for a model fitted with ``ties = "breslow"``
        (R's Efron fit additionally adjusts the hazard increments for ties, ``ctype = 2``).
        Before the first event time ``S = 1`` and the band is ``(1, 1)``.

        Parameters
        ----------
        X, times, check_input
            As in :meth:`predict_cumulative_hazard`.
        level : float, default=0.95
            Confidence level, in (0, 1).

        Returns
        -------
        lower, upper : ndarray, shape (n_samples, n_times)
            Pointwise bounds for the survival probability.

        References
        ----------
        .. [1] Tsiatis, A. A. (1981). A large sample study of Cox's regression model. Annals of
           Statistics, 9(1), 93-108.
        .. [2] Therneau, T. M. and Grambsch, P. M. (2000). Modeling Survival Data: Extending the Cox
           Model. Springer, section 10.2.
        """
        if not 0 < level < 1:
            raise ValueError(f"parameter level of predict_survival_interval must be in (0, 1); got {level!r}")
        Z = self._centred(X, check_input)
        times = np.atleast_1d(np.asarray(times, dtype=float))
        steps = np.column_stack([self.cum_baseline_hazard_, self.cum_baseline_var_, self.cum_risk_mean_])
        at_times = step_lookup(self.unique_times_, steps, times)  # one lookup for the three step functions
        h0, c0, A = at_times[:, 0], at_times[:, 1], at_times[:, 2:]
        V = self.variance_matrix_
        ZV = Z @ V
        zvz = np.einsum("ij,ij->i", ZV, Z)
        qvq = zvz[:, None] * h0[None, :] ** 2 - 2 * h0[None, :] * (ZV @ A.T) + np.einsum("kp,pq,kq->k", A, V, A)[None]
        r = np.exp(Z @ self.coef_)[:, None]
        cum_hazard = r * h0[None, :]
        se = r * np.sqrt(np.maximum(c0[None, :] + qvq, 0.0))
        crit = NormalDist().inv_cdf(0.5 + level / 2)  # scipy's ppf costs more than the whole band for one row
        with np.errstate(divide="ignore", invalid="ignore"):
            spread = np.where(cum_hazard > 0, np.exp(crit * se / cum_hazard), 1.0)
        return np.exp(-cum_hazard * spread), np.exp(-cum_hazard / spread)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe parameters from which :meth:`from_dict` rebuilds an identical predictor.

        Returns
        -------
        dict
            Format tag, hyperparameters, feature names, ``coef``, ``variance_matrix``, ``x_mean``,
            ``unique_times``, ``cum_baseline_hazard`` and the two cumulative sums the band needs
            (``cum_baseline_var``, ``cum_risk_mean``), ``max_time``, ``log_likelihood`` and ``n_iter``.
        """
        return self._export(
            {
                "variance_matrix": self.variance_matrix_.tolist(),
                "cum_baseline_var": self.cum_baseline_var_.tolist(),
                "cum_risk_mean": self.cum_risk_mean_.tolist(),
                "log_likelihood": self.log_likelihood_,
                "n_iter": self.n_iter_,
            }
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CoxPH:
        """Rebuild a fitted :class:`CoxPH` from the dict :meth:`to_dict` wrote (e.g. read back from JSON; no pickle)."""
        model = cls._restore(d)
        p = model.coef_.size
        model.variance_matrix_ = np.asarray(d["variance_matrix"], dtype=float).reshape(p, p)
        model.cum_baseline_var_ = np.asarray(d["cum_baseline_var"], dtype=float)
        model.cum_risk_mean_ = np.asarray(d["cum_risk_mean"], dtype=float).reshape(-1, p)
        model.log_likelihood_ = float(d["log_likelihood"])
        model.n_iter_ = int(d["n_iter"])
        model._set_inference()
        return model
