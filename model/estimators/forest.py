"""Random survival forest (scikit-survival) with a small hyperparameter grid chosen by inner cross-validation."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.model_selection import GridSearchCV, ParameterGrid
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from sksurv.base import SurvivalAnalysisMixin
from sksurv.ensemble import RandomSurvivalForest
from sksurv.util import check_array_survival

from .compact_forest import CompactForest
from .coxnet import inner_splits

__all__ = ["SurvivalForest", "DEFAULT_GRID", "forest_to_files", "forest_from_files"]

# small on purpose: every bootstrap resample repeats the search (see BENCHMARKS.md for what it costs)
DEFAULT_GRID: dict[str, list] = {"min_samples_leaf": [3, 8], "max_features": ["sqrt"]}


class SurvivalForest(SurvivalAnalysisMixin, BaseEstimator):
    """Random survival forest whose ``param_grid`` is chosen on out-of-bag or inner-CV Harrell's C.

    With ``tuning="oob"`` (default) each grid point's forest is fitted once on all data and scored
    by its out-of-bag Harrell's C (every patient predicted only by the trees that did not see it,
    as randomForestSRC tunes); the best forest is kept as it is. With ``tuning="cv"`` each grid
    point is scored by the mean Harrell's C over ``inner_cv`` folds stratified on the event
    indicator and the best is refitted on all data. Either way the chosen forest is converted to a
    :class:`~cnslrisk.model.estimators.compact_forest.CompactForest`, which makes every
    prediction (bit for bit equal to scikit-survival's). Survival and cumulative hazard at any
    time are read off the forest's ensemble estimates at the training event times as a
    right-continuous step function. Store and reload a fitted forest without pickle with
    :func:`forest_to_files` and :func:`forest_from_files`.

    Parameters
    ----------
    n_estimators : int, default=200
        Number of trees.
    param_grid : dict or None, default=None
        Grid over ``RandomSurvivalForest`` parameters; None uses :data:`DEFAULT_GRID`
        (``min_samples_leaf`` in {3, 8}, ``max_features="sqrt"``).
    inner_cv : int, default=3
        Number of inner folds (``tuning="cv"``).
    tuning : {"oob", "cv"}, default="oob"
        How the grid point is chosen. Out-of-bag tuning fits one forest per grid point instead of
        ``inner_cv + 1``, which is what makes it affordable inside every bootstrap resample.
    random_state : int or None, default=0
        Seed of the fold shuffle and of the forest.
    n_jobs : int or None, default=None
        Grid points x folds fitted in parallel; the final forest builds its trees in parallel.
        Predictions run serially so they are bit-for-bit reproducible.
    max_depth : int or None, default=None
        Maximum tree depth.

    Attributes
    ----------
    estimator_ : sksurv.ensemble.RandomSurvivalForest
        The forest refitted on all data with ``best_params_`` (absent on a forest read by
        :func:`forest_from_files`).
    compact_ : CompactForest
        The same forest as flat arrays; all predictions run on it.
    best_params_ : dict
        The chosen grid point.
    cv_results_ : dict
        ``params`` and ``mean_test_score`` of each grid point (out-of-bag C, or ``GridSearchCV``'s
        results for ``tuning="cv"``).
    unique_times_ : ndarray, shape (n_event_times,)
        Distinct training event times at which the forest's curves are defined (scikit-survival's
        own grid also holds the censored times, where the curves do not move).
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : ndarray of str
        Feature names, when X was a DataFrame.

    References
    ----------
    .. [1] Ishwaran, H., Kogalur, U. B., Blackstone, E. H. and Lauer, M. S. (2008). Random survival
       forests. Annals of Applied Statistics, 2(3), 841-860.
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "param_grid": [dict, None],
        "inner_cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "tuning": [StrOptions({"oob", "cv"})],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "max_depth": [Interval(numbers.Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        n_estimators: int = 200,
        *,
        param_grid: dict[str, list] | None = None,
        inner_cv: int = 3,
        tuning: str = "oob",
        random_state: int | None = 0,
        n_jobs: int | None = None,
        max_depth: int | None = None,
    ):
        self.n_estimators = n_estimators
        self.param_grid = param_grid
        self.inner_cv = inner_cv
        self.tuning = tuning
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_depth = max_depth

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: np.ndarray) -> SurvivalForest:
        """Search the grid by inner CV and refit the best forest on all data.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates.
        y : structured array, shape (n_samples,)
            Event indicator and time.

        Returns
        -------
        self
        """
        X = validate_data(self, X, ensure_min_samples=2, dtype=np.float64)
        event, _ = check_array_survival(X, y)
        forest = RandomSurvivalForest(
            n_estimators=self.n_estimators, max_depth=self.max_depth, random_state=self.random_state
        )
        grid = self.param_grid or DEFAULT_GRID
        if self.tuning == "oob":
            forest = self._oob_search(forest, grid, X, y)
        else:
            splits = inner_splits(event, self.inner_cv, self.random_state, "SurvivalForest")
            search = GridSearchCV(
                forest, grid, cv=splits, n_jobs=self.n_jobs, refit=False, error_score="raise"
            ).fit(X, y)
            self.best_params_ = search.best_params_
            self.cv_results_ = search.cv_results_
            forest.set_params(**self.best_params_, n_jobs=self.n_jobs).fit(X, y)
        # predict serially: threads would add the trees' curves in a varying order (last-bit differences)
        self.estimator_ = forest.set_params(n_jobs=None)
        self.compact_ = CompactForest.from_sksurv(forest, feature_names=getattr(self, "feature_names_in_", None))
        self.unique_times_ = self.compact_.times_
        return self

    def _oob_search(self, forest: RandomSurvivalForest, grid: dict, X: np.ndarray, y: np.ndarray
                    ) -> RandomSurvivalForest:
        """Fit one forest per grid point and keep the best by out-of-bag C (ties: first in grid order)."""
        best, scores, points = None, [], list(ParameterGrid(grid))
        for params in points:
            candidate = clone(forest).set_params(**params, oob_score=True, n_jobs=self.n_jobs).fit(X, y)
            scores.append(float(candidate.oob_score_))
            if best is None or scores[-1] > max(scores[:-1]):
                best, self.best_params_ = candidate, params
        self.cv_results_ = {"params": points, "mean_test_score": np.asarray(scores)}
        return best

    def _array(self, X: Any, check_input: bool = True) -> np.ndarray:
        check_is_fitted(self, "compact_")
        return validate_data(self, X, reset=False, dtype=np.float64) if check_input else X

    def predict(self, X: Any, *, check_input: bool = True) -> np.ndarray:
        """Risk score: the forest's ensemble mortality (higher = earlier event).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        check_input : bool, default=True
            False skips the checks of ``X`` (an already checked float64 array with the training
            columns, as a scorer passes; as in scikit-learn's trees).

        Returns
        -------
        ndarray, shape (n_samples,)
        """
        X = self._array(X, check_input)
        return self.compact_.predict(X)

    def predict_survival(self, X: Any, times: Any, *, check_input: bool = True) -> np.ndarray:
        """Ensemble survival probability at ``times`` (1 before the first training event time).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        times : array-like, shape (n_times,)
        check_input : bool, default=True
            As in :meth:`predict`.

        Returns
        -------
        ndarray, shape (n_samples, n_times)
        """
        X = self._array(X, check_input)
        return self.compact_.predict_at(X, times, kind="survival")

    def predict_with_survival(self, X: Any, times: Any, *, check_input: bool = True
                              ) -> tuple[np.ndarray, np.ndarray]:
        """Risk score and survival at ``times`` from one routing of ``X`` through the trees.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        times : array-like, shape (n_times,)
        check_input : bool, default=True
            As in :meth:`predict`.

        Returns
        -------
        risk : ndarray, shape (n_samples,)
            As :meth:`predict`.
        survival : ndarray, shape (n_samples, n_times)
            As :meth:`predict_survival`.
        """
        X = self._array(X, check_input)
        return self.compact_.predict_with_survival(X, times)

    def predict_cumulative_hazard(self, X: Any, times: Any) -> np.ndarray:
        """Ensemble (Nelson-Aalen) cumulative hazard at ``times`` (0 before the first event time).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        times : array-like, shape (n_times,)

        Returns
        -------
        ndarray, shape (n_samples, n_times)
        """
        X = self._array(X)
        return self.compact_.predict_at(X, times, kind="cum_hazard")


def forest_to_files(survival_forest: SurvivalForest, directory: str | Path) -> dict[str, Any]:
    """Write a fitted :class:`SurvivalForest` as ``forest.npz`` + ``forest.json`` (no pickle).

    The JSON holds the estimator's parameters and ``best_params_``; ``cv_results_`` and the
    scikit-survival ``estimator_`` are not written.

    Parameters
    ----------
    survival_forest : SurvivalForest
        Fitted forest.
    directory : str or path
        Target folder, created if missing.

    Returns
    -------
    dict
        Record (format, version, SHA-256 of each file) that :func:`forest_from_files` needs.
    """
    check_is_fitted(survival_forest, "compact_")
    compact = survival_forest.compact_
    compact.metadata = {"params": survival_forest.get_params(), "best_params": survival_forest.best_params_}
    return compact.save(directory)


def forest_from_files(directory: str | Path, record: dict[str, Any]) -> SurvivalForest:
    """Read a :class:`SurvivalForest` written by :func:`forest_to_files`, checking each file's SHA-256.

    Parameters
    ----------
    directory : str or path
    record : dict
        The record :func:`forest_to_files` returned.

    Returns
    -------
    SurvivalForest
        Fitted forest predicting on the compact engine (no ``estimator_``).

    Raises
    ------
    ForestFileError
        A file is missing or differs from the record.
    """
    compact = CompactForest.load(directory, record)
    forest = SurvivalForest(**compact.metadata["params"])
    forest.best_params_ = compact.metadata["best_params"]
    forest.compact_ = compact
    forest.unique_times_ = compact.times_
    forest.n_features_in_ = compact.n_features_in
    if compact.feature_names is not None:
        forest.feature_names_in_ = np.asarray(compact.feature_names, dtype=object)
    return forest
