"""SurvivalForest: scikit-survival's trees grown in bounded memory, grid choice, its contract, the IJ band."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble._forest import _generate_sample_indices
from sklearn.model_selection import StratifiedKFold
from sksurv.ensemble import RandomSurvivalForest
from sksurv.metrics import as_integrated_brier_score_scorer, concordance_index_censored
from sksurv.util import Surv

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model.estimators import SurvivalForest
from cnslrisk.model.estimators._ij_variance import cloglog_band, ij_variance, ij_variances

GRID = {"min_samples_leaf": [3, 10], "max_features": ["sqrt"]}


@pytest.fixture(scope="module")
def data():
    from sksurv.datasets import load_veterans_lung_cancer

    X, y = load_veterans_lung_cancer()
    return X[["Age_in_years", "Karnofsky_score", "Months_from_Diagnosis"]].to_numpy(dtype=float)[:90], y[:90]


@pytest.fixture(scope="module")
def fitted(data):
    return SurvivalForest(n_estimators=10, param_grid=GRID, inner_cv=3, tuning="cv", random_state=0).fit(*data)


def _native_cohort(n: int, seed: int, *, round_to: float | None = None):
    """Encoded synthetic cohort, times at their native 0.01-month resolution (or rounded: heavy ties)."""
    from cnslrisk.model.features import FeatureEncoder

    cohort = generate_cohort(n, seed=seed)
    X = np.asarray(FeatureEncoder(["pce", "lmd", "steroids"], ["cnsl_type"], ["age", "ecog", "prior_lines"])
                   .fit_transform(cohort), dtype=float)
    time = cohort["pfs1_months"].to_numpy()
    if round_to is not None:
        time = np.ceil(time / round_to) * round_to
    return X, Surv.from_arrays(cohort["pfs1_event"], time)


def _reference(X, y, n_trees, **params):
    return RandomSurvivalForest(n_estimators=n_trees, random_state=0, **params).fit(X, y)


CASES = {
    "bootstrap": {},
    "no bootstrap": {"bootstrap": False},
    "max_samples int": {"max_samples": 150},
    "max_samples float": {"max_samples": 0.4},
    "depth 4, leaf 8": {"max_depth": 4, "min_samples_leaf": 8},
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("ties", [None, 1.0])
def test_same_trees_and_predictions_as_scikit_survival(case, ties):
    X, y = _native_cohort(400, seed=2, round_to=ties)
    params = dict(CASES[case])
    leaf = params.pop("min_samples_leaf", 3)
    grid = {"min_samples_leaf": [leaf], "max_features": ["sqrt"]}
    ours = SurvivalForest(15, param_grid=grid, tuning="cv", inner_cv=2, random_state=0, n_jobs=2, **params).fit(X, y)
    rsf = _reference(X, y, 15, min_samples_leaf=leaf, max_features="sqrt", **params)
    event = rsf.is_event_time_
    np.testing.assert_array_equal(ours.unique_times_, rsf.unique_times_[event])
    compact = ours.compact_
    for t, tree in enumerate(rsf.estimators_):
        start, stop = compact.arrays["node_offsets"][t:t + 2]
        np.testing.assert_array_equal(compact.arrays["feature"][start:stop], tree.tree_.feature)
        np.testing.assert_array_equal(compact.arrays["threshold"][start:stop], tree.tree_.threshold)
    np.testing.assert_allclose(ours.predict(X), rsf.predict(X), rtol=1e-12, atol=0)
    for name in ("predict_survival_function", "predict_cumulative_hazard_function"):
        full = getattr(rsf, name)(X, return_array=True)
        np.testing.assert_allclose(getattr(ours, name)(X, return_array=True), full[:, event], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.predict_survival(X, rsf.unique_times_),
                               rsf.predict_survival_function(X, return_array=True), rtol=1e-12, atol=1e-12)


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
    np.testing.assert_allclose(tuned.predict(X), oob[best][1], rtol=1e-12)  # the chosen forest itself, not a refit


def test_curves_are_right_continuous_steps(data, fitted):
    X, y = data
    times = fitted.unique_times_
    mid = (times[:-1] + times[1:]) / 2
    surv = fitted.predict_survival_function(X[:5], return_array=True)
    chf = fitted.predict_cumulative_hazard_function(X[:5], return_array=True)
    np.testing.assert_allclose(fitted.predict_survival(X[:5], times), surv, rtol=0, atol=1e-14)
    np.testing.assert_allclose(fitted.predict_survival(X[:5], mid), surv[:, :-1], rtol=0, atol=1e-14)
    np.testing.assert_array_equal(fitted.predict_survival(X[:5], [times[0] / 2]), np.ones((5, 1)))
    np.testing.assert_allclose(fitted.predict_cumulative_hazard(X[:5], mid), chf[:, :-1], rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(fitted.predict_cumulative_hazard(X[:5], [times[-1] + 100]), chf[:, -1:])
    steps = fitted.predict_survival_function(X[:3])
    np.testing.assert_array_equal(steps[1].x, times)
    np.testing.assert_array_equal(steps[1].y, surv[1])
    want = concordance_index_censored(y["Status"], y["Survival_in_days"], fitted.predict(X))[0]
    assert fitted.score(X, y) == want


def test_a_scikit_survival_scorer_reads_our_curves_as_its_own():
    X, y = _native_cohort(300, seed=4)
    train, test = np.arange(200), np.arange(200, 300)
    times = np.quantile(y["time"][test][y["event"][test]], [0.2, 0.5, 0.8])
    grid = {"min_samples_leaf": [5], "max_features": ["sqrt"]}
    ours = as_integrated_brier_score_scorer(SurvivalForest(40, param_grid=grid, random_state=0), times)
    theirs = as_integrated_brier_score_scorer(_reference(X, y, 40, min_samples_leaf=5, max_features="sqrt"), times)
    score = ours.fit(X[train], y[train]).score(X[test], y[test])
    assert score < 0  # negated integrated Brier score
    assert score == pytest.approx(theirs.fit(X[train], y[train]).score(X[test], y[test]), rel=1e-12)


def test_threads_do_not_change_the_forest(data, fitted):
    again = SurvivalForest(n_estimators=10, param_grid=GRID, inner_cv=3, tuning="cv", random_state=0, n_jobs=2).fit(
        *data)
    np.testing.assert_array_equal(again.predict(data[0]), fitted.predict(data[0]))
    np.testing.assert_array_equal(again.compact_.inbag_gram, fitted.compact_.inbag_gram)


@pytest.mark.parametrize("max_samples", [None, 0.5])
def test_ij_variance_is_the_sum_over_training_patients(max_samples):
    # The Gram form d'Gd / B^2 must equal sum_i Cov_b(N_bi, t_b)^2 computed patient by patient from the
    # in-bag counts scikit-learn draws for each tree, and the correction sum_i Var_b(N_bi) * v / B.
    X, y = _native_cohort(120, seed=6)
    forest = SurvivalForest(40, param_grid={"min_samples_leaf": [5]}, random_state=1, max_samples=max_samples)
    forest.fit(X, y)
    seeds = np.random.RandomState(1).randint(np.iinfo(np.int32).max, size=40)
    draws = len(y) if max_samples is None else round(len(y) * max_samples)
    counts = np.stack([np.bincount(_generate_sample_indices(s, len(y), draws, None), minlength=len(y)) for s in seeds])
    horizon = np.quantile(forest.unique_times_, 0.5)
    leaves = forest.compact_.apply(np.asarray(X[:7], dtype=np.float32))
    per_tree = np.stack([forest.compact_._leaf_table_rows([("survival", forest.compact_._columns([horizon])[0])],
                                                          row)[:, 0] for row in leaves])  # (trees, rows)
    np.testing.assert_allclose(per_tree.mean(axis=0), forest.predict_survival(X[:7], [horizon])[:, 0], rtol=1e-12)
    cov = (counts - counts.mean(axis=0)).T @ (per_tree - per_tree.mean(axis=0)) / 40  # (patients, rows)
    correction = (counts.var(axis=0).sum()) * per_tree.var(axis=0) / 40
    want = np.maximum((cov**2).sum(axis=0) - correction, 0)
    assert (want > 0).any()  # not all floored: the comparison below has something to compare
    np.testing.assert_allclose(ij_variance(per_tree, forest.compact_.inbag_gram), want, rtol=1e-10, atol=1e-15)


def test_band_on_the_log_log_scale():
    survival = np.array([0.2, 0.5, 0.9, 1.0, 0.0, 0.6])
    variance = np.array([1e-3, 4e-3, 1e-4, 0.0, 0.0, 0.0])
    lower, upper = cloglog_band(survival, variance, level=0.95)
    se = np.sqrt(variance[:3]) / np.abs(survival[:3] * np.log(survival[:3]))
    g = np.log(-np.log(survival[:3]))
    np.testing.assert_allclose(lower[:3], np.exp(-np.exp(g + 1.959963984540054 * se)), rtol=1e-12)
    np.testing.assert_allclose(upper[:3], np.exp(-np.exp(g - 1.959963984540054 * se)), rtol=1e-12)
    assert (lower[:3] < survival[:3]).all() and (survival[:3] < upper[:3]).all()
    np.testing.assert_array_equal(lower[3:], survival[3:])
    np.testing.assert_array_equal(upper[3:], survival[3:])


def test_band_needs_in_bag_counts(data):
    X, y = data
    forest = SurvivalForest(5, param_grid={"min_samples_leaf": [5]}, tuning="cv", bootstrap=False).fit(X, y)
    with pytest.raises(ValueError, match="this forest holds no in-bag counts"):
        forest.predict_survival_interval(X[:2], [100])


def test_bad_parameters(data):
    with pytest.raises(ValueError, match=r"The 'n_estimators' parameter of SurvivalForest must be an int in the range"):
        SurvivalForest(n_estimators=0).fit(*data)
    with pytest.raises(ValueError, match="SurvivalForest fit: inner_cv=50 folds need at least 50 events"):
        SurvivalForest(n_estimators=2, inner_cv=50, tuning="cv").fit(*data)
    with pytest.raises(ValueError, match=r"The 'tuning' parameter of SurvivalForest must be a str among"):
        SurvivalForest(tuning="grid").fit(*data)
    with pytest.raises(ValueError, match="SurvivalForest fit: tuning='oob' needs bootstrap=True"):
        SurvivalForest(2, bootstrap=False).fit(*data)
    with pytest.raises(ValueError, match="SurvivalForest fit: max_samples needs bootstrap=True"):
        SurvivalForest(2, bootstrap=False, tuning="cv", max_samples=10).fit(*data)
    with pytest.raises(ValueError, match="parameter param_grid of SurvivalForest: 'criterion' is not one of"):
        SurvivalForest(2, param_grid={"criterion": ["x"]}).fit(*data)
    X = data[0].copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        SurvivalForest(2).fit(X, data[1])


def test_band_of_a_row_is_the_same_alone_or_in_a_batch():
    # a patient scored alone (API) and in a file (batch) must get the same bits, band included
    X, y = _native_cohort(300, seed=8)
    forest = SurvivalForest(70, param_grid={"min_samples_leaf": [4]}, random_state=2).fit(X, y)
    times = np.quantile(forest.unique_times_, [0.2, 0.5, 0.8])
    batch = forest.predict_summary(X, times, grid=forest.unique_times_, level=0.95)
    assert (batch["upper"] > batch["lower"]).any()
    for row in (0, 77, 299):
        alone = forest.predict_summary(X[row:row + 1], times, grid=forest.unique_times_, level=0.95)
        for name in ("risk", "survival", "median", "lower", "upper"):
            np.testing.assert_array_equal(alone[name], batch[name][row:row + 1])


@pytest.mark.parametrize("dense", [True, False])
def test_median_of_leaves_with_hundreds_of_steps(dense, monkeypatch):
    from cnslrisk.model.estimators import compact_forest

    # two binary covariates: four leaves per tree, each with most of the event times as steps; the
    # median search reads whole leaf curves (small forests) or bisects the steps
    monkeypatch.setattr(compact_forest, "_DENSE_LEAF_VALUES", 1 << 30 if dense else 0)
    X, y = _native_cohort(600, seed=9)
    forest = SurvivalForest(30, param_grid={"min_samples_leaf": [3]}, random_state=0).fit(X[:, :2], y)
    assert np.diff(forest.compact_.arrays["step_ptr"]).max() > 100
    grid = forest.unique_times_
    summary = forest.predict_summary(X[:200, :2], [1.0], grid=grid)
    curve = forest.predict_survival_function(X[:200, :2], return_array=True)
    below = curve <= 0.5
    np.testing.assert_array_equal(summary["median"], np.where(below.any(axis=1), grid[below.argmax(axis=1)], np.nan))


def test_too_few_trees_give_the_conservative_band_and_say_so():
    # with 15 trees the Monte Carlo term swamps the corrected variance for some rows: a band of width 0 there would
    # claim certainty, so those rows take the uncorrected variance (never below the corrected one) and are marked
    X, y = _native_cohort(120, seed=6)
    forest = SurvivalForest(15, param_grid={"min_samples_leaf": [5]}, random_state=1).fit(X, y)
    horizon = np.quantile(forest.unique_times_, [0.3, 0.6])
    compact = forest.compact_
    leaves = compact.apply(np.asarray(X, dtype=np.float32))
    per_tree = np.stack([compact._leaf_table_rows([("survival", compact._columns(horizon)[0])], row)
                         for row in leaves])  # (trees, rows, horizons)
    corrected, uncorrected = ij_variances(per_tree, compact.inbag_gram)
    np.testing.assert_array_equal(ij_variance(per_tree, compact.inbag_gram), np.maximum(corrected, 0))
    assert (uncorrected >= corrected).all()
    summary = forest.predict_summary(X, horizon, level=0.95)
    flagged = summary["conservative"]
    np.testing.assert_array_equal(flagged, (corrected <= 0) & (uncorrected > 0))
    assert 0 < flagged.mean() < 1  # both kinds of rows are present
    variance = np.where(flagged, uncorrected, np.maximum(corrected, 0))
    lower, upper = cloglog_band(summary["survival"], variance, level=0.95)
    np.testing.assert_array_equal(summary["lower"], lower)
    np.testing.assert_array_equal(summary["upper"], upper)
    inside = (summary["survival"] > 0) & (summary["survival"] < 1)
    assert (summary["upper"] - summary["lower"])[flagged & inside].min() > 0  # no flagged band collapses
