"""Random survival forest with a small hyperparameter grid, grown in bounded memory, with an IJ band."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, _fit_context
from sklearn.model_selection import ParameterGrid
from sklearn.utils._param_validation import Interval, RealNotInt, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from sksurv.base import SurvivalAnalysisMixin
from sksurv.metrics import concordance_index_censored
from sksurv.util import check_array_survival

from ._forest_builder import TreeParams, grow_forest
from ._forest_files import load_forest, save_forest
from .compact_forest import CompactForest
from .coxnet import inner_splits

__all__ = ["SurvivalForest", "DEFAULT_GRID", "GRID_KEYS", "forest_to_files", "forest_from_files"]

# small on purpose: every bootstrap resample repeats the search (see BENCHMARKS.md for what it costs)
DEFAULT_GRID: dict[str, list] = {"min_samples_leaf": [3, 8], "max_features": ["sqrt"]}
GRID_KEYS = ("min_samples_leaf", "min_samples_split", "max_features", "max_depth")


class SurvivalForest(SurvivalAnalysisMixin, BaseEstimator):
    """Random survival forest whose ``param_grid`` is chosen on out-of-bag or inner-CV Harrell's C.

    The trees are scikit-survival's ``RandomSurvivalForest`` trees (log-rank splits, the same random
    numbers, hence the same trees and predictions) grown by :mod:`._forest_builder`, which keeps
    each leaf's Nelson-Aalen and Kaplan-Meier curves only where its in-bag samples have events: a
    fitted forest holds what its artifact holds (:class:`CompactForest`), never a curve over every
    distinct time in every node. With ``tuning="oob"`` (default) each grid point's forest is grown
    once on all data and scored by its out-of-bag Harrell's C (as randomForestSRC tunes); the best
    is kept as it is. With ``tuning="cv"`` each grid point is scored by the mean Harrell's C over
    ``inner_cv`` folds stratified on the event indicator and the best is regrown on all data.

    Curves are right-continuous steps on the distinct training event times (``unique_times_``);
    :meth:`predict_survival_function` and :meth:`predict_cumulative_hazard_function` follow
    scikit-survival's contract. :meth:`predict_survival_interval` is the bias-corrected
    infinitesimal-jackknife band of the ensemble survival on the log(-log) scale
    (:mod:`._ij_variance`). Store and reload a fitted forest without pickle with
    :func:`forest_to_files` and :func:`forest_from_files`.

    Parameters
    ----------
    n_estimators : int, default=200
        Number of trees.
    param_grid : dict or None, default=None
        Grid over ``min_samples_leaf``, ``min_samples_split``, ``max_features`` and ``max_depth``;
        None uses :data:`DEFAULT_GRID` (``min_samples_leaf`` in {3, 8}, ``max_features="sqrt"``).
        Keys left out take scikit-survival's defaults (3, 6, ``"sqrt"``, ``max_depth``).
    inner_cv : int, default=3
        Number of inner folds (``tuning="cv"``).
    tuning : {"oob", "cv"}, default="oob"
        How the grid point is chosen. Out-of-bag tuning grows one forest per grid point instead of
        ``inner_cv + 1``, which is what makes it affordable inside every bootstrap resample.
    random_state : int or None, default=0
        Seed of the fold shuffle and of the forest.
    n_jobs : int or None, default=None
        Threads growing the trees. The forest does not depend on it.
    max_depth : int or None, default=None
        Maximum tree depth (unless the grid sets it).
    bootstrap : bool, default=True
        Grow each tree on a bootstrap resample (needed for out-of-bag tuning and the IJ band).
    max_samples : int, float or None, default=None
        Draws per resample (a float: that fraction of the samples); None draws n.

    Attributes
    ----------
    compact_ : CompactForest
        The forest; every prediction runs on it.
    best_params_ : dict
        The chosen grid point.
    cv_results_ : dict
        ``params`` and ``mean_test_score`` of each grid point (out-of-bag or inner-CV C).
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
    .. [2] Wager, S., Hastie, T. and Efron, B. (2014). Confidence intervals for random forests: the
       jackknife and the infinitesimal jackknife. JMLR, 15, 1625-1651.
    """

    _parameter_constraints: dict = {
        "n_estimators": [Interval(numbers.Integral, 1, None, closed="left")],
        "param_grid": [dict, None],
        "inner_cv": [Interval(numbers.Integral, 2, None, closed="left")],
        "tuning": [StrOptions({"oob", "cv"})],
        "random_state": ["random_state"],
        "n_jobs": [numbers.Integral, None],
        "max_depth": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "bootstrap": ["boolean"],
        "max_samples": [Interval(numbers.Integral, 1, None, closed="left"),
                        Interval(RealNotInt, 0.0, 1.0, closed="right"), None],
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
        bootstrap: bool = True,
        max_samples: int | float | None = None,
    ):
        self.n_estimators = n_estimators
        self.param_grid = param_grid
        self.inner_cv = inner_cv
        self.tuning = tuning
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_depth = max_depth
        self.bootstrap = bootstrap
        self.max_samples = max_samples

    def _grow(self, X: np.ndarray, event: np.ndarray, time: np.ndarray, point: dict[str, Any], oob: bool
              ) -> tuple[CompactForest, float | None]:
        params = TreeParams(**{"max_depth": self.max_depth, **point})
        return grow_forest(X, event, time, n_estimators=self.n_estimators, params=params, bootstrap=self.bootstrap,
                           max_samples=self.max_samples, random_state=self.random_state, n_jobs=self.n_jobs,
                           oob_score=oob, feature_names=getattr(self, "feature_names_in_", None))

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X: Any, y: np.ndarray) -> SurvivalForest:
        """Choose the grid point (out of bag or by inner CV) and keep its forest grown on all data.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
            Encoded covariates (no missing values).
        y : structured array, shape (n_samples,)
            Event indicator and time.

        Returns
        -------
        self
        """
        X = np.ascontiguousarray(validate_data(self, X, ensure_min_samples=2, dtype=np.float32))
        event, time = check_array_survival(X, y)
        time = time.astype(np.float64)
        points = list(ParameterGrid(self.param_grid or DEFAULT_GRID))
        unknown = sorted({key for point in points for key in point} - set(GRID_KEYS))
        if unknown:
            raise ValueError(f"parameter param_grid of SurvivalForest: {unknown[0]!r} is not one of "
                             f"{{{', '.join(GRID_KEYS)}}}")
        if self.tuning == "oob" and not self.bootstrap:
            raise ValueError("SurvivalForest fit: tuning='oob' needs bootstrap=True; either switch to "
                             "bootstrap=True or set tuning='cv'")
        if self.max_samples is not None and not self.bootstrap:
            raise ValueError("SurvivalForest fit: max_samples needs bootstrap=True; either switch to "
                             "bootstrap=True or set max_samples=None")
        scores, best = [], None
        if self.tuning == "oob":
            for point in points:
                forest, score = self._grow(X, event, time, point, oob=True)
                scores.append(score)
                if best is None or score > max(scores[:-1]):
                    best, self.best_params_ = forest, point
        else:
            splits = inner_splits(event, self.inner_cv, self.random_state, "SurvivalForest")
            for point in points:
                fold_scores = []
                for train, test in splits:
                    forest, _ = self._grow(X[train], event[train], time[train], point, oob=False)
                    risk = forest.predict(X[test])
                    fold_scores.append(concordance_index_censored(event[test], time[test], risk)[0])
                scores.append(float(np.mean(fold_scores)))
            self.best_params_ = points[int(np.argmax(scores))]  # ties: first in grid order
            best, _ = self._grow(X, event, time, self.best_params_, oob=False)
        self.cv_results_ = {"params": points, "mean_test_score": np.asarray(scores)}
        self.compact_ = best
        self.unique_times_ = best.times_
        return self

    def _array(self, X: Any, check_input: bool = True) -> np.ndarray:
        check_is_fitted(self, "compact_")
        return validate_data(self, X, reset=False, dtype=np.float32) if check_input else X

    def predict(self, X: Any, *, check_input: bool = True) -> np.ndarray:
        """Risk score: the forest's ensemble mortality (higher = earlier event).

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        check_input : bool, default=True
            False skips the checks of ``X`` (an already checked array with the training columns,
            as a scorer passes; as in scikit-learn's trees).

        Returns
        -------
        ndarray, shape (n_samples,)
        """
        X = self._array(X, check_input)
        return self.compact_.predict(X)

    def predict_survival(self, X: Any, times: Any, *, check_input: bool = True) -> np.ndarray:
        """Ensemble survival probability at ``times`` (1 before the first training event time), (n_samples, n_times)."""
        X = self._array(X, check_input)
        return self.compact_.predict_at(X, times, kind="survival")

    def predict_cumulative_hazard(self, X: Any, times: Any, *, check_input: bool = True) -> np.ndarray:
        """Ensemble (Nelson-Aalen) cumulative hazard at ``times`` (0 before the first event time)."""
        X = self._array(X, check_input)
        return self.compact_.predict_at(X, times, kind="cum_hazard")

    def predict_with_survival(self, X: Any, times: Any, *, check_input: bool = True
                              ) -> tuple[np.ndarray, np.ndarray]:
        """Risk score and survival at ``times`` from one routing of ``X`` through the trees."""
        X = self._array(X, check_input)
        return self.compact_.predict_with_survival(X, times)

    def predict_survival_function(self, X: Any, return_array: bool = False) -> np.ndarray:
        """Survival functions (scikit-survival's contract): ``StepFunction`` objects, or an array on ``unique_times_``.

        Parameters
        ----------
        X : array-like, shape (n_samples, n_features)
        return_array : bool, default=False
            Return an (n_samples, n_event_times) array instead of step functions.

        Returns
        -------
        ndarray
        """
        X = self._array(X)
        return self.compact_.predict_survival_function(X, return_array=return_array)

    def predict_cumulative_hazard_function(self, X: Any, return_array: bool = False) -> np.ndarray:
        """Cumulative hazard functions (scikit-survival's contract), as :meth:`predict_survival_function`."""
        X = self._array(X)
        return self.compact_.predict_cumulative_hazard_function(X, return_array=return_array)

    def predict_survival_interval(self, X: Any, times: Any, level: float = 0.95, *, check_input: bool = True
                                  ) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise ``(lower, upper)`` band of the ensemble survival at ``times``, each (n_samples, n_times).

        The bias-corrected infinitesimal-jackknife variance of the ensemble survival (from the
        recorded in-bag counts, floored at 0) carried to log(-log S) by the delta method. It is
        the variance over resamples of the training cohort, not a bias bound: where the forest
        is biased (few patients, a leaf size too large for the signal) the band covers the true
        curve less often than ``level`` says (BENCHMARKS.md measures it).
        """
        X = self._array(X, check_input)
        summary = self.compact_.predict_summary(X, times, level=level)
        return summary["lower"], summary["upper"]

    def predict_summary(self, X: Any, times: Any, *, grid: Any | None = None, level: float | None = None,
                        check_input: bool = True) -> dict[str, np.ndarray]:
        """Risk, survival at ``times``, median on ``grid`` and band at ``level`` from one routing
        (:meth:`CompactForest.predict_summary`)."""
        X = self._array(X, check_input)
        return self.compact_.predict_summary(X, times, grid=grid, level=level)


def forest_to_files(survival_forest: SurvivalForest, directory: str | Path) -> dict[str, Any]:
    """Write a fitted :class:`SurvivalForest` as ``forest.npz`` + ``forest.json`` (no pickle).

    The JSON holds the estimator's parameters and ``best_params_``; ``cv_results_`` is not written.

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
    return save_forest(compact, directory)


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
        Fitted forest.

    Raises
    ------
    ForestFileError
        A file is missing or differs from the record.
    """
    compact = load_forest(directory, record)
    # load the compiled scoring kernels now (a few tenths of a second), not on the first request
    first = compact.times_[:1]
    compact.predict_summary(np.zeros((1, compact.n_features_in)), first, grid=first,
                            level=None if compact.inbag_gram is None else 0.95)
    forest = SurvivalForest(**compact.metadata["params"])
    forest.best_params_ = compact.metadata["best_params"]
    forest.compact_ = compact
    forest.unique_times_ = compact.times_
    forest.n_features_in_ = compact.n_features_in
    if compact.feature_names is not None:
        forest.feature_names_in_ = np.asarray(compact.feature_names, dtype=object)
    return forest
