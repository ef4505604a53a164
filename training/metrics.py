"""Performance measures of a survival model on one test set, with undefined values kept and explained.

:func:`score_predictions` gives the discrimination and accuracy figures of one validation fold
(Harrell's C, Uno's C, time-dependent AUC and Brier score at each horizon, integrated Brier score);
:func:`calibration_slope`, :func:`slope_with_se` and :func:`likelihood_ratio` give the one-covariate Cox
model (Efron ties) that the bootstrap optimism correction, the evaluation and the sample-size
criteria need, fitted by the project's :class:`~cnslrisk.model.estimators.CoxPH` Newton-Raphson.

A metric that cannot be computed in a fold is returned as ``nan`` together with a reason; nothing
is dropped or filled. scikit-survival's inverse-probability-of-censoring-weighted (IPCW) metrics
need the censoring distribution of the training data at every test time, so the test outcome is
administratively censored at the training follow-up (:func:`follow_up_limit`) and the returned
``note`` says so whenever that changed a test subject.

The figures are scikit-survival's, computed by :mod:`.concordance` (Harrell's and Uno's C in
O(n log n)) and :mod:`.ipcw` (the censoring distribution fitted once per test set, every horizon in
one pass), which repeat its arithmetic and so give the same numbers; inputs scikit-survival would
refuse (no event, a non-finite score) still go to scikit-survival, so that its error is the reason.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sksurv.exceptions import NoComparablePairException
from sksurv.metrics import (
    brier_score,
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import kaplan_meier_estimator

from cnslrisk.model.estimators._breslow import RiskSets, partial_likelihood
from cnslrisk.model.estimators.cox import newton_raphson
from cnslrisk.model.outputs import horizon_label

from .concordance import comparable_counts, concordance_from_counts
from .ipcw import CensoringSurvival, brier_scores, dynamic_auc, kaplan_meier, uno_c

__all__ = [
    "horizon_label",
    "follow_up_limit",
    "censor_at",
    "harrell_c",
    "score_predictions",
    "calibration_slope",
    "slope_with_se",
    "likelihood_ratio",
]


def follow_up_limit(y_train: np.ndarray) -> float:
    """Largest time at which the training data still identify the censoring distribution.

    This is the largest observed training time, or, when the reverse Kaplan-Meier estimate of
    the censoring survival G reaches zero earlier, the first time where it does. IPCW weights
    1 / G(t) exist only before that time.

    Parameters
    ----------
    y_train : structured array, shape = (n_samples,)
        Training outcome (bool event, float time).

    Returns
    -------
    tau : float
        The truncation time.
    """
    return _follow_up(y_train)[0]


def _follow_up(y_train: np.ndarray) -> tuple[float, bool]:
    """The truncation time and whether G is still positive at it."""
    event, time = y_train[y_train.dtype.names[0]], y_train[y_train.dtype.names[1]]
    times, g = (kaplan_meier if _plain(y_train, events=False) else kaplan_meier_estimator)(event, time, reverse=True)
    zero = np.flatnonzero(g <= 0)
    return (float(times[zero[0]]), False) if zero.size else (float(time.max()), True)


def censor_at(y: np.ndarray, tau: float, inclusive: bool) -> tuple[np.ndarray, int]:
    """Administratively censor ``y`` at ``tau``; return the new outcome and how many rows changed."""
    event_name, time_name = y.dtype.names
    beyond = y[time_name] >= tau if inclusive else y[time_name] > tau
    if not beyond.any():
        return y, 0
    out = y.copy()
    out[time_name][beyond] = tau
    out[event_name][beyond] = False
    return out, int(beyond.sum())


def harrell_c(y: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index of ``risk`` (higher = earlier event); raises when undefined.

    Parameters
    ----------
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    risk : ndarray, shape = (n_samples,)
        Risk scores.

    Returns
    -------
    c : float
        Harrell's C.

    Raises
    ------
    ValueError
        When all samples are censored or no pair is comparable.

    References
    ----------
    .. [1] Harrell FE, Lee KL, Mark DB. Multivariable prognostic models. Stat Med 1996;15:361-387.
    """
    event_name, time_name = y.dtype.names
    risk = np.asarray(risk)
    try:
        if _plain(y) and y.size >= 2 and _finite(risk) and risk.shape == y.shape:
            return concordance_from_counts(comparable_counts(y[event_name], y[time_name], risk))
        # what scikit-survival refuses, it refuses with its own message
        return float(concordance_index_censored(y[event_name], y[time_name], risk)[0])
    except NoComparablePairException as exc:
        raise ValueError("no comparable pairs") from exc


def _plain(y: np.ndarray, events: bool = True) -> bool:
    """Whether scikit-survival takes outcome ``y`` as it is (bool events, finite times >= 0, an event)."""
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    return (event.dtype == bool and time.dtype.kind in "fiu" and (not events or bool(event.any()))
            and _finite(time) and bool((time >= 0).all()))


def _finite(values: np.ndarray) -> bool:
    return values.dtype.kind in "fiu" and bool(np.isfinite(values).all())


def _undefined_reason(exc: Exception) -> str:
    text = str(exc).strip().rstrip(".")
    return text[:1].lower() + text[1:]


def score_predictions(
    y_train: np.ndarray,
    y_test: np.ndarray,
    risk: np.ndarray,
    survival: np.ndarray,
    times: Sequence[float],
    horizons: Sequence[float],
) -> dict[str, Any]:
    """Discrimination and prediction-error metrics of one test set.

    Metrics (names used as keys): ``c_index`` (Harrell's C on ``risk``), ``uno_c`` (Uno's IPCW C
    truncated at the training follow-up), ``auc_<h>`` (cumulative/dynamic AUC at each horizon h),
    ``brier_<h>`` (IPCW Brier score at h) and ``ibs`` (integrated Brier score over the columns of
    ``survival`` from the first to the last horizon, by the trapezoidal rule). The integrated score
    is undefined unless the whole range lies inside the fold's follow-up, so that it is always
    taken over the same interval and fold values can be averaged.

    The censoring distribution for the IPCW metrics is the reverse Kaplan-Meier estimate of the
    training outcome; test times beyond :func:`follow_up_limit` are administratively censored
    there (no metric at a horizon before that limit changes), and ``note`` says how many.

    Parameters
    ----------
    y_train : structured array, shape = (n_train,)
        Training outcome (bool event, float time).
    y_test : structured array, shape = (n_test,)
        Test outcome.
    risk : ndarray, shape = (n_test,)
        Risk scores of the test samples (higher = earlier event).
    survival : ndarray, shape = (n_test, len(times))
        Predicted survival probabilities of the test samples at ``times``.
    times : sequence of float
        Increasing time points of the columns of ``survival``; must contain every horizon.
    horizons : sequence of float
        Time points for ``auc_<h>`` and ``brier_<h>``.

    Returns
    -------
    scores : dict
        ``metrics`` (name -> float, ``nan`` when undefined), ``reasons`` (name -> reason for every
        undefined metric), ``note`` (truncation note, empty when nothing was truncated) and
        ``truncation`` (the truncation time).

    References
    ----------
    .. [1] Uno H, Cai T, Pencina MJ, D'Agostino RB, Wei LJ. On the C-statistics for evaluating overall
           adequacy of risk prediction procedures with censored survival data. Stat Med 2011;30:1105-1117.
    .. [2] Uno H, Cai T, Tian L, Wei LJ. Evaluating prediction rules for t-year survivors with censored
           regression models. J Am Stat Assoc 2007;102:527-537.
    .. [3] Graf E, Schmoor C, Sauerbrei W, Schumacher M. Assessment and comparison of prognostic
           classification schemes for survival data. Stat Med 1999;18:2529-2545.
    """
    times = np.asarray(times, dtype=float)
    column = {float(t): j for j, t in enumerate(times)}
    metrics: dict[str, float] = {}
    reasons: dict[str, str] = {}

    def record(name: str, precondition: str, compute: Callable[..., Any], *args: Any) -> None:
        if precondition:
            metrics[name], reasons[name] = float("nan"), precondition
            return
        try:
            metrics[name] = float(compute(*args))
        except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
            metrics[name], reasons[name] = float("nan"), _undefined_reason(exc)

    record("c_index", "", harrell_c, y_test, risk)

    tau, g_positive = _follow_up(y_train)
    event_name, time_name = y_train.dtype.names
    y_cut, n_cut = censor_at(y_test, tau, inclusive=not g_positive)
    note = (
        f"ipcw metrics: test follow-up truncated at the training follow-up {tau:g}; "
        f"{n_cut} test subject(s) censored there"
        if n_cut
        else ""
    )
    t_test, e_test = y_cut[time_name], y_cut[event_name]
    risk, survival = np.asarray(risk), np.asarray(survival)
    # the censoring distribution fitted once for every metric, unless scikit-survival would refuse the inputs
    fast = _plain(y_train) and _plain(y_cut) and _finite(risk) and _finite(survival)
    censoring = CensoringSurvival(y_train[event_name], y_train[time_name]) if fast else None

    no_event = "" if e_test.any() else "all test samples are censored before the training follow-up"
    if censoring is not None and (e_test & (t_test < tau)).any():
        record("uno_c", no_event, uno_c, censoring, e_test, t_test, risk, tau)
    else:
        record("uno_c", no_event, lambda: concordance_index_ipcw(y_train, y_cut, risk, tau=tau)[0])

    def horizon_problem(h: float) -> str:
        if h >= tau:
            return f"horizon {h:g} is not before the training follow-up {tau:g}"
        if h < t_test.min():
            return f"horizon {h:g} is before the first test time"
        if h >= t_test.max():
            return f"no test subject is followed beyond horizon {h:g}"
        return ""

    lo, hi = float(min(horizons)), float(max(horizons))
    grid = (times >= lo) & (times <= hi)
    ibs_problem = "needs at least two horizons" if lo == hi else (horizon_problem(lo) or horizon_problem(hi))
    problems = {float(h): horizon_problem(float(h)) for h in horizons}
    auc_problems = {h: problem or ("" if (e_test & (t_test <= h)).any() else f"no test event by horizon {h:g}")
                    for h, problem in problems.items()}
    if censoring is not None:  # every horizon in one pass; a failure fails each figure it would have failed
        auc = _batch(lambda at: dynamic_auc(censoring, e_test, t_test, risk, at),
                     [h for h, problem in auc_problems.items() if not problem])
        columns = sorted({column[h] for h, problem in problems.items() if not problem}
                         | (set() if ibs_problem else set(np.flatnonzero(grid))))
        brier = _batch(lambda at: brier_scores(censoring, e_test, t_test, survival[:, [column[t] for t in at]],
                                               np.asarray(at)), [float(times[j]) for j in columns])
    else:
        def auc(t: float) -> float:
            return cumulative_dynamic_auc(y_train, y_cut, risk, [t])[0][0]

        def brier(t: float) -> float:
            return brier_score(y_train, y_cut, survival[:, column[t]], [t])[1][0]

    for h, problem in problems.items():
        label = horizon_label(h)
        record(f"auc_{label}", auc_problems[h], auc, h)
        record(f"brier_{label}", problem, brier, h)

    if censoring is not None:
        def ibs(at: np.ndarray) -> float:  # integrated_brier_score's trapezoidal rule
            return np.trapezoid([brier(float(t)) for t in at], at) / (at[-1] - at[0])

        record("ibs", ibs_problem, ibs, times[grid])
    else:
        record("ibs", ibs_problem, integrated_brier_score, y_train, y_cut, survival[:, grid], times[grid])
    return {"metrics": metrics, "reasons": reasons, "note": note, "truncation": tau}


def _batch(compute: Callable[[list[float]], np.ndarray], points: list[float]) -> Callable[[float], float]:
    """``compute(points)`` once; a lookup per point that raises the batch's error, if it failed."""
    try:
        values = dict(zip(points, compute(points), strict=True)) if points else {}
    except (ValueError, ZeroDivisionError, FloatingPointError) as exc:
        error = exc

        def failed(_: float) -> float:
            raise error

        return failed
    return values.__getitem__


def _cox_on_score(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """Coefficient and Wald SE of the project's Cox model (Efron ties) on ``score`` alone; ValueError when undefined.

    This is ``CoxPH().fit`` without its estimator shell (input checks, Breslow baseline, coefficient table),
    which cost three times the fit itself on a validation fold: the same Newton-Raphson on the same
    centred score, so the same numbers, for the thousands of slopes a validation fits.
    """
    x = np.asarray(score, dtype=float)[:, None]
    if not np.isfinite(x).all():
        raise ValueError("the score is not finite (a predicted survival of 0 or 1)")
    if not y[y.dtype.names[0]].any():
        raise ValueError("all samples are censored")
    if np.ptp(x) == 0:
        raise ValueError("the score is constant")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            risk = RiskSets.build(y[y.dtype.names[1]], y[y.dtype.names[0]])
            beta, _, information, _ = newton_raphson(x - x.mean(axis=0), risk, alpha=0.0, ties="efron", tol=1e-9,
                                                     n_iter=100)
    except (ValueError, ConvergenceWarning) as exc:  # the information vanishes: no finite maximum
        raise ValueError("the one-covariate cox fit did not converge (monotone or flat partial likelihood)") from exc
    return float(beta[0]), float(np.sqrt(np.diag(np.linalg.inv(information)))[0])


def calibration_slope(y: np.ndarray, score: np.ndarray) -> float:
    """Calibration slope: coefficient of ``score`` as the only covariate of a Cox model (Efron ties).

    For a Cox model ``score`` is its linear predictor x'b; a slope below 1 means the predictions
    are too extreme (overfitting). Shifting ``score`` by a constant does not change the slope, so
    the log cumulative hazard log(-log S(t|x)) = log H0(t) + x'b of a Cox model gives the same slope.

    Parameters
    ----------
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    score : ndarray, shape = (n_samples,)
        The model's linear predictor or log cumulative hazard at a reference time.

    Returns
    -------
    slope : float
        Maximum partial likelihood estimate (Efron's approximation for tied times).

    Raises
    ------
    ValueError
        When the score is not finite or constant, all samples are censored or the fit does not converge.

    References
    ----------
    .. [1] van Houwelingen JC, Le Cessie S. Predictive value of statistical models. Stat Med 1990;9:1303-1325.
    .. [2] Harrell FE. Regression Modeling Strategies, 2nd ed. Springer 2015, sections 5.3 and 20.
    .. [3] Efron B. The efficiency of Cox's likelihood function for censored data. JASA 1977;72:557-565.
    """
    return _cox_on_score(y, score)[0]


def slope_with_se(y: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """:func:`calibration_slope` and its standard error, from the same fit.

    The standard error is the Wald one of the one-covariate Cox model: the square root of the
    inverse observed information at the estimate.

    Returns
    -------
    slope, se : float

    Raises
    ------
    ValueError
        As :func:`calibration_slope`.
    """
    return _cox_on_score(y, score)


def likelihood_ratio(y: np.ndarray, linear_predictor: np.ndarray) -> float:
    """Likelihood-ratio statistic of a fitted Cox model from its linear predictor (Efron ties).

    The partial likelihood depends on the coefficients only through x'b, so
    LR = 2 (l(b) - l(0)) is twice the log partial likelihood of ``linear_predictor`` with
    coefficient 1 minus that with coefficient 0.

    Parameters
    ----------
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time) the model was fitted to.
    linear_predictor : ndarray, shape = (n_samples,)
        The fitted model's x'b.

    Returns
    -------
    lr : float
        The likelihood-ratio chi-square statistic.
    """
    x = np.asarray(linear_predictor, dtype=float)[:, None]
    x = x - x.mean()  # the likelihood does not change; its sums lose fewer digits
    risk = RiskSets.build(y[y.dtype.names[1]], y[y.dtype.names[0]])
    at = [partial_likelihood(x, np.array([b]), risk, with_information=False).loglik for b in (1.0, 0.0)]
    return 2.0 * (at[0] - at[1])
