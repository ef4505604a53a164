"""What the linear Cox estimators share: the fit's data and baseline, prediction, and plain-parameter export.

Every prediction comes from one computation, the Breslow cumulative hazard ``H0(t) exp(lp)`` at
given times (:meth:`LinearCoxMixin.predict_cumulative_hazard`); survival is ``exp(-H)``, and
scikit-survival's step functions are these values at the training times.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils.validation import validate_data
from sksurv.base import SurvivalAnalysisMixin
from sksurv.functions import StepFunction
from sksurv.util import check_array_survival

from .._checks import require_fitted
from ._breslow import RiskSets, breslow_baseline, step_lookup

__all__ = ["LinearCoxMixin"]

_FORMAT = "cnslrisk.linear-cox/1"


class LinearCoxMixin(SurvivalAnalysisMixin):
    """Fit, prediction and plain-parameter export shared by the linear Cox estimators.

    :meth:`fit` checks the data, centres it on the training means and calls the estimator's
    ``_fit_coef(X, y, Z, event, risk)``, which sets ``coef_`` (and the estimator's own fitted
    attributes); then it keeps the Breslow baseline at ``coef_`` for a patient at the means
    (``_set_baseline``, which an estimator may extend). ``score`` is Harrell's C of :meth:`predict`.

    The prediction methods follow scikit-survival's contract: :meth:`predict` is the risk score,
    :meth:`predict_survival_function` and :meth:`predict_cumulative_hazard_function` give step
    functions (or their values on ``unique_times_``). :meth:`predict_survival` and
    :meth:`predict_cumulative_hazard` give the same values at any times in one array.
    """

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: np.ndarray) -> Any:
        """Fit the coefficients (the estimator's own way, see its class notes) and the Breslow baseline at them.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates (standardised for :class:`PenalizedCox`, whose penalty needs one scale).
        y : structured array, shape (n_samples,)
            Event indicator and time, as built by ``sksurv.util.Surv``.

        Returns
        -------
        self
        """
        X = validate_data(self, X, ensure_min_samples=2, dtype=np.float64)
        event, time = check_array_survival(X, y)
        self.x_mean_ = X.mean(axis=0)
        self.max_time_ = float(time.max())
        Z = X - self.x_mean_
        risk = RiskSets.build(time, event)
        self._fit_coef(X, y, Z, event, risk)
        self.unique_times_ = risk.unique_times
        self._set_baseline(breslow_baseline(Z, self.coef_, risk))
        return self

    def _set_baseline(self, baseline: dict[str, np.ndarray]) -> None:
        """Keep the Breslow baseline at ``coef_`` (:func:`breslow_baseline`'s output)."""
        self.cum_baseline_hazard_ = baseline["cum_hazard"]
        self.baseline_survival_ = np.exp(-self.cum_baseline_hazard_)

    def _validated(self, X: Any, check_input: bool = True) -> np.ndarray:
        require_fitted(self, "coef_")
        return validate_data(self, X, reset=False, dtype=np.float64) if check_input else X

    def _centred(self, X: Any, check_input: bool = True) -> np.ndarray:
        return self._validated(X, check_input) - self.x_mean_

    def predict(self, X: Any, *, check_input: bool = True) -> np.ndarray:
        """Linear predictor ``(x - x_mean) @ coef``: the log hazard ratio against the training means.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates.
        check_input : bool, default=True
            False skips the checks of ``X`` (for callers that pass an already checked float64 array
            with the training columns, as a scorer does once per batch; as in scikit-learn's trees).

        Returns
        -------
        ndarray, shape (n_samples,)
            Risk score (higher = earlier event); 0 for a patient at the training means.
        """
        return self._validated(X, check_input) @ self.coef_ - self.x_mean_ @ self.coef_

    def _risk_and_hazard(self, X: Any, times: Any, check_input: bool) -> tuple[np.ndarray, np.ndarray]:
        risk = self.predict(X, check_input=check_input)
        base = step_lookup(self.unique_times_, self.cum_baseline_hazard_, np.atleast_1d(times))
        return risk, np.exp(risk)[:, None] * base[None, :]

    def predict_cumulative_hazard(self, X: Any, times: Any, *, check_input: bool = True) -> np.ndarray:
        """Cumulative hazard ``H0(t) exp(lp)`` at ``times`` (Breslow baseline, a step function).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates.
        times : array-like, shape (n_times,)
            Times on the training time scale; 0 before the first event time, the last value after it.
        check_input : bool, default=True
            As in :meth:`predict`.

        Returns
        -------
        ndarray, shape (n_samples, n_times)
        """
        return self._risk_and_hazard(X, times, check_input)[1]

    def predict_survival(self, X: Any, times: Any, *, check_input: bool = True) -> np.ndarray:
        """Survival probability ``exp(-H(t|x)) = S0(t) ** exp(lp)`` at ``times``, vectorised over rows.

        Arguments as in :meth:`predict_cumulative_hazard`; returns an array of shape (n_samples, n_times).
        """
        return np.exp(-self.predict_cumulative_hazard(X, times, check_input=check_input))

    def predict_with_survival(self, X: Any, times: Any, *, check_input: bool = True
                              ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict` and :meth:`predict_survival` from one linear predictor (what a scorer needs).

        Arguments as in :meth:`predict_cumulative_hazard`; returns ``(risk, survival)``.
        """
        risk, cum_hazard = self._risk_and_hazard(X, times, check_input)
        return risk, np.exp(-cum_hazard)

    def _step_functions(self, values_at: Any, X: Any, return_array: bool) -> np.ndarray:
        """One :class:`~sksurv.functions.StepFunction` per row of ``values_at(X, times)``, as scikit-survival builds.

        The steps are the training event times, from 0 (when every event time is later) to the end of
        the training follow-up ``max_time_``, the domain of scikit-survival's Breslow functions.
        """
        require_fitted(self, "coef_")
        if return_array:
            return values_at(X, self.unique_times_)
        times = self.unique_times_
        if times[0] > 0:
            times = np.concatenate([[0.0], times])
        if self.max_time_ > times[-1]:
            times = np.concatenate([times, [self.max_time_]])
        values = values_at(X, times)
        functions = np.empty(values.shape[0], dtype=object)
        functions[:] = [StepFunction(times, row) for row in values]
        return functions

    def predict_survival_function(self, X: Any, return_array: bool = False) -> np.ndarray:
        """Survival function ``S(t|x) = S0(t) ** exp(lp)`` of each row, as scikit-survival's estimators give it.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates.
        return_array : bool, default=False
            True returns the values at ``unique_times_`` instead of step functions.

        Returns
        -------
        ndarray
            With ``return_array=False``, ``n_samples`` :class:`~sksurv.functions.StepFunction`
            objects defined on [0, ``max_time_``] (1 before the first event time); otherwise an
            array of shape (n_samples, n_unique_times). Their values are those of
            :meth:`predict_survival` at the same times.
        """
        return self._step_functions(self.predict_survival, X, return_array)

    def predict_cumulative_hazard_function(self, X: Any, return_array: bool = False) -> np.ndarray:
        """Cumulative hazard function ``H(t|x) = H0(t) exp(lp)`` of each row, as scikit-survival's estimators give it.

        Arguments as in :meth:`predict_survival_function`; the values are those of
        :meth:`predict_cumulative_hazard` (0 before the first event time).
        """
        return self._step_functions(self.predict_cumulative_hazard, X, return_array)

    def _export(self, extra: dict[str, Any]) -> dict[str, Any]:
        require_fitted(self, "coef_")
        names = getattr(self, "feature_names_in_", None)
        return {
            "format": _FORMAT,
            "estimator": type(self).__name__,
            "params": {k: v for k, v in self.get_params().items() if isinstance(v, (int, float, str, type(None)))},
            "feature_names": None if names is None else [str(n) for n in names],
            "coef": self.coef_.tolist(),
            "x_mean": self.x_mean_.tolist(),
            "unique_times": self.unique_times_.tolist(),
            "cum_baseline_hazard": self.cum_baseline_hazard_.tolist(),
            "max_time": self.max_time_,
            **extra,
        }

    @classmethod
    def _restore(cls, d: dict[str, Any]) -> Any:
        if d.get("format") != _FORMAT or d.get("estimator") != cls.__name__:
            raise ValueError(
                f"from_dict of {cls.__name__}: format {d.get('format')!r} / estimator {d.get('estimator')!r} "
                f"is not {_FORMAT!r} / {cls.__name__!r}"
            )
        model = cls(**d["params"])
        model.coef_ = np.asarray(d["coef"], dtype=float)
        model.x_mean_ = np.asarray(d["x_mean"], dtype=float)
        model.n_features_in_ = model.coef_.size
        if d["feature_names"] is not None:
            model.feature_names_in_ = np.asarray(d["feature_names"], dtype=object)
        model.unique_times_ = np.asarray(d["unique_times"], dtype=float)
        model.cum_baseline_hazard_ = np.asarray(d["cum_baseline_hazard"], dtype=float)
        model.baseline_survival_ = np.exp(-model.cum_baseline_hazard_)
        # files written before max_time was stored: the follow-up known to them ends at the last event
        model.max_time_ = float(d.get("max_time", model.unique_times_[-1]))
        return model
