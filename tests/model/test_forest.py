"""SurvivalForest: inner-CV grid choice re-derived, step-interpolated curves, determinism (small and fast)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedKFold
from sksurv.ensemble import RandomSurvivalForest
from sksurv.metrics import concordance_index_censored

from cnslrisk.model.estimators import SurvivalForest

GRID = {"min_samples_leaf": [3, 10], "max_features": ["sqrt"]}


@pytest.fixture(scope="module")
def data():
    from sksurv.datasets import load_veterans_lung_cancer

    X, y = load_veterans_lung_cancer()
    return X[["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"]].to_numpy(dtype=float)[:90], y[:90]


@pytest.fixture(scope="module")
def fitted(data):
    return SurvivalForest(n_estimators=10, param_grid=GRID, inner_cv=3, tuning="cv", random_state=0).fit(*data)


def test_grid_point_is_the_best_mean_harrell_c(data, fitted):
    X, y = data
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(np.zeros((len(y), 1)), y["Status"]))
    means = {}
    for leaf in GRID["min_samples_leaf"]:
        scores = []
        for train, test in folds:
            rsf = RandomSurvivalForest(n_estimators=10, min_samples_leaf=leaf, max_features="sqrt", random_state=0)
            risk = rsf.fit(X[train], y[train]).predict(X[test])
            scores.append(concordance_index_censored(y["Status"][test], y["Survival_in_days"][test], risk)[0])
        means[leaf] = np.mean(scores)
    assert fitted.best_params_["min_samples_leaf"] == max(means, key=means.get)
    np.testing.assert_allclose(sorted(fitted.cv_results_["mean_test_score"]), sorted(means.values()))


def test_out_of_bag_tuning_keeps_the_forest_with_the_best_oob_c(data):
    X, y = data
    oob = {}
    for leaf in GRID["min_samples_leaf"]:
        rsf = RandomSurvivalForest(n_estimators=30, min_samples_leaf=leaf, max_features="sqrt", random_state=0,
                                   oob_score=True).fit(X, y)
        oob[leaf] = (rsf.oob_score_, rsf.predict(X))
    tuned = SurvivalForest(n_estimators=30, param_grid=GRID, random_state=0).fit(X, y)
    best = max(oob, key=lambda leaf: oob[leaf][0])
    assert tuned.best_params_["min_samples_leaf"] == best
    expected = [oob[leaf][0] for leaf in GRID["min_samples_leaf"]]
    np.testing.assert_allclose(tuned.cv_results_["mean_test_score"], expected)
    np.testing.assert_array_equal(tuned.predict(X), oob[best][1])  # the chosen forest itself, not a refit


def test_curves_are_step_interpolated_from_the_forest(data, fitted):
    X, _ = data
    # unique_times_ holds the event times; sksurv's grid also holds censored times, where curves stay flat
    event = fitted.estimator_.is_event_time_
    assert not event.all()
    times = fitted.unique_times_
    np.testing.assert_array_equal(times, fitted.estimator_.unique_times_[event])
    mid = (times[:-1] + times[1:]) / 2
    full = fitted.estimator_.predict_survival_function(X[:5], return_array=True)
    np.testing.assert_array_equal(fitted.predict_survival(X[:5], fitted.estimator_.unique_times_), full)
    surv = full[:, event]
    chf = fitted.estimator_.predict_cumulative_hazard_function(X[:5], return_array=True)[:, event]
    np.testing.assert_array_equal(fitted.predict_survival(X[:5], times), surv)
    np.testing.assert_array_equal(fitted.predict_survival(X[:5], mid), surv[:, :-1])
    np.testing.assert_array_equal(fitted.predict_survival(X[:5], [times[0] / 2]), np.ones((5, 1)))
    np.testing.assert_array_equal(fitted.predict_cumulative_hazard(X[:5], mid), chf[:, :-1])
    np.testing.assert_array_equal(fitted.predict_cumulative_hazard(X[:5], [times[-1] + 100]), chf[:, -1:])


def test_predict_and_score(data, fitted):
    X, y = data
    np.testing.assert_array_equal(fitted.predict(X), fitted.estimator_.predict(X))
    want = concordance_index_censored(y["Status"], y["Survival_in_days"], fitted.predict(X))[0]
    assert fitted.score(X, y) == want


def test_same_seed_same_forest(data, fitted):
    again = SurvivalForest(n_estimators=10, param_grid=GRID, inner_cv=3, tuning="cv", random_state=0, n_jobs=2).fit(
        *data)
    np.testing.assert_array_equal(again.predict(data[0]), fitted.predict(data[0]))


def test_bad_parameters(data):
    with pytest.raises(ValueError, match=r"The 'n_estimators' parameter of SurvivalForest must be an int in the range"):
        SurvivalForest(n_estimators=0).fit(*data)
    with pytest.raises(ValueError, match="SurvivalForest fit: inner_cv=50 folds need at least 50 events"):
        SurvivalForest(n_estimators=2, inner_cv=50, tuning="cv").fit(*data)
    with pytest.raises(ValueError, match=r"The 'tuning' parameter of SurvivalForest must be a str among"):
        SurvivalForest(tuning="grid").fit(*data)
