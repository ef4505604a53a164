"""The out-of-fold comparison: same splits for every kind, the null model, corrected intervals."""

from functools import partial

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cnslrisk.training.calibration import calibration_slope_at
from cnslrisk.training.comparison import KaplanMeierNull, compare, corrected_interval, metric_names
from cnslrisk.training.crossval import fold_splits, survival_grid
from cnslrisk.training.metrics import harrell_c

HORIZONS = [3, 6, 12]


@pytest.fixture(scope="module")
def comparison(cohort, cox_factory):
    return compare({"cox": cox_factory, "null": KaplanMeierNull}, cohort.X, cohort.y, horizons=HORIZONS, folds=5,
                   repeats=3, seed=1)


def test_every_kind_is_scored_on_the_same_folds(comparison, cohort, cox_factory):
    folds = comparison.per_fold.reset_index()
    assert set(folds["kind"]) == {"cox", "null"} and set(folds["metric"]) == set(metric_names(HORIZONS))
    # each fold's Harrell C is that of a refit on exactly the split fold_splits gives
    times = survival_grid(HORIZONS)
    for r, k, train, test in fold_splits(cohort.y["event"], 5, 3, 1)[::4]:
        model = cox_factory().fit(cohort.X.iloc[train], cohort.y[train])
        risk = -np.log(model.predict_survival(cohort.X.iloc[test], times)[:, -1])
        expected = harrell_c(cohort.y[test], risk)
        assert comparison.per_fold.loc[("cox", "c_index", r, k), "value"] == pytest.approx(expected, abs=1e-12)


def test_the_null_model_knows_nothing(comparison, cohort):
    # C = 0.5 in every fold (one risk for all), no calibration slope, and the rank metrics' interval collapses
    assert comparison.figure("null", "c_index") == {"mean": 0.5, "ci_lower": 0.5, "ci_upper": 0.5}
    assert np.isnan(comparison.figure("null", "calibration_slope")["mean"])
    assert comparison.lower_bound("null", "c_index") == 0.5
    # its pooled out-of-fold risk at each horizon is close to the cohort's Kaplan-Meier risk
    for h in HORIZONS:
        assert abs(comparison.figure("null", f"calibration_in_the_large_{h}")["mean"]) < 0.02


def test_rank_metrics_average_folds_and_absolute_metrics_pool_predictions(comparison, cohort):
    c_folds = comparison.per_fold.xs(("cox", "c_index"), level=("kind", "metric"))["value"]
    assert comparison.figure("cox", "c_index")["mean"] == pytest.approx(c_folds.mean(), abs=1e-12)
    ibs_pooled = comparison.pooled.loc[("cox", "ibs"), "value"]
    assert len(ibs_pooled) == 3
    assert comparison.figure("cox", "ibs")["mean"] == pytest.approx(ibs_pooled.mean(), abs=1e-12)


def test_pooled_slope_centres_each_fold(comparison, cohort):
    # the first repeat's pooled slope recomputed from its out-of-fold survival and fold labels
    fold = np.empty(len(cohort.y), dtype=int)
    for r, k, _, test in fold_splits(cohort.y["event"], 5, 3, 1):
        if r == 0:
            fold[test] = k
    s12 = comparison.first_repeat_at("cox", [12])[:, 0]
    expected = calibration_slope_at(cohort.y, s12, 12.0, groups=fold)
    first = comparison.pooled.loc[("cox", "calibration_slope")].query("repeat == 0")["value"].iloc[0]
    assert first == pytest.approx(expected, abs=1e-12)
    # a shift of one fold's predictions (its baseline) does not change the centred slope
    shifted = np.where(fold == 2, s12 ** 1.5, s12)
    loglog_shift = np.log(-np.log(shifted)) - np.log(-np.log(s12))
    assert np.ptp(loglog_shift[fold == 2]) < 1e-12
    assert calibration_slope_at(cohort.y, shifted, 12.0, groups=fold) == pytest.approx(expected, abs=1e-9)


def test_corrected_interval_is_the_bouckaert_frank_formula():
    values = np.array([0.61, 0.70, 0.55, 0.66, 0.72, 0.58, 0.64, 0.69, 0.60, 0.63])  # K = 5, R = 2
    lower, upper = corrected_interval(values, 0.65, n_train=48, n_test=12)
    se = np.sqrt(values.var(ddof=1) * (1 / 10 + 12 / 48))
    half = stats.t.ppf(0.975, 9) * se
    assert (lower, upper) == pytest.approx((0.65 - half, 0.65 + half), abs=1e-12)
    one_sided = corrected_interval(values, 0.65, n_train=48, n_test=12, sided="lower")
    assert one_sided[0] == pytest.approx(0.65 - stats.t.ppf(0.95, 9) * se, abs=1e-12) and one_sided[1] == np.inf
    # the naive interval (variance / J) would be narrower by sqrt(1 + J n_test / n_train) = sqrt(3.5) here
    assert np.isnan(corrected_interval(np.array([0.6, np.nan]), 0.6, n_train=48, n_test=12)[0])


def test_corrected_interval_covers_the_truth_in_repeated_cv():
    """Coverage of the corrected interval for a difference with known mean 0 (two identical learners on noise)."""
    rng = np.random.default_rng(0)
    covered = 0
    trials = 200
    for _ in range(trials):
        n = 60
        x = rng.normal(size=n)
        fold_values = []
        for _ in range(5):
            perm = rng.permutation(n)
            for k in range(5):
                test = perm[k::5]
                train = np.setdiff1d(perm, test)
                # squared error of the training mean predicting the test points: overlapping training sets
                fold_values.append(np.mean((x[test] - x[train].mean()) ** 2) - 1.0 - 1 / 48)
        lower, upper = corrected_interval(np.asarray(fold_values), float(np.mean(fold_values)), n_train=48, n_test=12)
        covered += lower <= 0 <= upper
    # nominal 95 %; 200 trials give a binomial SE of 1.5 %: the naive interval covers far less (about 80 %)
    assert covered / trials >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / trials)


def test_comparison_is_reproducible_and_independent_of_n_jobs(cohort, cox_factory):
    run = partial(compare, {"cox": cox_factory, "null": KaplanMeierNull}, cohort.X, cohort.y, horizons=HORIZONS,
                  folds=3, repeats=2, seed=7)
    one = run(n_jobs=1)
    pd.testing.assert_frame_equal(one.per_fold, run(n_jobs=2).per_fold)
    pd.testing.assert_frame_equal(one.pooled, run(n_jobs=1).pooled)
    assert not one.per_fold["value"].equals(run(n_jobs=1, seed=8).per_fold["value"])


def test_failed_refits_are_recorded_not_dropped(cohort, failing_factory):
    events = int(cohort.y["event"].sum())
    result = compare({"cox": failing_factory(events), "null": KaplanMeierNull}, cohort.X, cohort.y,
                     horizons=HORIZONS, folds=5, repeats=1)
    assert len(result.failures) == 5 and result.failures["reason"].str.startswith("RuntimeError: needs").all()
    assert np.isnan(result.figure("cox", "ibs")["mean"]) and np.isnan(result.figure("cox", "c_index")["mean"])
    assert result.figure("null", "c_index")["mean"] == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, r"parameter folds of compare must be an int >= 2; got 1"),
        ({"repeats": 0}, r"parameter repeats of compare must be an int >= 1; got 0"),
        ({"horizons": [3, -1]}, r"parameter horizons must be positive finite times; got \[3, -1\]"),
    ],
)
def test_compare_bad_arguments(cohort, cox_factory, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare({"cox": cox_factory}, cohort.X, cohort.y, **{"horizons": HORIZONS, **kwargs})
