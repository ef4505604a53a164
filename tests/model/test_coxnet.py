"""PenalizedCox: the penalty choice re-derived independently, curves against scikit-survival, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.linear_model.coxph import CoxPHOptimizer
from sksurv.metrics import as_integrated_brier_score_scorer, integrated_brier_score

from cnslrisk.model.estimators import PenalizedCox


@pytest.fixture(scope="module")
def data(request):
    from sksurv.datasets import load_whas500

    X, y = load_whas500()
    X = X[["age", "bmi", "diasbp", "hr", "sysbp"]].astype(float).iloc[:200]
    return StandardScaler().fit_transform(X), y[:200]


def _loglik(X, y, beta):
    """Breslow log partial likelihood by scikit-survival's own (loop-based) optimizer helper."""
    opt = CoxPHOptimizer(X, y["fstat"], y["lenfol"], np.zeros(X.shape[1]), "breslow")
    return -opt.nlog_likelihood(beta) * X.shape[0]


def test_penalty_maximises_cross_validated_partial_likelihood(data):
    X, y = data
    model = PenalizedCox(l1_ratio=0.7, n_alphas=20, inner_cv=4, random_state=1).fit(X, y)
    path = CoxnetSurvivalAnalysis(n_alphas=20, l1_ratio=0.7).fit(X, y)
    np.testing.assert_allclose(model.alphas_, path.alphas_)
    folds = StratifiedKFold(4, shuffle=True, random_state=1).split(np.zeros((len(y), 1)), y["fstat"])
    cvpl = np.zeros(path.alphas_.size)
    for train, _ in folds:
        fold = CoxnetSurvivalAnalysis(alphas=path.alphas_, l1_ratio=0.7).fit(X[train], y[train])
        for k in range(path.alphas_.size):
            beta = fold.coef_[:, k]
            cvpl[k] += _loglik(X, y, beta) - _loglik(X[train], y[train], beta)
    np.testing.assert_allclose(model.cv_scores_, cvpl, rtol=1e-9)
    assert model.alpha_ == path.alphas_[np.argmax(cvpl)]
    np.testing.assert_array_equal(model.coef_, path.coef_[:, np.argmax(cvpl)])


def test_survival_curves_equal_scikit_survival_baseline(data):
    X, y = data
    model = PenalizedCox(n_alphas=15, inner_cv=3).fit(X, y)
    ref = CoxnetSurvivalAnalysis(alphas=model.alphas_, fit_baseline_model=True).fit(X, y)
    times = np.array([30.0, 365.0, 1000.0])
    want = np.array([fn(times) for fn in ref.predict_survival_function(X[:20], alpha=model.alpha_)])
    # same coefficients; sksurv's Breslow baseline is uncentred, ours centred: equal up to rounding
    np.testing.assert_allclose(model.predict_survival(X[:20], times), want, rtol=1e-10)


def test_step_functions_equal_scikit_survival_coxnet(data):
    X, y = data
    model = PenalizedCox(n_alphas=15, inner_cv=3).fit(X, y)
    ref = CoxnetSurvivalAnalysis(alphas=model.alphas_, fit_baseline_model=True).fit(X, y)
    first = y["lenfol"].min()  # an event: scikit-survival's functions give its value from 0, ours 1 before it
    grid = np.unique(np.r_[y["lenfol"], np.linspace(first, y["lenfol"].max(), 200)])
    for method in ("predict_survival_function", "predict_cumulative_hazard_function"):
        mine, want = getattr(model, method)(X[:20]), getattr(ref, method)(X[:20], alpha=model.alpha_)
        for fn, r in zip(mine, want, strict=True):
            assert fn.domain == r.domain
            np.testing.assert_allclose(fn(grid), r(grid), rtol=1e-10, err_msg=method)
            assert fn(first / 2) == (1.0 if method == "predict_survival_function" else 0.0)
    np.testing.assert_array_equal(model.predict_survival_function(X[:20], return_array=True),
                                  model.predict_survival(X[:20], model.unique_times_))


def test_cross_val_score_with_scikit_survival_brier_scorer(data):
    X, y = data
    y = y.copy()  # follow-up ended at 3 years for all: every fold's test times lie within its training times
    y["fstat"] &= y["lenfol"] <= 1095
    y["lenfol"] = np.minimum(y["lenfol"], 1095)
    times = np.array([60.0, 180.0, 365.0, 730.0])
    folds = KFold(3, shuffle=True, random_state=0)
    make = lambda: PenalizedCox(n_alphas=10, inner_cv=3)  # noqa: E731
    scores = cross_val_score(as_integrated_brier_score_scorer(make(), times), X, y, cv=folds, error_score="raise")
    for score, (train, test) in zip(scores, folds.split(X), strict=True):
        fitted = make().fit(X[train], y[train])
        assert score == -integrated_brier_score(y[train], y[test], fitted.predict_survival(X[test], times), times)


def test_to_dict_round_trip_predicts_identically(data):
    X, y = data
    model = PenalizedCox(n_alphas=10, inner_cv=3).fit(X, y)
    loaded = PenalizedCox.from_dict(json.loads(json.dumps(model.to_dict())))
    assert loaded.alpha_ == model.alpha_
    np.testing.assert_array_equal(loaded.predict_survival(X, [100.0, 500.0]), model.predict_survival(X, [100.0, 500.0]))
    assert loaded.score(X, y) == model.score(X, y)


def test_same_seed_same_model(data):
    X, y = data
    a = PenalizedCox(n_alphas=10, inner_cv=3, random_state=5).fit(X, y)
    b = PenalizedCox(n_alphas=10, inner_cv=3, random_state=5, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(a.cv_scores_, b.cv_scores_)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_too_few_events_for_inner_folds(data):
    X, y = data
    few = y.copy()
    few["fstat"] = False
    few["fstat"][:3] = True
    with pytest.raises(ValueError, match="PenalizedCox fit: inner_cv=5 folds need at least 5 events and 5 censored"):
        PenalizedCox().fit(X, few)


def test_l1_ratio_zero_is_refused(data):
    X, y = data
    with pytest.raises(ValueError, match=r"The 'l1_ratio' parameter of PenalizedCox must be a float in the range \(0"):
        PenalizedCox(l1_ratio=0).fit(X, y)
