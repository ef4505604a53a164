"""Grambsch-Therneau PH test against lifelines' proportional_hazard_test."""

from __future__ import annotations

import numpy as np
import pytest
from lifelines import CoxPHFitter
from lifelines.statistics import proportional_hazard_test
from sksurv.util import Surv

from cnslrisk.model.diagnostics import proportional_hazards_test
from cnslrisk.model.estimators import CoxPH
from cnslrisk.model.pipeline import make_pipeline

# Same statistic from the same residuals; coefficient and variance differences of ~1e-8 between the two
# fits move the statistics by far less than 1e-6 (relative), so we compare at rtol=1e-6.


def test_km_transform_equals_lifelines_reference(rossi, reference):
    ref = reference("rossi_lifelines_ph_km.csv")
    got = proportional_hazards_test(CoxPH().fit(rossi.X, rossi.y), rossi.X, rossi.y, time_transform="km")
    np.testing.assert_allclose(got.loc[ref.index, "test_statistic"], ref["test_statistic"], rtol=1e-6)
    np.testing.assert_allclose(got.loc[ref.index, "p"], ref["p"], rtol=1e-6)
    assert got.loc["global", "df"] == 7 and (got.drop("global")["df"] == 1).all()


def test_rank_transform_equals_lifelines_without_ties(rossi):
    # lifelines ranks tied event times by position, R and we average them: compare on untied times
    time = rossi.y["time"] + np.random.default_rng(0).uniform(0, 0.5, len(rossi.y))
    y = Surv.from_arrays(rossi.y["event"], time)
    df = rossi.X.assign(week=time, arrest=rossi.y["event"].astype(int))
    fitter = CoxPHFitter().fit(df, "week", "arrest", fit_options={"precision": 1e-12, "r_precision": 0})
    ref = proportional_hazard_test(fitter, df, time_transform="rank").summary
    got = proportional_hazards_test(CoxPH().fit(rossi.X, y), rossi.X, y, time_transform="rank")
    np.testing.assert_allclose(got.loc[ref.index, "test_statistic"], ref["test_statistic"], rtol=1e-6)


def test_global_statistic_on_one_covariate_equals_its_own(rossi):
    X = rossi.X[["age"]]
    got = proportional_hazards_test(CoxPH().fit(X, rossi.y), X, rossi.y)
    assert got.loc["global", "test_statistic"] == pytest.approx(got.loc["age", "test_statistic"], rel=1e-12)


def test_pipeline_input_uses_encoded_names(cohort):
    df, y = cohort(120, seed=4)
    pipe = make_pipeline("cox", binary=["pce", "lmd"], categorical=["bridging"], numeric=["age"]).fit(df, y)
    got = proportional_hazards_test(pipe, df, y)
    assert list(got.index) == [*pipe[:-1].get_feature_names_out(), "global"]
    assert np.all((got["p"] >= 0) & (got["p"] <= 1))


def test_refuses_models_without_variance(rossi):
    from cnslrisk.model.estimators import PenalizedCox

    with pytest.raises(ValueError, match="proportional_hazards_test: PenalizedCox is not a fitted CoxPH"):
        proportional_hazards_test(PenalizedCox(), rossi.X, rossi.y)
    with pytest.raises(ValueError, match=r"time_transform of proportional_hazards_test must be one of \{km, rank\}"):
        proportional_hazards_test(CoxPH(), rossi.X, rossi.y, time_transform="log")
