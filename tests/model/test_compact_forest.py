"""CompactForest: the same bits as scikit-survival's forest, leaf steps, one routing for everything, storage."""

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
from cnslrisk.model.estimators._forest_files import load_forest, save_forest
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
    # past 64 columns the curves are summed from the leaves' steps: equal to rounding
    np.testing.assert_allclose(compact.predict_at(X, rsf.unique_times_), surv, rtol=0, atol=1e-14)
    np.testing.assert_allclose(compact.predict_at(X, rsf.unique_times_, kind="cum_hazard"), chf, rtol=1e-14, atol=1e-14)
    few = np.linspace(0, event.size - 1, 60).astype(int)  # up to 64 columns: the tree-order sums, bit for bit
    np.testing.assert_array_equal(compact.predict_at(X, rsf.unique_times_[few]), surv[:, few])
    whole = compact.predict_at(X, rsf.unique_times_)
    np.testing.assert_array_equal(compact.predict_at(X[:1], rsf.unique_times_), whole[:1])  # alone or in a batch
    steps = compact.predict_survival_function(X[:3])
    np.testing.assert_array_equal(steps[1].y, compact.predict_survival_function(X[1:2], return_array=True)[0])


def test_every_leaf_is_flat_at_censored_only_times(case):
    _, _, rsf, compact = case
    event = rsf.is_event_time_
    last_event = np.maximum.accumulate(np.where(event, np.arange(event.size), -1))
    for tree in rsf.estimators_:
        values = tree.tree_.value[tree.tree_.children_left < 0]
        padded = np.concatenate([np.zeros_like(values[:, :1]), values], axis=1)
        padded[:, 0, 1] = 1.0  # before the first event: cumulative hazard 0, survival 1
        np.testing.assert_array_equal(values, padded[:, last_event + 1])
    # hence a leaf is its steps: at most one per distinct event time of its samples
    assert compact.arrays["step_ptr"][-1] < compact.n_leaves_ * compact.times_.size / 5


def test_routing_reaches_scikit_learns_leaves(case):
    X, _, rsf, compact = case
    leaves = compact.apply(X)
    # fewer than 64 rows take the numpy path (all trees at once) and a vectorised average
    np.testing.assert_array_equal(compact.apply(X[:7]), leaves[:, :7])
    np.testing.assert_array_equal(compact.predict(X[:7]), rsf.predict(X[:7]))
    surv = rsf.predict_survival_function(X[:7], return_array=True)
    np.testing.assert_allclose(compact.predict_at(X[:7], rsf.unique_times_), surv, rtol=0, atol=1e-14)
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


def test_save_load_round_trip_and_tamper(tmp_path, case):
    X, _, _, compact = case
    record = save_forest(compact, tmp_path / "f")
    loaded = load_forest(tmp_path / "f", record)
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
        load_forest(tmp_path / "f", record)
    (tmp_path / "f" / "forest.json").unlink()
    with pytest.raises(ForestFileError, match=r"forest\.json: file is missing"):
        load_forest(tmp_path / "f", record)
    with pytest.raises(ForestFileError, match="record format 'other' version 2 is not 'cnslrisk-compact-forest'"):
        load_forest(tmp_path / "f", {**record, "format": "other"})


def _write_version_1(compact, directory):
    """The layout version 1 wrote: each curve's first value and changes per leaf, dense grid columns."""
    import json

    from cnslrisk.model.estimators import _forest_files

    directory.mkdir()
    a, n_times = compact.arrays, compact.times_.size
    leaves = np.arange(compact.n_leaves_)
    arrays = {name: a[name] for name in ("node_offsets", "feature", "threshold", "children_left", "children_right",
                                         "missing_left", "leaf_of_node", "times", "risk")}
    for name, steps, initial in (("survival", "step_surv", 1.0), ("cum_hazard", "step_chf", 0.0)):
        table = compact_forest.dense_rows(a["step_ptr"], a["step_col"], a[steps], initial, leaves, n_times)
        change = np.ones(table.shape, dtype=bool)
        change[:, 1:] = table[:, 1:] != table[:, :-1]
        rows, cols = np.nonzero(change)
        arrays.update({f"{name}_ptr": np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=leaves.size))]),
                       f"{name}_col": cols.astype(np.uint16), f"{name}_value": table[rows, cols]})
    np.savez_compressed(directory / "forest.npz", **arrays)
    (directory / "forest.json").write_text(json.dumps({"n_features_in": compact.n_features_in, "feature_names": None,
                                                       "metadata": {}}))
    files = {name: {"sha256": _forest_files._sha256(directory / name)} for name in ("forest.npz", "forest.json")}
    return {"format": _forest_files.FORMAT, "version": 1, "files": files}


def test_version_1_files_still_load(tmp_path, case):
    X, _, rsf, compact = case
    loaded = load_forest(tmp_path / "v1", _write_version_1(compact, tmp_path / "v1"))
    np.testing.assert_array_equal(loaded.predict(X), rsf.predict(X))
    np.testing.assert_allclose(loaded.predict_at(X, rsf.unique_times_), rsf.predict_survival_function(X, True),
                               rtol=0, atol=1e-14)
    assert loaded.inbag_gram is None


def test_pipeline_survives_files(tmp_path):
    cohort = generate_cohort(200, seed=5)
    y = Surv.from_arrays(cohort["pfs1_event"], cohort["pfs1_months"])
    grid = {"min_samples_leaf": [6], "max_features": ["sqrt"]}
    pipe = make_pipeline("rsf", **FEATURES, n_estimators=40, param_grid=grid, inner_cv=2).fit(cohort, y)
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
    summary = compact.predict_summary(X, horizons, grid=compact.times_)
    assert workers == [3, 3]
    np.testing.assert_array_equal(summary["risk"], risk)
    np.testing.assert_array_equal(summary["survival"], surv)
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


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("n", [1, 5, 300])
def test_summary_reads_the_whole_curve(case, n, dense, monkeypatch):
    X, _, rsf, compact = case
    # the median search reads a small forest's whole leaf curves, a large one's steps: both paths
    monkeypatch.setattr(compact_forest, "_DENSE_LEAF_VALUES", 1 << 30 if dense else 0)
    monkeypatch.setattr(compact, "_dense_survival", None)
    horizons = np.array([compact.times_[0] / 2, *np.quantile(compact.times_, [0.25, 0.5])])
    grid = compact.times_[::3]
    summary = compact.predict_summary(X[:n], horizons, grid=grid)
    risk, surv = compact.predict_with_survival(X[:n], horizons)
    np.testing.assert_array_equal(summary["risk"], risk)
    np.testing.assert_array_equal(summary["survival"], surv)
    # the median is the first grid time where the curve scikit-survival returns is at or below 0.5
    on_grid = rsf.predict_survival_function(X[:n], return_array=True)[:, np.searchsorted(rsf.unique_times_, grid)]
    below = on_grid <= 0.5
    want = np.where(below.any(axis=1), grid[below.argmax(axis=1)], np.nan)
    np.testing.assert_array_equal(summary["median"], want)
    if n == 300:
        assert np.isfinite(want).any() and np.isnan(want).any()
    # one row at a time: the same numbers
    single = compact.predict_summary(X[n - 1:n], horizons, grid=grid)
    np.testing.assert_array_equal(single["median"], summary["median"][-1:])
    np.testing.assert_array_equal(single["survival"], summary["survival"][-1:])
