"""Simulation checks of the comparison and the selection rule (small settings: 5 x 2 CV, 100 trees).

- With the outcome shuffled between patients (no signal at all) the chosen model beats the null model
  in at most 3 of 20 seeds (a one-sided 5 % test after choosing among candidates: about 1 in 20, with
  room for the selection).
- On 20 synthetic cohorts of 300 patients with the study's effects it beats the null model in at least 18.
- The validated (out-of-fold) C of every candidate type is unbiased for the C the model fitted on the
  whole cohort achieves on new patients: over 20 cohorts the mean difference from its C on an independent
  20,000-patient sample lies within 2 standard errors of 0.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
from lifelines.utils import concordance_index

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model.pipeline import make_pipeline
from cnslrisk.training import load_config
from cnslrisk.training.comparison import compare, reference_factories
from cnslrisk.training.data import load_training_data
from cnslrisk.training.fit import pipeline_factory
from cnslrisk.training.selection import select

pytestmark = pytest.mark.slow

SEEDS = range(20)
KINDS = ("cox", "coxnet", "rsf")
SMALL = {"validation.folds": 5, "validation.repeats": 2, "models.rsf_trees": 100, "n_jobs": 2}


def factories(config, columns):
    out = {kind: pipeline_factory(kind, config) for kind in KINDS}
    out.update(reference_factories(partial(make_pipeline, "cox", random_state=config.seed), columns))
    return out


def run(config, X, y):
    v = config.validation
    comparison = compare(factories(config, list(config.features.binary)), X, y, horizons=v.horizons, folds=v.folds,
                         repeats=v.repeats, seed=config.seed, n_jobs=config.n_jobs)
    gate = config.promotion
    return comparison, select(comparison, KINDS, slope_band=(gate.slope_lower, gate.slope_upper))


def _outcome(frame):
    return np.array(list(zip(frame["pfs1_event"].astype(bool), frame["pfs1_months"].astype(float), strict=True)),
                    dtype=[("event", bool), ("time", float)])


def test_no_signal_rarely_beats_the_null_model():
    config = load_config(overrides=SMALL)
    data = load_training_data(config)
    beats = []
    for seed in SEEDS:
        order = np.random.default_rng(seed).permutation(len(data.y))
        beats.append(run(config, data.X, data.y[order])[1].beats_null)
    assert sum(beats) <= 3, f"{sum(beats)} of 20 shuffled cohorts beat the null model"


def test_the_study_effects_beat_the_null_model_at_300_patients():
    config = load_config(overrides=SMALL)
    beats = []
    for seed in SEEDS:
        frame = generate_cohort(300, seed=100 + seed)
        beats.append(run(config, frame[config.feature_columns], _outcome(frame))[1].beats_null)
    assert sum(beats) >= 18, f"only {sum(beats)} of 20 cohorts with the study's effects beat the null model"


def test_validated_c_is_unbiased_for_every_candidate_type():
    config = load_config(overrides=SMALL)
    columns = config.feature_columns
    external = generate_cohort(20_000, seed=12345)
    X_new, y_new = external[columns], _outcome(external)
    t_ref = max(config.validation.horizons)
    differences = {kind: [] for kind in KINDS}
    for seed in SEEDS:
        frame = generate_cohort(60, seed=200 + seed)
        X, y = frame[columns], _outcome(frame)
        comparison, _ = run(config, X, y)
        for kind in KINDS:
            model = pipeline_factory(kind, config)().fit(X, y)
            risk = -np.log(np.clip(model.predict_survival(X_new, [t_ref])[:, 0], 1e-300, None))
            achieved = concordance_index(y_new["time"], -risk, y_new["event"])  # lifelines: higher = longer
            differences[kind].append(comparison.figure(kind, "c_index")["mean"] - achieved)
    for kind, d in differences.items():
        d = np.asarray(d)
        se = d.std(ddof=1) / np.sqrt(d.size)
        assert abs(d.mean()) <= 2 * se, f"{kind}: mean validated - achieved C {d.mean():+.4f} (SE {se:.4f})"
