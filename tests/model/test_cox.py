"""CoxPH against lifelines (coefficients, SEs, baseline), scikit-survival (curves, its scorers) and a naive band."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, KFold
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.metrics import as_integrated_brier_score_scorer, concordance_index_censored, integrated_brier_score
from sksurv.util import Surv

from cnslrisk.model.estimators import CoxPH
from cnslrisk.model.pipeline import make_pipeline
from cnslrisk.model.summary import summary

# Both fits solve the same Efron score equations to a step size below 1e-9 (ours: tol=1e-9, lifelines:
# precision=1e-12); with a well-conditioned information matrix the solutions then agree to ~1e-8, so
# 1e-6 is a safe bound that is still 100x tighter than the 1e-4 the issue asks for.
TIGHT = 1e-6


def test_coefficients_and_standard_errors_equal_lifelines(rossi, reference):
    ref = reference("rossi_lifelines_coxph.csv")
    model = CoxPH().fit(rossi.X, rossi.y)
    table = model.summary_
    assert list(table.index) == list(rossi.X.columns)
    for column in ("coef", "se(coef)", "coef lower 95%", "coef upper 95%", "z"):
        np.testing.assert_allclose(table.loc[ref.index, column], ref[column], atol=TIGHT, err_msg=column)
    np.testing.assert_allclose(table.loc[ref.index, "p"], ref["p"], rtol=1e-5)


def test_log_likelihood_and_variance_equal_live_lifelines(rossi):
    df = rossi.X.assign(week=rossi.y["time"], arrest=rossi.y["event"].astype(int))
    ref = CoxPHFitter().fit(df, "week", "arrest", fit_options={"precision": 1e-12, "r_precision": 0})
    model = CoxPH().fit(rossi.X, rossi.y)
    assert model.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-8)
    np.testing.assert_allclose(model.variance_matrix_, ref.variance_matrix_.loc[rossi.X.columns, rossi.X.columns],
                               atol=1e-8)


def test_baseline_survival_equals_lifelines_breslow(rossi, reference):
    # Same Breslow estimator at the same centring (training means); the only difference comes from the
    # ~1e-8 coefficient difference, which moves S0 by about |dS0/dbeta| * 1e-8 < 1e-6.
    ref = reference("rossi_lifelines_baseline.csv")["baseline_survival"]
    model = CoxPH().fit(rossi.X, rossi.y)
    np.testing.assert_allclose(model.unique_times_, ref.index.to_numpy(dtype=float))
    np.testing.assert_allclose(model.baseline_survival_, ref.to_numpy(), atol=TIGHT)


def test_predict_survival_equals_scikit_survival(rossi):
    ours = CoxPH().fit(rossi.X, rossi.y)
    theirs = CoxPHSurvivalAnalysis(ties="efron", tol=1e-12).fit(rossi.X, rossi.y)
    times = np.array([0.5, 1.0, 7.5, 20.0, 52.0, 60.0])  # 60 lies beyond the last event time (52)
    got = ours.predict_survival(rossi.X.iloc[:25], times)
    curves = theirs.predict_survival_function(rossi.X.iloc[:25])
    want = np.array([fn(np.clip(times, fn.x[0], fn.x[-1])) for fn in curves])
    want[:, times < theirs.unique_times_[0]] = 1.0
    np.testing.assert_allclose(got, want, atol=TIGHT)
    np.testing.assert_allclose(ours.predict_cumulative_hazard(rossi.X.iloc[:25], times), -np.log(want), atol=1e-5)
    # the risk score is the linear predictor centred on the training means
    lp = theirs.predict(rossi.X)
    np.testing.assert_allclose(ours.predict(rossi.X), lp - lp.mean(), atol=1e-6)


def test_step_functions_equal_scikit_survival(gbsg2):
    # scikit-survival's Breslow functions jump at every training time and are defined on [0, largest time];
    # ours jump at the event times only (the baseline does not move at a censoring time) and have the same
    # domain. GBSG2's first time is censored, so even before the first event the two agree.
    X, y = gbsg2
    ours = CoxPH().fit(X, y)
    theirs = CoxPHSurvivalAnalysis(ties="efron", tol=1e-12).fit(X, y)
    rows = X.iloc[:40]
    grid = np.unique(np.r_[y["time"], np.linspace(0.0, y["time"].max(), 301)])
    survival = ours.predict_survival(rows, grid)
    for method in ("predict_survival_function", "predict_cumulative_hazard_function"):
        mine, want = getattr(ours, method)(rows), getattr(theirs, method)(rows)
        assert len(mine) == len(want) == len(rows)
        for i, (fn, ref) in enumerate(zip(mine, want, strict=True)):
            assert fn.domain == ref.domain == (0.0, y["time"].max())
            np.testing.assert_allclose(fn(grid), ref(grid), rtol=TIGHT, atol=TIGHT, err_msg=method)
            # one implementation: the step functions are predict_survival's numbers, to the last bit
            values = fn(grid) if method == "predict_survival_function" else np.exp(-fn(grid))
            np.testing.assert_array_equal(values, survival[i])
    with pytest.raises(ValueError, match="x must be within"):
        ours.predict_survival_function(rows)[0](y["time"].max() + 1)


def test_return_array_is_on_unique_times(gbsg2):
    X, y = gbsg2
    ours = CoxPH().fit(X, y)
    theirs = CoxPHSurvivalAnalysis(ties="efron", tol=1e-12).fit(X, y)
    rows = X.iloc[:40]
    event_times = np.isin(theirs.unique_times_, ours.unique_times_)  # theirs: every training time
    for method, ours_at in (("predict_survival_function", ours.predict_survival),
                            ("predict_cumulative_hazard_function", ours.predict_cumulative_hazard)):
        got = getattr(ours, method)(rows, return_array=True)
        assert got.shape == (len(rows), ours.unique_times_.size)
        np.testing.assert_array_equal(got, ours_at(rows, ours.unique_times_))
        want = getattr(theirs, method)(rows, return_array=True)[:, event_times]
        np.testing.assert_allclose(got, want, rtol=TIGHT, atol=TIGHT, err_msg=method)


def test_grid_search_with_scikit_survival_brier_scorer(gbsg2):
    # The integrated Brier score averages 1/G-weighted (I - S)^2 over the times, so two models whose curves
    # differ by at most TIGHT give scores within (2 TIGHT + TIGHT^2) / min G. The censoring survival G of
    # GBSG2 is 0.38 at the last time scored (1800 days); 0.25 leaves room for a training fold's estimate.
    X, y = gbsg2
    times = np.linspace(365.0, 1800.0, 15)
    folds = KFold(3, shuffle=True, random_state=0)
    grid = {"estimator__alpha": [0.0, 10.0, 1000.0]}
    ours = GridSearchCV(as_integrated_brier_score_scorer(CoxPH(), times), grid, cv=folds, error_score="raise").fit(X, y)
    theirs = GridSearchCV(as_integrated_brier_score_scorer(CoxPHSurvivalAnalysis(ties="efron", tol=1e-12), times),
                          grid, cv=folds, error_score="raise").fit(X, y)
    for k in range(3):
        np.testing.assert_allclose(ours.cv_results_[f"split{k}_test_score"], theirs.cv_results_[f"split{k}_test_score"],
                                   atol=(2 * TIGHT + TIGHT**2) / 0.25)
    assert ours.best_params_ == theirs.best_params_
    # the scorer saw predict_survival's numbers: the first fold's model scored by hand gives the same
    train, test = next(folds.split(X))
    refit = CoxPH(alpha=ours.best_params_["estimator__alpha"]).fit(X.iloc[train], y[train])
    by_hand = -integrated_brier_score(y[train], y[test], refit.predict_survival(X.iloc[test], times), times)
    assert ours.cv_results_["split0_test_score"][ours.best_index_] == by_hand


def test_pipeline_routes_the_step_functions(cohort):
    # scikit-survival adds predict_survival_function / predict_cumulative_hazard_function to every Pipeline
    df, y = cohort(150, seed=2)
    pipe = make_pipeline("cox", binary=["pce", "lmd"], categorical=["bridging"], numeric=["age"]).fit(df, y)
    times = pipe[-1].unique_times_
    array = pipe.predict_survival_function(df, return_array=True)
    np.testing.assert_array_equal(array, pipe.predict_survival(df, times))
    functions = pipe.predict_cumulative_hazard_function(df)
    np.testing.assert_array_equal(np.vstack([fn(times) for fn in functions]), pipe.predict_cumulative_hazard(df, times))


def test_score_is_harrell_c(rossi):
    model = CoxPH().fit(rossi.X, rossi.y)
    want = concordance_index_censored(rossi.y["event"], rossi.y["time"], model.predict(rossi.X))[0]
    assert model.score(rossi.X, rossi.y) == want


def _naive_band(X, time, event, beta, V, x_new, t, level):
    """Therneau & Grambsch (2000, eq. 10.2) with raw (uncentred) covariates, one event time at a time."""
    from scipy.stats import norm

    hazard = var_base = 0.0
    q = np.zeros(X.shape[1])
    for tj in np.unique(time[event]):
        if tj > t:
            break
        at_risk = time >= tj
        w = np.exp(X[at_risk] @ beta)
        s0, s1 = w.sum(), (w[:, None] * X[at_risk]).sum(axis=0)
        d = np.sum(event & (time == tj))
        hazard += d / s0
        var_base += d / s0**2
        q += (x_new - s1 / s0) * d / s0
    r = np.exp(x_new @ beta)
    H = r * hazard
    if H == 0:
        return 1.0, 1.0
    se = r * np.sqrt(var_base + q @ V @ q)
    c = norm.ppf(0.5 + level / 2)
    return np.exp(-H * np.exp(c * se / H)), np.exp(-H * np.exp(-c * se / H))


def test_survival_interval_equals_naive_loop(make_ph):
    data = make_ph(40, seed=3)
    time = np.round(data.y["time"], 0) + 1  # integer times: ties in the data
    y = Surv.from_arrays(data.y["event"], time)
    model = CoxPH().fit(data.X, y)
    X_new = np.array([[0.0, 0.0], [1.0, -1.5], [1.0, 2.0]])
    times = np.array([0.5, time[y["event"]].min(), 3.0, 8.0, 100.0])
    lower, upper = model.predict_survival_interval(pd.DataFrame(X_new, columns=["x1", "x2"]), times, level=0.9)
    for i, x in enumerate(X_new):
        for k, t in enumerate(times):
            lo, hi = _naive_band(data.X.to_numpy(), time, y["event"], model.coef_, model.variance_matrix_, x, t, 0.9)
            assert lower[i, k] == pytest.approx(lo, abs=1e-10)
            assert upper[i, k] == pytest.approx(hi, abs=1e-10)
    assert np.all(lower[:, 0] == 1.0) and np.all(upper[:, 0] == 1.0)
    point = model.predict_survival(pd.DataFrame(X_new, columns=["x1", "x2"]), times)
    assert np.all(lower <= point) and np.all(point <= upper)


@pytest.mark.slow
def test_survival_interval_coverage_by_simulation(make_ph):
    # True S(5 | x) for x = (1, 0.5) under the simulation model (base rate 0.1, beta = (0.7, -0.5)).
    # With R = 200 replicates the empirical coverage of a correct 95 % interval has sd
    # sqrt(0.95 * 0.05 / 200) = 0.0154; we accept 0.95 +- 3 sd = [0.904, 0.996].
    x, t = np.array([[1.0, 0.5]]), 5.0
    truth = np.exp(-0.1 * t * np.exp(0.7 - 0.25))
    hits = 0
    for seed in range(200):
        data = make_ph(150, seed=1000 + seed)
        lower, upper = CoxPH().fit(data.X.to_numpy(), data.y).predict_survival_interval(x, [t])
        hits += lower[0, 0] <= truth <= upper[0, 0]
    assert 0.904 <= hits / 200 <= 0.996


def test_to_dict_round_trip_through_json_predicts_identically(rossi):
    model = CoxPH().fit(rossi.X, rossi.y)
    loaded = CoxPH.from_dict(json.loads(json.dumps(model.to_dict())))
    times = [4.0, 26.0, 52.0]
    np.testing.assert_array_equal(loaded.predict(rossi.X), model.predict(rossi.X))
    np.testing.assert_array_equal(loaded.predict_survival(rossi.X, times), model.predict_survival(rossi.X, times))
    band = model.predict_survival_interval(rossi.X, times)
    band_loaded = loaded.predict_survival_interval(rossi.X, times)
    for a, b in zip(band_loaded, band, strict=True):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(loaded.summary_, model.summary_)
    pd.testing.assert_frame_equal(summary(loaded, level=0.9), summary(model, level=0.9))


def test_from_dict_keeps_the_end_of_follow_up(gbsg2):
    X, y = gbsg2  # last time censored (2659 days), after the last event (2456)
    model = CoxPH().fit(X, y)
    loaded = CoxPH.from_dict(json.loads(json.dumps(model.to_dict())))
    assert loaded.max_time_ == model.max_time_ == 2659.0
    assert loaded.predict_survival_function(X.iloc[:1])[0].domain == (0.0, 2659.0)
    # a file written before the end of follow-up was stored: its functions end at the last event time
    older = CoxPH.from_dict({k: v for k, v in model.to_dict().items() if k != "max_time"})
    assert older.predict_survival_function(X.iloc[:1])[0].domain == (0.0, 2456.0)


def test_from_dict_refuses_other_formats(rossi):
    d = CoxPH().fit(rossi.X, rossi.y).to_dict()
    with pytest.raises(ValueError, match="from_dict of CoxPH: format 'other' / estimator 'CoxPH' is not"):
        CoxPH.from_dict({**d, "format": "other"})


def test_fit_is_deterministic(rossi):
    a, b = CoxPH().fit(rossi.X, rossi.y), CoxPH().fit(rossi.X, rossi.y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.cum_baseline_hazard_, b.cum_baseline_hazard_)


def test_summary_level_sets_labels_and_width(rossi):
    model = CoxPH().fit(rossi.X, rossi.y)
    table = summary(model, level=0.9)
    assert "exp(coef) lower 90%" in table.columns
    half = table["coef upper 90%"] - table["coef"]
    np.testing.assert_allclose(half, 1.6448536269514722 * table["se(coef)"])
    np.testing.assert_allclose(table["-log2(p)"], -np.log2(table["p"]))


def test_ridge_penalty_shrinks_coefficients(rossi):
    plain = CoxPH().fit(rossi.X, rossi.y)
    ridge = CoxPH(alpha=50.0).fit(rossi.X, rossi.y)
    assert np.sum(ridge.coef_**2) < np.sum(plain.coef_**2)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"alpha": -1}, r"The 'alpha' parameter of CoxPH must be a float in the range \[0(.0)?, inf\)"),
        ({"ties": "exact"}, r"The 'ties' parameter of CoxPH must be a str among"),
        ({"n_iter": 0}, r"The 'n_iter' parameter of CoxPH must be an int in the range \[1, inf\)"),
    ],
)
def test_bad_parameters_are_refused(rossi, params, message):
    with pytest.raises(ValueError, match=message):
        CoxPH(**params).fit(rossi.X, rossi.y)


def test_collinear_covariates_are_refused(rossi):
    X = rossi.X.assign(fin_copy=rossi.X["fin"])
    with pytest.raises(ValueError, match="CoxPH fit: the information matrix is singular; a covariate is constant"):
        CoxPH().fit(X, rossi.y)


def test_not_converged_warns(rossi):
    with pytest.warns(ConvergenceWarning, match="CoxPH fit: Newton-Raphson did not converge in n_iter=1"):
        CoxPH(n_iter=1).fit(rossi.X, rossi.y)


def test_prediction_checks(rossi):
    with pytest.raises(NotFittedError, match="This CoxPH instance is not fitted yet"):
        CoxPH().predict(rossi.X)
    model = CoxPH().fit(rossi.X, rossi.y)
    with pytest.raises(ValueError, match="X has 6 features, but CoxPH is expecting 7 features"):
        model.predict(rossi.X.iloc[:, :6].to_numpy())
    with pytest.raises(ValueError, match=r"parameter level of predict_survival_interval must be in \(0, 1\); got 1.5"):
        model.predict_survival_interval(rossi.X, [1.0], level=1.5)


def test_large_batch_is_vectorised(rossi):
    model = CoxPH().fit(rossi.X, rossi.y)
    big = np.tile(rossi.X.to_numpy(), (500, 1))  # 216,000 rows
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # fitted with names, predicting on an array
        surv = model.predict_survival(big, [4.0, 26.0, 52.0])
    assert surv.shape == (big.shape[0], 3)
    # same numbers up to BLAS rounding of the matrix product (a few ulp)
    np.testing.assert_allclose(surv[: len(rossi.X)], model.predict_survival(rossi.X, [4.0, 26.0, 52.0]), rtol=1e-13)
    assert np.all(np.diff(surv, axis=1) <= 0)
