"""Firth's penalised Cox model: against a penalised likelihood written another way, and only where separation is."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize
from sksurv.util import Surv

from cnslrisk.model.estimators import CoxPH
from cnslrisk.model.estimators._breslow import RiskSets
from cnslrisk.model.estimators.firth import FirthCoxPH, monotone_direction


def _terms(X: np.ndarray, time: np.ndarray, event: np.ndarray, ties: str):
    """Each term of the partial likelihood as (event row, weights over the sample), by explicit loops."""
    terms = []
    for t in np.unique(time[event]):
        tied = np.flatnonzero((time == t) & event)
        at_risk = time >= t
        for rank, row in enumerate(tied):
            share = rank / tied.size if ties == "efron" else 0.0
            weight = at_risk.astype(float)
            weight[tied] -= share
            terms.append((row, weight))
    return terms


def penalised_loglik(beta: np.ndarray, X: np.ndarray, terms) -> float:
    """l(b) + 1/2 log det I(b), I the sum over terms of the weighted covariance of x (written out, no risk-set sums)."""
    loglik, information = 0.0, np.zeros((X.shape[1], X.shape[1]))
    for row, weight in terms:
        w = weight * np.exp(X @ beta)
        loglik += X[row] @ beta - np.log(w.sum())
        p = w / w.sum()
        mean = p @ X
        information += (X - mean).T @ ((X - mean) * p[:, None])
    return loglik + 0.5 * np.linalg.slogdet(information)[1]


def independent_firth(X: np.ndarray, time: np.ndarray, event: np.ndarray, ties: str) -> np.ndarray:
    terms = _terms(X, time, event, ties)
    result = minimize(lambda b: -penalised_loglik(b, X, terms), np.zeros(X.shape[1]), method="Nelder-Mead",
                      options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 40_000, "maxfev": 40_000})
    assert result.success, result.message
    return result.x


def _separated(seed: int = 1, n: int = 60):
    """Events only among patients with x1 = 1 (monotone likelihood in +x1); x2 a real effect; some ties."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.binomial(1, 0.4, n).astype(float), rng.normal(size=n)
    t = rng.exponential(1 / (0.1 * np.exp(0.5 * x2)))
    c = rng.uniform(1, 20, n)
    time = np.round(np.minimum(t, c), 0) + 1.0
    return pd.DataFrame({"x1": x1, "x2": x2}), (t <= c) & (x1 == 1), time


@pytest.mark.parametrize("ties", ["breslow", "efron"])
def test_firth_equals_an_independent_penalised_likelihood_fit(ties):
    X, event, time = _separated()
    fitted = FirthCoxPH(penalty="firth", ties=ties).fit(X, Surv.from_arrays(event, time))
    # the likelihood is invariant to centring: the reference works on the raw covariates
    np.testing.assert_allclose(fitted.coef_, independent_firth(X.to_numpy(), time, event, ties), atol=1e-4)


def test_auto_applies_firth_only_under_separation_and_says_why():
    X, event, time = _separated()
    separated = FirthCoxPH().fit(X, Surv.from_arrays(event, time))
    assert separated.penalty_ == "firth" and separated.separation_.startswith(
        "monotone partial likelihood (separation) along +x1: ")
    np.testing.assert_allclose(separated.coef_, FirthCoxPH(penalty="firth").fit(X, Surv.from_arrays(event, time)).coef_)
    rng = np.random.default_rng(2)
    event = rng.random(len(time)) < 0.6  # events in both groups: the ordinary estimate exists
    ordinary = FirthCoxPH().fit(X, Surv.from_arrays(event, time))
    assert ordinary.penalty_ == "none" and ordinary.separation_ is None
    reference = CoxPH().fit(X, Surv.from_arrays(event, time))
    np.testing.assert_array_equal(ordinary.coef_, reference.coef_)
    np.testing.assert_array_equal(ordinary.variance_matrix_, reference.variance_matrix_)


def test_monotone_direction_is_exact():
    X, event, time = _separated()
    Z = X.to_numpy() - X.to_numpy().mean(axis=0)
    direction = monotone_direction(Z, RiskSets.build(time, event))
    np.testing.assert_array_equal(direction, [1.0, 0.0])
    rng = np.random.default_rng(3)
    assert monotone_direction(Z, RiskSets.build(time, rng.random(len(time)) < 0.5)) is None


def test_a_firth_fit_round_trips_through_json():
    X, event, time = _separated()
    model = FirthCoxPH().fit(X, Surv.from_arrays(event, time))
    again = FirthCoxPH.from_dict(json.loads(json.dumps(model.to_dict())))
    assert (again.penalty_, again.separation_) == (model.penalty_, model.separation_)
    np.testing.assert_array_equal(again.predict_survival(X, [3.0, 8.0]), model.predict_survival(X, [3.0, 8.0]))


def test_the_example_post_response_pattern_gets_firth_and_equals_the_independent_fit():
    """The bundled example's patients progression-free at 1 month: the response levels separate the patterns
    (10-14 events each); every Firth fit equals the penalised likelihood written another way."""
    from pathlib import Path

    from cnslrisk.model import check_cohort, read_cohort
    from cnslrisk.model.features import FeatureEncoder
    from cnslrisk.model.pattern import CauseSpecificCox, competing_outcome

    cohort = check_cohort(read_cohort(Path(__file__).resolve().parents[2] / "data" / "example_cohort.csv"))
    cohort = cohort[(cohort["pfs1_months"] > 1) & cohort["best_response"].notna()]
    X = FeatureEncoder(("pce", "lmd"), ("best_response",), ()).fit_transform(cohort)
    time, cause = cohort["pfs1_months"].to_numpy() - 1, cohort["pattern"].to_numpy()
    model = CauseSpecificCox().fit(X, competing_outcome(cause, time))
    penalties = model.penalties()
    separated = [c for c, entry in penalties.items() if entry["penalty"] == "firth"]
    assert "local_and_distant" in separated
    for name in separated:
        fitted = model.models_[list(model.causes_).index(name)]
        expected = independent_firth(X, time, cause == name, "efron")
        np.testing.assert_allclose(fitted.coef_, expected, atol=1e-4, err_msg=name)
