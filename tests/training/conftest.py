"""Fixtures for the validation tests: a simulated cohort and factories of the project's own Cox pipeline.

``cox_factory`` builds ``make_pipeline("cox")``, the pipeline that training uses; a failure to import or
build it fails these tests rather than switching to another implementation.
"""

from __future__ import annotations

from collections import namedtuple
from functools import partial

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sksurv.util import Surv

from cnslrisk.model.pipeline import make_pipeline

Cohort = namedtuple("Cohort", ["X", "y"])
project_cox = partial(make_pipeline, "cox", binary=("pce", "lmd"), numeric=("age",))


class Failing(BaseEstimator):
    """The project's Cox pipeline, except that fit raises with fewer than ``min_events`` training events."""

    def __init__(self, min_events: int = 0):
        self.min_events = min_events

    def fit(self, X, y):
        if y["event"].sum() < self.min_events:
            raise RuntimeError(f"needs {self.min_events} events")
        self.pipeline_ = project_cox().fit(X, y)
        return self

    def predict(self, X):
        return self.pipeline_.predict(X)

    def predict_survival(self, X, times):
        return self.pipeline_.predict_survival(X, times)


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


@pytest.fixture(scope="session")
def cohort() -> Cohort:
    return simulate_cohort()


@pytest.fixture(scope="session")
def make_cohort():
    return simulate_cohort


@pytest.fixture(scope="session")
def cox_factory():
    return project_cox


@pytest.fixture(scope="session")
def failing_factory():
    """``failing_factory(k)`` builds Cox models whose fit raises with fewer than k training events."""
    return lambda min_events: partial(Failing, min_events=min_events)
