"""One coherent prediction: pattern incidences that split the survival model's risk (model.coherent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from test_predictor import build

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import check_cohort
from cnslrisk.model.coherent import CoherentIncidence, interval_sources, split_incidence
from cnslrisk.model.features import FeatureEncoder
from cnslrisk.model.pattern import CauseSpecificCox, competing_outcome
from cnslrisk.model.pipeline import make_pipeline
from cnslrisk.model.predictor import RiskModel

FEATURES = {"binary": ["pce", "lmd"], "categorical": ["cnsl_type"], "numeric": ["age"], "id": "patient_id"}
FINE = np.linspace(0.02, 30.0, 400)


def _pattern() -> Pipeline:
    encoder = FeatureEncoder(("pce", "lmd"), (), ()).set_output(transform="pandas")
    return Pipeline([("encode", encoder), ("model", CauseSpecificCox())])


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return check_cohort(generate_cohort(300, seed=8))


def _outcome(cohort):
    return competing_outcome(cohort["pattern"], cohort["pfs1_months"])


@pytest.mark.parametrize(("kind", "params"), [("cox", {}), ("coxnet", {}), ("rsf", {"n_estimators": 25})])
def test_incidences_add_up_to_one_minus_survival_and_never_decrease(cohort, kind, params):
    survival = make_pipeline(kind, binary=FEATURES["binary"], categorical=FEATURES["categorical"],
                             numeric=FEATURES["numeric"], **params)
    model = CoherentIncidence(survival, _pattern()).fit(cohort, _outcome(cohort))
    incidence = model.predict_cumulative_incidence(cohort, FINE)
    curve = model.survival_.predict_survival(cohort, FINE)
    np.testing.assert_allclose(incidence.sum(axis=1), 1.0 - curve, rtol=0, atol=1e-12)
    assert (np.diff(incidence, axis=2) >= 0).all() and (incidence >= 0).all()


class _ProductLimitSurvival(BaseEstimator):
    """The all-cause survival that the cause-specific models themselves imply (product-limit)."""

    def __init__(self, pattern):
        self.pattern = pattern
        self.unique_times_ = pattern.unique_times_

    def predict_survival(self, X, times, check_input=True):
        return self.pattern.predict_survival(X, times)


def test_the_split_of_the_pattern_models_own_survival_is_its_product_limit_incidence(cohort):
    """With S = prod(1 - sum_k dL_k), [S(t-) - S(t)] x dL_k / sum dL = S(t-) dL_k: riskRegression's formula."""
    pattern = _pattern().fit(cohort, _outcome(cohort))
    X = pattern[:-1].transform(cohort)
    estimator = pattern[-1]
    own = _ProductLimitSurvival(estimator)
    split = split_incidence(lambda lo, hi, at: own.predict_survival(X.iloc[lo:hi], at), own.unique_times_, estimator,
                            estimator.relative_hazards(X), FINE)
    np.testing.assert_allclose(split, estimator.predict_cumulative_incidence(X, FINE), rtol=0, atol=1e-13)


def test_grid_points_without_a_pattern_event_carry_the_last_shares(cohort):
    pattern = _pattern().fit(cohort, _outcome(cohort))[-1]
    u, dH = pattern.unique_times_, pattern.baseline_increments_
    before = u[0] / 2
    between = (u[3] + u[4]) / 2
    grid = np.sort(np.r_[before, u[:6], between])
    base = interval_sources(pattern, grid)
    np.testing.assert_array_equal(base[0], dH[0])  # before the first pattern event: the nearest (first) shares
    np.testing.assert_array_equal(base[1], dH[0])
    np.testing.assert_array_equal(base[np.searchsorted(grid, between)], dH[3])  # carried from u[3]
    coarse = interval_sources(pattern, u[[1, 5]])  # a coarser grid sums the pattern increments in each interval
    np.testing.assert_allclose(coarse, [dH[:2].sum(axis=0), dH[2:6].sum(axis=0)], rtol=1e-15)


@pytest.mark.parametrize(("kind", "params"), [("cox", {}), ("rsf", {"n_estimators": 25})])
def test_a_risk_models_columns_are_one_coherent_prediction(tmp_path, kind, params):
    model, cohort = build(kind, **params)  # test_predictor's model, with a pattern model added
    model.pattern = _pattern().fit(cohort, _outcome(cohort))
    horizons = tuple(FINE[::20])
    out = model.predict(cohort, horizons=horizons)
    causes = list(model.pattern[-1].causes_)
    labels = [f"{h:g}" for h in horizons]
    for label in labels:
        total = sum(out[f"cif_{c}_{label}"] for c in causes)
        np.testing.assert_allclose(total, 1.0 - out[f"survival_{label}"], rtol=0, atol=1e-12)
    for c in causes:
        assert (np.diff(out[[f"cif_{c}_{label}" for label in labels]].to_numpy(), axis=1) >= 0).all()
    model.save(tmp_path / "m")
    again = RiskModel.load(tmp_path / "m")
    assert again.pattern_split
    pd.testing.assert_frame_equal(again.predict(cohort, horizons=horizons), out)
