"""Relapse pattern as competing risks: cause-specific Cox models combined by the product-limit formula.

:class:`CauseSpecificCox` fits one :class:`~cnslrisk.model.estimators.CoxPH` per cause (every other
outcome counts as censoring, no patient is dropped) and turns the cause-specific hazards into
absolute risks (cumulative incidences) as R riskRegression's ``CSC`` + ``predictRisk`` do.
:func:`competing_outcome` builds the outcome array it is fitted to.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data
from sksurv.util import Surv

from ._checks import require_fitted
from .estimators import CoxPH
from .estimators._breslow import RiskSets, efron_increments
from .estimators.firth import FirthCoxPH

__all__ = ["CauseSpecificCox", "competing_outcome", "cause_text"]

_FORMAT = "cnslrisk.cause-specific-cox/1"
_COX_CLASSES = {"CoxPH": CoxPH, "FirthCoxPH": FirthCoxPH}
_MIN_EVENTS = 2
_CHUNK_ROWS = 1 << 16  # rows per chunk of the product-limit recursion: its few vectors stay in the CPU cache
_FEW_ROWS = 128  # below this many rows the recursion is vectorised over the event times instead


def cause_text(values: Any) -> np.ndarray:
    """Cause values as text: numbers without a trailing ``.0`` (``1`` and ``1.0`` give ``"1"``), labels as is.

    Parameters
    ----------
    values : scalar or array-like
        Cause codes (labels or numbers).

    Returns
    -------
    ndarray of str
    """
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf":
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError("field cause: a value is missing or not finite; every row needs a cause")
        integral = arr.dtype.kind in "biu" or bool(np.all(arr == np.round(arr)))
        return arr.astype(np.int64).astype(str) if integral else np.asarray([f"{v:g}" for v in arr.ravel()]).reshape(
            arr.shape)
    arr = np.asarray(values, dtype=object)
    missing = np.asarray([v is None or (isinstance(v, float) and np.isnan(v)) for v in arr.ravel()])
    if missing.any():
        raise ValueError(f"field cause: {int(missing.sum())} row(s) have a missing value; every row needs a cause")
    return arr.astype(str)


def competing_outcome(cause: Any, time: Any) -> np.ndarray:
    """The competing-risks outcome: a structured array with fields ``cause`` (str) and ``time`` (float).

    Parameters
    ----------
    cause : array-like, shape (n_samples,)
        Event type of each row, including the censored value (e.g. ``"none"`` or ``0``); converted
        by :func:`cause_text`.
    time : array-like, shape (n_samples,)
        Time of the event or of censoring.

    Returns
    -------
    ndarray, shape (n_samples,)
        dtype ``[("cause", "<U..."), ("time", "<f8")]``.
    """
    text = cause_text(np.asarray(cause).ravel())
    t = np.asarray(time, dtype=float).ravel()
    if text.shape != t.shape:
        raise ValueError(f"cause and time must have the same length; got {text.size} and {t.size}")
    width = max(1, max((len(s) for s in text), default=1))
    out = np.empty(t.size, dtype=[("cause", f"<U{width}"), ("time", "<f8")])
    out["cause"], out["time"] = text, t
    return out


class CauseSpecificCox(BaseEstimator):
    """Cumulative incidence of competing events from one Cox model per cause (R riskRegression ``CSC``).

    For each cause ``k`` a Cox model (Efron or Breslow ties) is fitted to all rows with the event
    ``cause == k`` and every other outcome, competing causes included, as censoring. By default
    (``alpha=0``) it is the standard, unpenalised cause-specific Cox model, with Firth's penalty only
    for a cause whose partial likelihood is monotone (separation: its maximum likelihood estimate is
    infinite; :class:`~cnslrisk.model.estimators.firth.FirthCoxPH`); ``alpha > 0`` is an explicit
    ridge penalty on every cause instead. Its Breslow baseline (for a patient at the training means) gives the hazard
    increments ``dL_k(s|x) = dH0_k(s) exp(lp_k(x))`` at the distinct event times ``s`` of cause
    ``k``. On the union of all causes' event times the absolute risk of cause ``k`` is the
    Aalen-Johansen (product-limit) combination

    ``F_k(t|x) = sum_{s <= t} S(s-|x) dL_k(s|x)``, ``S(s-|x) = prod_{u < s} (1 - sum_j dL_j(u|x))``,

    as in riskRegression ``predictRisk`` with its default ``product.limit = TRUE`` [1]_, [2]_. The
    alternative (``product.limit = FALSE``) takes ``S(s-|x) = exp(-sum_j L_j(s-|x))``; it is not
    offered here. When all causes together give a jump ``sum_j dL_j(u|x) > 1`` (possible for a very
    high-risk row at the last event times) the all-cause jump is capped at 1 and shared between
    the causes in proportion to their hazards, so that ``S(t|x) + sum_k F_k(t|x) = 1`` always holds.
    The computation is vectorised over rows and done in chunks of rows (no Python loop per row).

    Parameters
    ----------
    causes : sequence of str or None, default=None
        The causes to model, in output order. None takes the sorted non-censored values seen in fit.
        A cause value in the data that is neither listed nor ``censored`` is an error (it must not
        silently count as censoring).
    censored : str or int, default="none"
        The cause value meaning no event (e.g. ``0`` in a numeric coding); compared as text.
    ties : {"efron", "breslow"}, default="efron"
        Handling of tied event times in each cause-specific partial likelihood.
    alpha : float, default=0.0
        Ridge penalty of each cause-specific model; 0 = the ordinary Cox model (Firth's penalty only
        under separation, see above).

    Attributes
    ----------
    causes_ : ndarray of str, shape (n_causes,)
        Modelled causes, in output order.
    models_ : list of CoxPH
        The fitted cause-specific models, one per cause, in the order of ``causes_`` (each a
        :class:`~cnslrisk.model.estimators.firth.FirthCoxPH` when ``alpha=0``).
    event_counts_ : dict of str to int
        Number of events of each cause in the training data.
    unique_times_ : ndarray, shape (n_event_times,)
        Union of the causes' distinct event times.
    baseline_increments_ : ndarray, shape (n_event_times, n_causes)
        Breslow baseline hazard increments ``dH0_k`` of each cause on ``unique_times_``.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Feature names, when X was a DataFrame.

    Notes
    -----
    A cause with fewer than 2 events is refused: its Cox model has no information. Merge it with
    another cause, or recode its rows as censored (which changes what the other cumulative
    incidences mean: say so), before fitting. The baseline increments are Breslow's ``d_j / S0_j``
    with ``ties="breslow"`` and Efron's tie-adjusted ones with ``ties="efron"``
    (:func:`~cnslrisk.model.estimators._breslow.efron_increments`, as riskRegression takes them; the
    same without ties). Models saved before 0.2 kept Breslow's for both, and are read back as saved.

    References
    ----------
    .. [1] Ozenne B, Sorensen AL, Scheike T, Torp-Pedersen C, Gerds TA. riskRegression: predicting the
       risk of an event using Cox regression models. The R Journal 2017;9(2):440-460.
    .. [2] Benichou J, Gail MH. Estimates of absolute cause-specific risk in cohort studies.
       Biometrics 1990;46(3):813-826.
    .. [3] Aalen OO, Johansen S. An empirical transition matrix for non-homogeneous Markov chains
       based on censored observations. Scand J Statist 1978;5:141-150.
    """

    _parameter_constraints: dict = {
        "causes": [list, tuple, None],
        "censored": [str, numbers.Integral],
        "ties": [StrOptions({"efron", "breslow"})],
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
    }

    def __init__(
        self, causes: Sequence[Any] | None = None, *, censored: Any = "none", ties: str = "efron", alpha: float = 0.0
    ):
        self.causes = causes
        self.censored = censored
        self.ties = ties
        self.alpha = alpha

    def _check_outcome(self, y: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        names = getattr(getattr(y, "dtype", None), "names", None)
        if names is None or set(names) != {"cause", "time"}:
            raise ValueError(
                "CauseSpecificCox.fit: y must be a structured array with fields ('cause', 'time'); "
                "build it with competing_outcome(cause, time)"
            )
        if y.shape[0] != n:
            raise ValueError(f"CauseSpecificCox.fit: X has {n} rows but y has {y.shape[0]}")
        time = np.asarray(y["time"], dtype=float)
        if not np.isfinite(time).all() or (time < 0).any():
            raise ValueError("CauseSpecificCox.fit: field time: every value must be finite and >= 0")
        return cause_text(y["cause"]), time

    def _resolve_causes(self, cause: np.ndarray) -> np.ndarray:
        censored = str(cause_text([self.censored])[0])
        seen = sorted({str(c) for c in np.unique(cause)} - {censored})
        declared = seen if self.causes is None else [str(c) for c in cause_text(list(self.causes))]
        if censored in declared:
            raise ValueError(f"CauseSpecificCox.fit: parameter causes: {censored!r} is the censored value")
        undeclared = [c for c in seen if c not in declared]
        if undeclared:
            raise ValueError(
                f"CauseSpecificCox.fit: field cause: {undeclared[0]!r} is neither one of the causes {declared} nor "
                f"the censored value {censored!r}; list it in causes or fix parameter censored"
            )
        for c in declared:
            count = int(np.sum(cause == c))
            if count < _MIN_EVENTS:
                raise ValueError(
                    f"CauseSpecificCox.fit: cause {str(c)!r}: {count} event(s), fewer than the {_MIN_EVENTS} a "
                    "cause-specific Cox model needs; merge it with another cause or recode its rows as censored"
                )
        return np.asarray(declared, dtype=str)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: np.ndarray) -> CauseSpecificCox:
        """Fit one Cox model per cause on all rows.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates (e.g. the output of :class:`~cnslrisk.model.features.FeatureEncoder`).
        y : structured array, shape (n_samples,)
            Fields ``cause`` and ``time``, as built by :func:`competing_outcome`.

        Returns
        -------
        self
        """
        array = validate_data(self, X, ensure_min_samples=2, dtype=np.float64)
        cause, time = self._check_outcome(y, array.shape[0])
        causes = self._resolve_causes(cause)
        models = []
        for c in causes:
            model = CoxPH(float(self.alpha), ties=self.ties) if self.alpha > 0 else FirthCoxPH(ties=self.ties)
            try:
                model.fit(X, Surv.from_arrays(cause == c, time))
            except ValueError as exc:
                raise ValueError(f"CauseSpecificCox.fit: cause {str(c)!r}: {exc}") from exc
            if self.ties == "efron":  # the tie-adjusted baseline that goes with Efron's likelihood
                model.cum_baseline_hazard_ = np.cumsum(efron_increments(array - model.x_mean_, model.coef_,
                                                                        RiskSets.build(time, cause == c)))
                model.baseline_survival_ = np.exp(-model.cum_baseline_hazard_)
            models.append(model)
        self.causes_ = causes
        self.models_ = models
        self.event_counts_ = {str(c): int(np.sum(cause == c)) for c in causes}
        self._set_grid()
        return self

    def _set_grid(self) -> None:
        self.unique_times_ = np.unique(np.concatenate([m.unique_times_ for m in self.models_]))
        increments = np.zeros((self.unique_times_.size, len(self.models_)))
        for k, m in enumerate(self.models_):
            at = np.searchsorted(self.unique_times_, m.unique_times_)
            increments[at, k] = np.diff(m.cum_baseline_hazard_, prepend=0.0)
        self.baseline_increments_ = increments
        # the linear predictors of all causes at once: (x - x_mean) @ coef = x @ coef - x_mean @ coef
        self._coefs = np.vstack([m.coef_ for m in self.models_])
        self._offsets = np.array([m.x_mean_ @ m.coef_ for m in self.models_])[:, None]

    def _relative_hazards(self, X: Any, check_input: bool = True) -> np.ndarray:
        require_fitted(self, "models_")
        if check_input:
            X = validate_data(self, X, reset=False, dtype=np.float64)
        # each row's products summed by einsum's own loop (not a BLAS product) keep its number independent of
        # the batch it is scored in; one cause per row of the result, as the product-limit recursion reads them
        out = np.einsum("ij,kj->ki", X, self._coefs)
        out -= self._offsets
        return np.exp(out, out=out)

    def relative_hazards(self, X: Any, *, check_input: bool = True) -> np.ndarray:
        """``exp(lp_k(x))`` of each cause against the training means, shape (n_causes, n_samples).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates.
        check_input : bool, default=True
            False skips the checks of ``X`` (an already checked float64 array with the training columns).
        """
        return self._relative_hazards(X, check_input)

    def penalties(self) -> dict[str, dict[str, Any]]:
        """How each cause's model was estimated: ``penalty`` (``"none"``, ``"firth"`` or ``"ridge"``) and ``reason``.

        Returns
        -------
        dict of str to dict
            Per cause: ``penalty``, ``alpha`` (the ridge penalty, 0 otherwise) and ``reason`` (why Firth's
            penalty was needed, or that the ridge was asked for; None for the ordinary model).
        """
        require_fitted(self, "models_")
        out = {}
        for cause, model in zip(self.causes_, self.models_, strict=True):
            if isinstance(model, FirthCoxPH):
                out[str(cause)] = {"penalty": model.penalty_, "alpha": 0.0, "reason": model.separation_}
            else:
                out[str(cause)] = {"penalty": "ridge" if model.alpha > 0 else "none", "alpha": float(model.alpha),
                                   "reason": "ridge penalty asked for in the config" if model.alpha > 0 else None}
        return out

    def predict_cause_specific_risk(self, X: Any) -> np.ndarray:
        """Linear predictors of the cause-specific models (log hazard ratio against the training means).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates.

        Returns
        -------
        ndarray, shape (n_samples, n_causes)
        """
        return np.log(self._relative_hazards(X)).T

    def _product_limit(self, hazards: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CIF (n, K, T) and all-cause survival (n, T) at ``times`` for relative hazards ``hazards`` (K, n).

        Per event time ``u``: ``F_k += S(u-) dH0_k(u)`` (times ``r_k`` at the end), then
        ``S *= 1 - sum_j dL_j(u)``. Many rows: the recursion runs over the event times, each step one
        element-wise operation on a chunk of rows held as a contiguous vector. A few rows (an API
        request): the same operations vectorised over the event times instead (a loop over 30 or so
        event times costs more than the arithmetic). Both add and multiply in the same order, with no
        matrix products or reductions across rows, so a row's numbers are the same in either path,
        whatever the other rows or the chunk size (tested).
        """
        index = np.searchsorted(self.unique_times_, times, side="right")  # event times <= t: [0, index)
        n_causes, n = hazards.shape
        cif = np.zeros((n_causes, times.size, n))  # rows on the fast axis while computing; returned transposed
        surv = np.ones((times.size, n))
        m = int(index.max(initial=0))  # the recursion is needed up to here only
        readers: dict[int, list[int]] = {}  # event time i -> the horizons whose sums are complete after it
        for j, stop in enumerate(index):
            if stop > 0:
                readers.setdefault(int(stop) - 1, []).append(j)
        dH = self.baseline_increments_
        if m == 0:  # every time before the first event: no incidence yet
            return cif.transpose(2, 0, 1), surv.T
        if n < _FEW_ROWS:
            self._product_limit_few(hazards, dH[:m], readers, cif, surv)
            return cif.transpose(2, 0, 1), surv.T
        causes_at = [np.flatnonzero(dH[i]) for i in range(m)]  # a zero increment adds exactly 0: skipped

        def recurse(lo: int) -> None:
            rk = hazards[:, lo:lo + _CHUNK_ROWS]
            width = rk.shape[1]
            s, total, tmp, term = np.ones(width), np.empty(width), np.empty(width), np.empty(width)
            acc = np.zeros((n_causes, width))
            # the largest all-cause jump any row of the chunk can have at each event time (rounding is monotone,
            # so no row's own sum exceeds it): where it is at most 1, no jump needs the cap below
            largest = rk.max(axis=1)
            bound = dH[:m, 0] * largest[0]
            for k in range(1, n_causes):
                bound += dH[:m, k] * largest[k]
            for i in range(m):
                causes = causes_at[i]
                if causes.size == 0:
                    continue
                np.multiply(rk[causes[0]], dH[i, causes[0]], out=total)  # all-cause jump, the causes added in order
                for k in causes[1:]:
                    total += np.multiply(rk[k], dH[i, k], out=tmp)
                before = s  # S(u-), or its share of a capped jump
                if bound[i] > 1.0:
                    capped = total > 1.0  # cap a jump above 1 at 1 and share it between the causes by hazard
                    if capped.any():
                        before = np.divide(s, np.where(capped, total, 1.0), out=tmp)
                for k in causes:
                    acc[k] += np.multiply(before, dH[i, k], out=term)
                np.subtract(1.0, total, out=total)
                s *= np.maximum(total, 0.0, out=total) if bound[i] > 1.0 else total
                for j in readers.get(i, ()):
                    np.multiply(acc, rk, out=cif[:, j, lo:lo + width])
                    surv[j, lo:lo + width] = s

        for lo in range(0, n, _CHUNK_ROWS):
            recurse(lo)
        return cif.transpose(2, 0, 1), surv.T

    @staticmethod
    def _product_limit_few(hazards: np.ndarray, dH: np.ndarray, readers: dict[int, list[int]], cif: np.ndarray,
                           surv: np.ndarray) -> None:
        """:meth:`_product_limit` for a few rows, writing into ``cif`` (K, T, n) and ``surv`` (T, n)."""
        n_causes, n = hazards.shape
        jumps = dH[:, :, None] * hazards[None]  # (m, K, n)
        total = jumps[:, 0].copy()  # the causes added in order, as in the chunked recursion (a zero adds exactly 0)
        for k in range(1, n_causes):
            total += jumps[:, k]
        after = np.cumprod(np.maximum(1.0 - total, 0.0), axis=0)  # S(u) after each event time
        before = np.concatenate([np.ones((1, n)), after[:-1]])
        capped = total > 1.0  # cap a jump above 1 at 1 and share it between the causes by hazard
        if capped.any():
            before[capped] /= total[capped]
        sums = np.cumsum(before[:, None, :] * dH[:, :, None], axis=0)  # (m, K, n)
        for i, horizons in readers.items():
            for j in horizons:
                np.multiply(sums[i], hazards, out=cif[:, j])
                surv[j] = after[i]

    def predict_cumulative_incidence(self, X: Any, times: Any, *, check_input: bool = True) -> np.ndarray:
        """Absolute risk ``F_k(t|x)`` of each cause by each time (product-limit, see the class notes).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates, the columns every cause's model was fitted on.
        times : array-like, shape (n_times,)
            Finite times on the training time scale, in any order.
        check_input : bool, default=True
            False skips the checks of ``X`` (an already checked float64 array with the training columns).

        Returns
        -------
        ndarray, shape (n_samples, n_causes, n_times)
            Causes in the order of ``causes_``; 0 before the first event time.
        """
        return self._product_limit(self._relative_hazards(X, check_input), self._times(times))[0]

    def predict_survival(self, X: Any, times: Any) -> np.ndarray:
        """Event-free survival ``S(t|x) = prod_{u <= t} (1 - sum_j dL_j(u|x)) = 1 - sum_k F_k(t|x)``.

        Parameters
        ----------
        X, times
            As in :meth:`predict_cumulative_incidence`.

        Returns
        -------
        ndarray, shape (n_samples, n_times)
        """
        return self._product_limit(self._relative_hazards(X), self._times(times))[1]

    def likely_pattern(self, X: Any, horizon: float) -> np.ndarray:
        """The cause most likely to be the event should one occur by ``horizon``: argmax over k of F_k(horizon|x).

        The conditional probabilities ``F_k / sum_j F_j`` have the same ranking as ``F_k``. Ties go
        to the cause listed first in ``causes_``. Where every ``F_k(horizon|x)`` is 0 (a horizon
        before the first event time) the pattern is undefined and returned as None.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates.
        horizon : float
            Time on the training time scale.

        Returns
        -------
        ndarray of object, shape (n_samples,)
            A value of ``causes_`` or None.
        """
        cif = self.predict_cumulative_incidence(X, [float(horizon)])[:, :, 0]
        return self.pattern_from_incidence(cif)

    def pattern_from_incidence(self, cif: np.ndarray) -> np.ndarray:
        """:meth:`likely_pattern` from already predicted incidences at one time, shape (n_samples, n_causes)."""
        require_fitted(self, "models_")
        labels = np.asarray(self.causes_, dtype=object)[np.argmax(cif, axis=1)]
        return np.where(cif.max(axis=1) > 0, labels, None)

    @staticmethod
    def _times(times: Any) -> np.ndarray:
        t = np.atleast_1d(np.asarray(times, dtype=float))
        if t.ndim != 1 or not np.isfinite(t).all():
            raise ValueError("parameter times of CauseSpecificCox must be a 1-d array of finite times")
        return t

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe parameters from which :meth:`from_dict` rebuilds an identical predictor.

        Returns
        -------
        dict
            Format tag, hyperparameters, causes, event counts, feature names and one
            :meth:`CoxPH.to_dict <cnslrisk.model.estimators.CoxPH.to_dict>` per cause.
        """
        require_fitted(self, "models_")
        names = getattr(self, "feature_names_in_", None)
        return {
            "format": _FORMAT,
            "params": {
                "causes": None if self.causes is None else [str(c) for c in cause_text(list(self.causes))],
                "censored": str(cause_text([self.censored])[0]),
                "ties": self.ties,
                "alpha": float(self.alpha),
            },
            "causes": [str(c) for c in self.causes_],
            "event_counts": dict(self.event_counts_),
            "feature_names": None if names is None else [str(n) for n in names],
            "models": [m.to_dict() for m in self.models_],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CauseSpecificCox:
        """Rebuild a fitted :class:`CauseSpecificCox` from :meth:`to_dict` output (no pickle involved).

        Parameters
        ----------
        d : dict
            Output of :meth:`to_dict` (e.g. after a JSON round trip).

        Returns
        -------
        CauseSpecificCox
        """
        if d.get("format") != _FORMAT:
            raise ValueError(f"CauseSpecificCox.from_dict: format {d.get('format')!r} is not {_FORMAT!r}")
        model = cls(**d["params"])
        model.causes_ = np.asarray(d["causes"], dtype=str)
        model.models_ = [_COX_CLASSES[m["estimator"]].from_dict(m) for m in d["models"]]
        model.event_counts_ = {str(k): int(v) for k, v in d["event_counts"].items()}
        model.n_features_in_ = model.models_[0].n_features_in_
        if d["feature_names"] is not None:
            model.feature_names_in_ = np.asarray(d["feature_names"], dtype=object)
        model._set_grid()
        return model
