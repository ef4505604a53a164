"""Fixtures for the validation tests: a simulated cohort and estimator factories.

``cox_factory`` uses the project's ``make_pipeline("cox")`` when it exists and otherwise a small
adapter around scikit-survival's ``CoxPHSurvivalAnalysis`` with the same interface
(``fit(X, y)``, ``predict(X)`` = linear predictor, ``predict_survival(X, times)``).
"""

from __future__ import annotations

from collections import namedtuple
from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

Cohort = namedtuple("Cohort", ["X", "y"])


class SksurvCox(BaseEstimator):
    """Unpenalised Cox model (Efron ties) on the numeric columns of a DataFrame."""

    def __init__(self, ties: str = "efron"):
        self.ties = ties

    def fit(self, X, y):
        self.model_ = CoxPHSurvivalAnalysis(ties=self.ties).fit(np.asarray(X, dtype=float), y)
        self.coef_ = self.model_.coef_
        return self

    def predict(self, X):
        return self.model_.predict(np.asarray(X, dtype=float))

    def predict_survival(self, X, times):
        fns = self.model_.predict_survival_function(np.asarray(X, dtype=float))
        return np.vstack([fn(np.asarray(times, dtype=float)) for fn in fns])


class Failing(SksurvCox):
    """Raises in fit when the training outcome has fewer than ``min_events`` events (a failed refit)."""

    def __init__(self, ties: str = "efron", min_events: int = 0):
        super().__init__(ties)
        self.min_events = min_events

    def fit(self, X, y):
        if y["event"].sum() < self.min_events:
            raise RuntimeError(f"needs {self.min_events} events")
        return super().fit(X, y)


def simulate_cohort(n: int = 60, seed: int = 0, *, base_hazard: float = 0.05, censor_max: float = 24.0) -> Cohort:
    """Exponential event times with hazard base_hazard * exp(1.0 pce + 1.0 lmd + 0.02 (age - 60)) per month.

    Censoring is uniform on (1, censor_max); the defaults give about 65 % events and a median event
    time near 4 months at n = 60, close to the paper's cohort (36 events in 60).
    """
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "pce": rng.random(n) < 0.4,
            "lmd": rng.random(n) < 0.35,
            "age": rng.normal(60, 10, n).round(),
        }
    )
    lp = 1.0 * X["pce"] + 1.0 * X["lmd"] + 0.02 * (X["age"] - 60)
    t_event = rng.exponential(1 / (base_hazard * np.exp(lp.to_numpy())))
    t_cens = rng.uniform(1, censor_max, n)
    time = np.round(np.minimum(t_event, t_cens), 1) + 0.1
    return Cohort(X, Surv.from_arrays(t_event <= t_cens, time))


def _project_factory():
    try:
        from cnslrisk.model.pipeline import make_pipeline
    except ImportError:
        return None
    return partial(make_pipeline, "cox", binary=("pce", "lmd"), numeric=("age",))


@pytest.fixture(scope="session")
def cohort() -> Cohort:
    return simulate_cohort()


@pytest.fixture(scope="session")
def make_cohort():
    return simulate_cohort


@pytest.fixture(scope="session")
def cox_factory():
    return _project_factory() or SksurvCox


@pytest.fixture(scope="session")
def sksurv_cox():
    return SksurvCox


@pytest.fixture(scope="session")
def failing_factory():
    """``failing_factory(k)`` builds Cox models whose fit raises with fewer than k training events."""
    return lambda min_events: partial(Failing, min_events=min_events)
