"""CompactForest: the same bits as scikit-survival's forest, flat between event times, float32/grid costs, storage."""

from __future__ import annotations

import numpy as np
import pytest
from sksurv.ensemble import RandomSurvivalForest
from sksurv.util import Surv

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model.estimators import (
    CompactForest,
    ForestFileError,
    SurvivalForest,
    compact_forest,
    forest_from_files,
    forest_to_files,
)
from cnslrisk.model.features import FeatureEncoder
from cnslrisk.model.pipeline import make_pipeline

FEATURES = {
    "binary": ("pce", "lmd", "steroids", "ldh_elevated"),
    "categorical": ("cnsl_type", "car_product", "bridging"),
    "numeric": ("age", "ecog", "prior_lines"),
}


def _whas500():
    from sksurv.datasets import load_whas500

    X, y = load_whas500()
    return X.astype(float).to_numpy(), y


def _synthetic():
    cohort = generate_cohort(400, seed=3)
    X = FeatureEncoder(**FEATURES).fit_transform(cohort)
    return np.asarray(X, dtype=float), Surv.from_arrays(cohort["pfs1_event"], cohort["pfs1_months"])


@pytest.fixture(scope="module", params=["whas500", "synthetic"])
def case(request):
    X, y = _whas500() if request.param == "whas500" else _synthetic()
    rsf = RandomSurvivalForest(n_estimators=25, min_samples_leaf=5, max_features="sqrt", random_state=0).fit(X, y)
    return X, y, rsf, CompactForest.from_sksurv(rsf)


def test_predictions_equal_scikit_survival(case):
    X, _, rsf, compact = case
    event = rsf.is_event_time_
    assert not event.all()  # the sksurv grid holds censored-only times that the compact grid drops
    np.testing.assert_array_equal(compact.times_, rsf.unique_times_[event])
    # bit for bit: the leaf values are added in scikit-survival's serial order
    np.testing.assert_array_equal(compact.predict(X), rsf.predict(X))
    surv = rsf.predict_survival_function(X, return_array=True)
    chf = rsf.predict_cumulative_hazard_function(X, return_array=True)
    np.testing.assert_array_equal(compact.predict_survival_function(X, return_array=True), surv[:, event])
    np.testing.assert_array_equal(compact.predict_cumulative_hazard_function(X, return_array=True), chf[:, event])
    # at EVERY point of sksurv's grid (censored times included) the step curves agree
    np.testing.assert_array_equal(compact.predict_at(X, rsf.unique_times_), surv)
    np.testing.assert_array_equal(compact.predict_at(X, rsf.unique_times_, kind="cum_hazard"), chf)
    steps = compact.predict_survival_function(X[:3])
    np.testing.assert_array_equal(steps[1].y, compact.predict_survival_function(X[1:2], return_array=True)[0])


def test_every_leaf_is_flat_at_censored_only_times(case):
    _, _, rsf, _ = case
    event = rsf.is_event_time_
    last_event = np.maximum.accumulate(np.where(event, np.arange(event.size), -1))
    for tree in rsf.estimators_:
        values = tree.tree_.value[tree.tree_.children_left < 0]
        padded = np.concatenate([np.zeros_like(values[:, :1]), values], axis=1)
        padded[:, 0, 1] = 1.0  # before the first event: cumulative hazard 0, survival 1
        np.testing.assert_array_equal(values, padded[:, last_event + 1])


def test_routing_reaches_scikit_learns_leaves(case):
    X, _, rsf, compact = case
    leaves = compact.apply(X)
    # fewer than 64 rows take the numpy path (all trees at once) and a vectorised average
    np.testing.assert_array_equal(compact.apply(X[:7]), leaves[:, :7])
    np.testing.assert_array_equal(compact.predict(X[:7]), rsf.predict(X[:7]))
    surv = rsf.predict_survival_function(X[:7], return_array=True)
    np.testing.assert_array_equal(compact.predict_at(X[:7], rsf.unique_times_), surv)
    offsets = compact.arrays["node_offsets"]
    for t, tree in enumerate(rsf.estimators_):
        node = tree.apply(X.astype(np.float32))
        np.testing.assert_array_equal(leaves[t], compact.arrays["leaf_of_node"][offsets[t] + node])


def test_missing_values_follow_the_learned_side():
    X, y = _whas500()
    X = X.copy()
    X[np.random.default_rng(0).random(X.shape) < 0.1] = np.nan
    rsf = RandomSurvivalForest(n_estimators=10, min_samples_leaf=5, random_state=0).fit(X, y)
    assert rsf.estimators_[0].tree_.missing_go_to_left.any()
    compact = CompactForest.from_sksurv(rsf)
    np.testing.assert_array_equal(compact.predict(X), rsf.predict(X))  # NaN rows sorted too
    np.testing.assert_array_equal(compact.predict(X[:9]), rsf.predict(X[:9]))
    np.testing.assert_array_equal(compact.apply(X[:9]), compact.apply(X)[:, :9])


def test_float32_store_error_bound(case):
    # Each leaf value v is rounded once to float32 (round to nearest, unit roundoff u = 2**-24), so
    # |fl(v) - v| <= u |v|. The ensemble mean of T such values, summed in float64, is off by at most
    # u * max|v| plus float64 rounding (<= T * 2**-53 * max|v|, below 1e-13 here).
    X, _, _, compact = case
    small = CompactForest.from_sksurv(case[2], dtype="float32")
    assert small.arrays["survival"].dtype == np.float32
    u = 2.0**-24
    surv = compact.predict_survival_function(X, return_array=True)
    chf = compact.predict_cumulative_hazard_function(X, return_array=True)
    assert np.abs(small.predict_survival_function(X, return_array=True) - surv).max() <= u * 1.0 + 1e-13
    assert np.abs(small.predict_cumulative_hazard_function(X, return_array=True) - chf).max() <= u * chf.max() + 1e-13
    np.testing.assert_array_equal(small.predict(X), compact.predict(X))  # leaf risk stays float64


def test_coarse_grid_cost(case):
    X, _, rsf, compact = case
    times = compact.times_
    keep = [np.quantile(times, 0.5)]
    coarse = CompactForest.from_sksurv(rsf, max_times=10, keep_times=keep)
    assert 10 <= coarse.times_.size <= 11 and coarse.times_[0] == times[0] and coarse.times_[-1] == times[-1]
    np.testing.assert_array_equal(coarse.predict(X), compact.predict(X))
    np.testing.assert_array_equal(coarse.predict_at(X, keep), compact.predict_at(X, keep))
    # elsewhere a coarse curve reads the full curve at the kept grid time on or before t
    horizons = np.quantile(times, [0.2, 0.4, 0.8])
    previous = coarse.times_[np.searchsorted(coarse.times_, horizons, side="right") - 1]
    np.testing.assert_array_equal(coarse.predict_at(X, horizons), compact.predict_at(X, previous))
    # so the cost is the survival drop within one coarse interval: bounded by the largest such drop
    full = compact.predict_survival_function(X, return_array=True)
    bounds = zip(coarse.times_, coarse.times_[1:], strict=False)
    drops = [np.ptp(full[:, (times >= a) & (times < b)], axis=1).max() for a, b in bounds]
    cost = np.abs(coarse.predict_at(X, horizons) - compact.predict_at(X, horizons)).max()
    assert 0 < cost <= max(drops)


def test_save_load_round_trip_and_tamper(tmp_path, case):
    X, _, _, compact = case
    record = compact.save(tmp_path / "f")
    loaded = CompactForest.load(tmp_path / "f", record)
    np.testing.assert_array_equal(loaded.predict(X), compact.predict(X))
    np.testing.assert_array_equal(
        loaded.predict_survival_function(X, return_array=True), compact.predict_survival_function(X, return_array=True)
    )
    with np.load(tmp_path / "f" / "forest.npz", allow_pickle=False) as npz:
        assert all(npz[name].dtype != object for name in npz.files)
    raw = bytearray((tmp_path / "f" / "forest.npz").read_bytes())
    raw[len(raw) // 2] ^= 1
    (tmp_path / "f" / "forest.npz").write_bytes(bytes(raw))
    with pytest.raises(ForestFileError, match=r"forest\.npz: sha256 differs from the record"):
        CompactForest.load(tmp_path / "f", record)
    (tmp_path / "f" / "forest.json").unlink()
    with pytest.raises(ForestFileError, match=r"forest\.json: file is missing"):
        CompactForest.load(tmp_path / "f", record)
    with pytest.raises(ForestFileError, match="record format 'other' version 1 is not 'cnslrisk-compact-forest'"):
        CompactForest.load(tmp_path / "f", {**record, "format": "other"})


def test_pipeline_survives_files(tmp_path):
    cohort = generate_cohort(200, seed=5)
    y = Surv.from_arrays(cohort["pfs1_event"], cohort["pfs1_months"])
    grid = {"min_samples_leaf": [6], "max_features": ["sqrt"]}
    pipe = make_pipeline("rsf", **FEATURES, n_estimators=20, param_grid=grid, inner_cv=2).fit(cohort, y)
    record = forest_to_files(pipe.named_steps["model"], tmp_path)
    loaded = forest_from_files(tmp_path, record)
    assert not hasattr(loaded, "estimator_") and loaded.best_params_ == pipe.named_steps["model"].best_params_
    np.testing.assert_array_equal(loaded.feature_names_in_, pipe.named_steps["model"].feature_names_in_)
    pipe_loaded = make_pipeline("rsf", **FEATURES)
    pipe_loaded.steps = [pipe.steps[0], ("model", loaded)]
    horizons = [3, 6, 12]
    np.testing.assert_array_equal(pipe_loaded.predict(cohort), pipe.predict(cohort))
    np.testing.assert_array_equal(
        pipe_loaded.predict_survival(cohort, horizons), pipe.predict_survival(cohort, horizons)
    )
    np.testing.assert_array_equal(
        pipe_loaded.predict_cumulative_hazard(cohort, horizons), pipe.predict_cumulative_hazard(cohort, horizons)
    )
    assert pipe_loaded.score(cohort, y) == pipe.score(cohort, y)
    encoded = pipe.named_steps["encode"].transform(cohort)
    with pytest.raises(ValueError, match="The feature names should match those that were passed during fit"):
        loaded.predict(encoded[encoded.columns[::-1]])


def test_refusals():
    X, y = _whas500()
    lean = RandomSurvivalForest(n_estimators=2, low_memory=True, random_state=0).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="CompactForest: the forest was fitted with low_memory=True"):
        CompactForest.from_sksurv(lean)
    rsf = RandomSurvivalForest(n_estimators=2, random_state=0).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match=r"CompactForest: dtype='float16' is not one of \{float64, float32\}"):
        CompactForest.from_sksurv(rsf, dtype="float16")
    with pytest.raises(ValueError, match="CompactForest: max_times=1 must be at least 2 or None"):
        CompactForest.from_sksurv(rsf, max_times=1)
    with pytest.raises(ValueError, match=r"CompactForest: X has shape \(3, 2\); expected \(n_samples, 14\)"):
        CompactForest.from_sksurv(rsf).predict(X[:3, :2])
    with pytest.raises(ValueError, match="This SurvivalForest instance is not fitted yet"):
        SurvivalForest().predict(X)


@pytest.mark.parametrize("n", [5, 300])
def test_one_routing_for_risk_and_survival(case, n):
    X, _, rsf, compact = case
    horizons = np.array([compact.times_[0] / 2, *np.quantile(compact.times_, [0.25, 0.5])])
    risk, surv = compact.predict_with_survival(X[:n], horizons)
    np.testing.assert_array_equal(risk, rsf.predict(X[:n]))
    np.testing.assert_array_equal(surv, compact.predict_at(X[:n], horizons))
    assert (surv[:, 0] == 1.0).all() and (surv[:, 2] < 1.0).any()  # before the first event time: 1


def test_threads_and_row_order_change_no_bit(case, monkeypatch):
    X, _, rsf, compact = case
    horizons = np.quantile(compact.times_, [0.25, 0.5, 0.9])
    monkeypatch.setattr(compact, "n_threads", 1)
    risk, surv = compact.predict_with_survival(X, horizons)
    # three threads on unequal parts of at least 37 rows, each adding its rows' trees in forest order
    workers = []

    class Spy(compact_forest.ThreadPoolExecutor):
        def __init__(self, max_workers):
            workers.append(max_workers)
            super().__init__(max_workers)

    monkeypatch.setattr(compact_forest, "_ROWS_PER_THREAD", 37)
    monkeypatch.setattr(compact_forest, "ThreadPoolExecutor", Spy)
    monkeypatch.setattr(compact, "n_threads", 3)
    threaded = compact.predict_with_survival(X, horizons)
    assert workers == [3]
    np.testing.assert_array_equal(threaded[0], risk)
    np.testing.assert_array_equal(threaded[1], surv)
    np.testing.assert_array_equal(risk, rsf.predict(X))
    # the rows are sorted internally; the results come back in the caller's order
    order = np.random.default_rng(1).permutation(len(X))
    shuffled = compact.predict_with_survival(X[order], horizons)
    np.testing.assert_array_equal(shuffled[0], risk[order])
    np.testing.assert_array_equal(shuffled[1], surv[order])


def test_cached_node_tables_follow_the_columns(case):
    X, _, rsf, compact = case
    surv = rsf.predict_survival_function(X, return_array=True)
    chf = rsf.predict_cumulative_hazard_function(X, return_array=True)
    for i in range(6):  # 12 column sets, more than the 8 the cache keeps
        columns = [i, surv.shape[1] - 1 - i]
        np.testing.assert_array_equal(compact.predict_at(X, rsf.unique_times_[columns]), surv[:, columns])
        np.testing.assert_array_equal(
            compact.predict_at(X, rsf.unique_times_[columns], kind="cum_hazard"), chf[:, columns]
        )
