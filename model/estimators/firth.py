"""Cox regression that stays finite under separation: Firth's penalised partial likelihood (Heinze & Schemper 2001).

When every event of a sample happened to the patient with the highest value of some combination
of covariates in its risk set (e.g. all 12 local relapses among the patients with leptomeningeal
disease), the partial likelihood keeps increasing along that direction: it is monotone, and the
maximum likelihood estimate is infinite. Firth's penalty adds half the log-determinant of the
information matrix, which removes the first-order bias and keeps the estimate finite.

:class:`FirthCoxPH` fits the ordinary Cox model where its estimate exists and Firth's penalised
model only where the likelihood is monotone (``penalty="auto"``, the default), or always
(``penalty="firth"``, as R's ``coxphf``). Monotonicity is established exactly, by a linear
programme over the risk sets (:func:`monotone_direction`), not guessed from large coefficients.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np
from scipy.linalg import LinAlgError, cho_factor, cho_solve
from scipy.optimize import linprog
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from ._breslow import RiskSets, _reverse_cumsum, partial_likelihood
from .cox import CoxPH, newton_raphson

__all__ = ["FirthCoxPH", "firth_likelihood", "monotone_direction"]

_MAX_STEP = 5.0  # largest change of a coefficient in one Newton step (log hazard ratio units)
_MAX_CONDITION = 1e12  # an information matrix this ill-conditioned has lost a dimension: the estimate diverged
_SINGULAR = ("FirthCoxPH fit: the information matrix is singular, which no penalty for separation mends: a covariate "
             "is constant among the patients at risk or collinear with others (remove it, or merge rare levels)")


def firth_likelihood(Z: np.ndarray, beta: np.ndarray, risk: RiskSets, *, ties: str = "efron"
                     ) -> tuple[float, np.ndarray, np.ndarray, float]:
    """Firth's penalised log partial likelihood ``l(b) + 1/2 log det I(b)``, its gradient and the information.

    Every term of the partial likelihood (each event, with Efron's or Breslow's risk set) is the
    log of a normalising sum over weights ``c_i exp(z_i b)``, so its information is the weighted
    covariance of ``z`` and the derivative of the information along ``b_r`` is the weighted third
    central moment ``E[(z - m)(z - m)(z_r - m_r)]``. The penalised score is then
    ``U_r + 1/2 tr(I^{-1} dI/db_r)`` (Firth 1993; Heinze & Schemper 2001).

    Parameters
    ----------
    Z : ndarray, shape (n_samples, n_features)
    beta : ndarray, shape (n_features,)
    risk : RiskSets
    ties : {"efron", "breslow"}, default="efron"

    Returns
    -------
    penalised : float
        ``l(b) + 1/2 log det I(b)``.
    score : ndarray, shape (n_features,)
        Its gradient.
    information : ndarray, shape (n_features, n_features)
        ``I(b)``, the observed information of the unpenalised likelihood.
    loglik : float
        ``l(b)``.

    References
    ----------
    .. [1] Firth D. Bias reduction of maximum likelihood estimates. Biometrika 1993;80:27-38.
    .. [2] Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
       Biometrics 2001;57:114-119.
    """
    pl = partial_likelihood(Z, beta, risk, ties=ties)
    Zs = Z[risk.order]
    eta = Zs @ beta
    w = np.exp(eta - eta.max())
    frac = risk.efron_fraction if ties == "efron" else np.zeros_like(risk.efron_fraction)
    rows, group = risk.event_rows, risk.event_group
    at = risk.start[group]
    def term_sums(values: np.ndarray) -> np.ndarray:
        """Risk-set sums of ``values`` for each event term, less the Efron share of the tied events."""
        tied = np.zeros((risk.unique_times.size, *values.shape[1:]))
        np.add.at(tied, group, values[rows])
        return _reverse_cumsum(values)[at] - frac.reshape(-1, *([1] * (values.ndim - 1))) * tied[group]

    s0 = term_sums(w)
    wz = w[:, None] * Zs
    mean = term_sums(wz) / s0[:, None]
    wzz = wz[:, :, None] * Zs[:, None, :]
    second = term_sums(wzz) / s0[:, None, None]
    third = term_sums(wzz[:, :, :, None] * Zs[:, None, None, :]) / s0[:, None, None, None]
    outer = np.einsum("ei,ejk->eijk", mean, second)
    central = (third - outer - outer.transpose(0, 2, 1, 3) - outer.transpose(0, 2, 3, 1)
               + 2 * np.einsum("ei,ej,ek->eijk", mean, mean, mean))
    dinfo = central.sum(axis=0)  # dI_jk / db_r, indexed [j, k, r]
    information = pl.information
    sign, logdet = np.linalg.slogdet(information)
    if sign <= 0:
        raise LinAlgError("the information matrix is not positive definite")
    inverse = np.linalg.inv(information)
    score = pl.gradient + 0.5 * np.einsum("jk,kjr->r", inverse, dinfo)
    return pl.loglik + 0.5 * logdet, score, information, pl.loglik


def _firth_newton(Z: np.ndarray, risk: RiskSets, *, ties: str, tol: float, n_iter: int):
    """Maximise Firth's penalised likelihood: Newton directions with I(b) as the curvature, and a line search.

    I(b) is not the curvature of the penalty, so a full step can overshoot along a nearly flat
    direction and the iterations oscillate. Along each direction the step is therefore cut to where the
    penalised score's slope changes sign (a secant step on the slope), then halved while the
    penalised likelihood does not increase; a step is at most 5 log hazard ratio units.
    """
    def at(beta: np.ndarray):
        try:
            return firth_likelihood(Z, beta, risk, ties=ties)
        except LinAlgError:
            return None

    beta = np.zeros(Z.shape[1])
    current = at(beta)
    if current is None:
        raise ValueError(_SINGULAR)
    for iteration in range(1, n_iter + 1):
        value, score, info, _ = current
        direction = cho_solve(cho_factor(info), score)
        direction *= min(1.0, _MAX_STEP / max(np.max(np.abs(direction)), 1e-300))
        length = 1.0
        new = at(beta + direction)
        slope = score @ direction
        if new is not None and new[1] @ direction < 0 < slope:  # past the maximum along the direction
            length = slope / (slope - new[1] @ direction)
            new = at(beta + length * direction)
        halvings = 0
        while (new is None or new[0] < value - 1e-12 * abs(value)) and halvings < 30:
            length /= 2
            new = at(beta + length * direction)
            halvings += 1
        if new is None:
            raise ValueError(_SINGULAR)
        step = length * direction
        beta, current = beta + step, new
        if np.max(np.abs(step)) < tol:
            return beta, current[3], current[2], iteration
    warnings.warn(f"FirthCoxPH fit: Newton-Raphson did not converge in n_iter={n_iter} iterations",
                  ConvergenceWarning, stacklevel=3)
    return beta, current[3], current[2], n_iter


def monotone_direction(Z: np.ndarray, risk: RiskSets) -> np.ndarray | None:
    """A direction along which the partial likelihood is monotone, or None when its maximum is finite.

    The likelihood increases without bound along ``d`` exactly when every event's covariates have
    the largest ``d . z`` of its risk set (``d . (z_i - z_j) >= 0`` for every event i and every j at
    risk then) with at least one strict inequality. The linear programme maximises the sum of those
    differences over ``-1 <= d <= 1`` subject to all of them being non-negative; a positive optimum
    is such a direction (scaled so that its largest entry is 1 in absolute value).

    Returns
    -------
    ndarray of shape (n_features,) or None
    """
    Zs = Z[risk.order]
    differences = []
    for row, start in zip(risk.event_rows, risk.start[risk.event_group], strict=True):
        at_risk = np.unique(Zs[start:], axis=0)  # distinct covariate patterns at risk: few for categorical data
        differences.append(Zs[row] - at_risk)
    D = np.unique(np.concatenate(differences), axis=0)
    D = D[np.any(D != 0, axis=1)]
    if D.size == 0:
        return None
    result = linprog(-D.sum(axis=0), A_ub=-D, b_ub=np.zeros(len(D)), bounds=[(-1, 1)] * Z.shape[1],
                     method="highs")
    scale = np.abs(D).sum()
    if result.status != 0 or -result.fun <= 1e-9 * max(scale, 1.0):
        return None
    direction = np.where(np.abs(result.x) < 1e-9, 0.0, result.x)
    return direction / np.max(np.abs(direction))


class FirthCoxPH(CoxPH):
    """Cox proportional hazards whose estimate stays finite when the partial likelihood is monotone.

    With ``penalty="auto"`` the ordinary (Efron or Breslow) maximum partial likelihood estimate is
    fitted, exactly as :class:`CoxPH` with ``alpha=0``, whenever it exists. When it does not (the
    unpenalised Newton iterations diverge and :func:`monotone_direction` finds a direction of
    monotone likelihood: separation), Firth's penalised partial likelihood is maximised instead
    (:func:`firth_likelihood`). ``penalty="firth"`` always uses Firth's penalty (R ``coxphf``
    with Breslow ties). Standard errors are from the inverse information at the estimate.

    Parameters
    ----------
    penalty : {"auto", "firth"}, default="auto"
    ties : {"efron", "breslow"}, default="efron"
    tol : float, default=1e-9
    n_iter : int, default=100

    Attributes
    ----------
    penalty_ : str
        ``"none"`` (the ordinary estimate) or ``"firth"``.
    separation_ : str or None
        Why Firth's penalty was applied: the covariate direction of monotone likelihood.
    coef_, variance_matrix_, ... :
        As :class:`CoxPH`.

    References
    ----------
    .. [1] Heinze G, Schemper M. A solution to the problem of monotone likelihood in Cox regression.
       Biometrics 2001;57:114-119.
    """

    _parameter_constraints: dict = {
        "penalty": [StrOptions({"auto", "firth"})],
        "ties": [StrOptions({"efron", "breslow"})],
        "tol": [Interval(numbers.Real, 0, None, closed="neither")],
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left")],
    }

    def __init__(self, *, penalty: str = "auto", ties: str = "efron", tol: float = 1e-9, n_iter: int = 100):
        self.penalty = penalty
        self.ties = ties
        self.tol = tol
        self.n_iter = n_iter

    def _fit_coef(self, X: np.ndarray, y: np.ndarray, Z: np.ndarray, event: np.ndarray, risk: RiskSets) -> None:
        self.penalty_, self.separation_ = "none", None
        fitted = self._maximum_likelihood(Z, risk) if self.penalty == "auto" else None
        if fitted is None:
            if self.penalty == "auto":
                self.separation_ = self._separation(Z, risk)
            fitted = _firth_newton(Z, risk, ties=self.ties, tol=self.tol, n_iter=self.n_iter)
            self.penalty_ = "firth"
        beta, loglik, info, self.n_iter_ = fitted
        self.coef_ = beta
        self.log_likelihood_ = float(loglik)
        self.variance_matrix_ = np.linalg.inv(info)
        self._set_inference()

    def _maximum_likelihood(self, Z: np.ndarray, risk: RiskSets):
        """The ordinary estimate, or None when its Newton iterations diverge or end at a singular information.

        Along a direction of monotone likelihood the gain per step eventually falls below rounding, so
        the iterations can stop with a coefficient far out and an information that has lost a dimension
        (condition number beyond 1e12): that is divergence, not a maximum.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            try:
                beta, pl, info, iterations = newton_raphson(Z, risk, alpha=0.0, ties=self.ties, tol=self.tol,
                                                     n_iter=self.n_iter)
            except (ConvergenceWarning, ValueError):
                return None
        if np.linalg.cond(info) > _MAX_CONDITION:
            return None
        return beta, pl.loglik, info, iterations

    def _separation(self, Z: np.ndarray, risk: RiskSets) -> str:
        """Describe the direction of monotone likelihood; refuse a divergence that is not separation."""
        direction = monotone_direction(Z, risk)
        if direction is None:  # not separation: a covariate constant in the risk sets, or collinear ones
            raise ValueError(_SINGULAR)
        names = getattr(self, "feature_names_in_", None)
        names = [f"x{i}" for i in range(direction.size)] if names is None else [str(n) for n in names]
        terms = [f"{'+' if d > 0 else '-'}{name}" if abs(d) == 1 else f"{d:+.2g} {name}"
                 for d, name in zip(direction, names, strict=True) if d != 0]
        return ("monotone partial likelihood (separation) along " + " ".join(terms) + ": every event had the "
                "highest value of this combination in its risk set, so the ordinary estimate is infinite; "
                "Firth's penalised likelihood (Heinze & Schemper 2001) gives finite estimates")

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`CoxPH.to_dict`, plus the penalty applied and why."""
        return {**super().to_dict(), "penalty_applied": self.penalty_, "separation": self.separation_}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FirthCoxPH:
        """Rebuild a fitted :class:`FirthCoxPH` from :meth:`to_dict` output (no pickle involved)."""
        model = super().from_dict(d)
        model.penalty_, model.separation_ = d["penalty_applied"], d["separation"]
        return model
