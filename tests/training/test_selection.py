"""The declared selection rule and the null-model check, on comparisons with known figures."""

import numpy as np
import pandas as pd
import pytest

from cnslrisk.training.comparison import Comparison, metric_names
from cnslrisk.training.selection import select

HORIZONS = (3.0, 6.0, 12.0)
FOLDS, REPEATS = 5, 2


def make_comparison(figures: dict[str, dict[str, float]], spread: float = 0.01, seed: int = 0) -> Comparison:
    """A comparison whose per-fold values scatter around the given figures (pooled = the figure exactly)."""
    rng = np.random.default_rng(seed)
    fold_rows, pooled_rows = [], []
    for kind, values in figures.items():
        for metric in metric_names(HORIZONS):
            centre = values.get(metric, np.nan)
            noise = rng.normal(0, spread, FOLDS * REPEATS)
            noise -= noise.mean()  # the fold mean equals the figure
            for j in range(FOLDS * REPEATS):
                fold_rows.append((kind, metric, j // FOLDS, j % FOLDS, centre + (0 if kind == "null" else noise[j])))
            pooled_rows += [(kind, metric, r, centre) for r in range(REPEATS)]
    per_fold = pd.DataFrame(fold_rows, columns=["kind", "metric", "repeat", "fold", "value"]).set_index(
        ["kind", "metric", "repeat", "fold"]).sort_index()
    pooled = pd.DataFrame(pooled_rows, columns=["kind", "metric", "repeat", "value"]).set_index(
        ["kind", "metric"]).sort_index()
    return Comparison(kinds=tuple(figures), per_fold=per_fold, pooled=pooled,
                      failures=pd.DataFrame(columns=["kind", "repeat", "fold", "reason"]), folds=FOLDS,
                      repeats=REPEATS, n=300, reference_time=12.0, horizons=HORIZONS, first_repeat={},
                      times=np.asarray(HORIZONS))


NULL = {"c_index": 0.5, "ibs": 0.25}


def test_lowest_ibs_among_calibrated_wins():
    comparison = make_comparison({
        "cox": {"c_index": 0.66, "ibs": 0.210, "calibration_slope": 0.95},
        "coxnet": {"c_index": 0.67, "ibs": 0.200, "calibration_slope": 1.05},
        "rsf": {"c_index": 0.70, "ibs": 0.180, "calibration_slope": 2.10},  # best IBS, but far too timid
        "null": NULL,
    })
    chosen = select(comparison, ["cox", "coxnet", "rsf"])
    assert chosen.chosen == "coxnet" and chosen.calibrated and chosen.beats_null and chosen.champion_eligible
    assert "coxnet: out-of-fold ibs 0.200" in chosen.reason and "rsf" not in chosen.reason.split(";")[0]
    assert set(chosen.paired) == {"cox_vs_null", "coxnet_vs_null", "rsf_vs_null", "cox_vs_coxnet", "rsf_vs_coxnet"}
    assert chosen.paired["coxnet_vs_null"]["ibs"]["mean"] == pytest.approx(-0.05)


def test_differences_within_the_margin_go_to_the_simpler_model():
    figures = {"cox": {"c_index": 0.66, "ibs": 0.204, "calibration_slope": 0.9},
               "rsf": {"c_index": 0.68, "ibs": 0.200, "calibration_slope": 1.1}, "null": NULL}
    assert select(make_comparison(figures), ["cox", "rsf"]).chosen == "cox"  # 0.004 < default margin 0.005
    assert select(make_comparison(figures), ["cox", "rsf"], margin=0.001).chosen == "rsf"
    assert select(make_comparison(figures), ["cox", "rsf"], rule="c_index").chosen == "rsf"  # 0.02 > 0.01


def test_no_calibrated_candidate_is_said_and_never_champion():
    comparison = make_comparison({"cox": {"c_index": 0.7, "ibs": 0.2, "calibration_slope": 0.4},
                                  "rsf": {"c_index": 0.7, "ibs": 0.19, "calibration_slope": 3.0}, "null": NULL})
    chosen = select(comparison, ["cox", "rsf"])
    # |log 0.4| = 0.92 < |log 3| = 1.10: the Cox model is the least miscalibrated
    assert chosen.chosen == "cox" and not chosen.calibrated and not chosen.champion_eligible
    assert "no candidate's out-of-fold calibration slope lies in [0.7, 1.3]" in chosen.reason


def test_beats_null_needs_a_c_lower_bound_above_half_and_no_worse_ibs():
    # C 0.53 with fold SD 0.05: the corrected lower bound is 0.53 - 1.83 * 0.05 * sqrt(0.1 + 0.25) < 0.5
    weak = make_comparison({"cox": {"c_index": 0.53, "ibs": 0.24, "calibration_slope": 1.0}, "null": NULL},
                           spread=0.05)
    verdict = select(weak, ["cox"])
    assert not verdict.beats_null and not verdict.champion_eligible and "does NOT beat" in verdict.reason
    strong = make_comparison({"cox": {"c_index": 0.70, "ibs": 0.20, "calibration_slope": 1.0}, "null": NULL},
                             spread=0.05)
    assert select(strong, ["cox"]).beats_null
    worse_ibs = make_comparison({"cox": {"c_index": 0.70, "ibs": 0.26, "calibration_slope": 1.0}, "null": NULL})
    assert not select(worse_ibs, ["cox"]).beats_null


def test_the_published_model_doing_better_is_noted():
    comparison = make_comparison({"cox": {"c_index": 0.62, "ibs": 0.23, "calibration_slope": 1.0},
                                  "null": NULL, "published": {"c_index": 0.64, "ibs": 0.21, "calibration_slope": 1}})
    chosen = select(comparison, ["cox"])
    assert chosen.chosen == "cox" and "published model (Cox on pCE and LMD)" in chosen.notes[0]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rule": "auc"}, r"parameter rule of select must be one of \{ibs, c_index\}; got 'auc'"),
])
def test_bad_rule(kwargs, message):
    comparison = make_comparison({"cox": {"ibs": 0.2}, "null": NULL})
    with pytest.raises(ValueError, match=message):
        select(comparison, ["cox"], **kwargs)


def test_the_null_model_is_required():
    with pytest.raises(ValueError, match="the comparison must include the null model"):
        select(make_comparison({"cox": {"ibs": 0.2}}), ["cox"])


def test_nested_selection_scores_the_chosen_model_on_outer_folds(cohort, cox_factory):
    """The outer loop re-runs the whole selection on each outer training part; with one candidate it is
    that candidate every time, and its outer-fold C is Harrell's C of a refit on exactly those splits."""
    from cnslrisk.training.comparison import KaplanMeierNull
    from cnslrisk.training.crossval import fold_splits, survival_grid
    from cnslrisk.training.metrics import harrell_c
    from cnslrisk.training.nested import nested_selection

    factories = {"cox": cox_factory, "null": KaplanMeierNull}
    section = nested_selection(factories, ["cox"], cohort.X, cohort.y, horizons=list(HORIZONS), folds=3, repeats=1,
                               seed=0, select_options={"slope_band": (0.0, 10.0)})
    assert section["chosen"] == {"cox": 10}
    times = survival_grid(HORIZONS)
    c = []
    for _, _, train, test in fold_splits(cohort.y["event"], 5, 2, 1):
        model = cox_factory().fit(cohort.X.iloc[train], cohort.y[train])
        c.append(harrell_c(cohort.y[test], -np.log(model.predict_survival(cohort.X.iloc[test], times)[:, -1])))
    assert section["c_index"]["mean"] == pytest.approx(np.mean(c), abs=1e-12)
    assert section["c_index"]["ci_lower"] < section["c_index"]["mean"] < section["c_index"]["ci_upper"]
