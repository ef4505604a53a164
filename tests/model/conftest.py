"""Data factories for the feature and estimator tests."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from sksurv.util import Surv

DATA = Path(__file__).resolve().parents[1] / "data"


class Dataset(NamedTuple):
    X: pd.DataFrame
    y: np.ndarray


@pytest.fixture(scope="session")
def reference():
    """Factory fixture: ``reference(name)`` reads a table from tests/data (``#`` lines give its source)."""
    return lambda name: pd.read_csv(DATA / name, comment="#", index_col=0)


@pytest.fixture(scope="session")
def rossi() -> Dataset:
    """lifelines' Rossi recidivism data (432 rows, 114 events, heavily tied weekly times)."""
    from lifelines.datasets import load_rossi

    df = load_rossi()
    return Dataset(df.drop(columns=["week", "arrest"]).astype(float), Surv.from_arrays(df.arrest == 1, df.week))


@pytest.fixture(scope="session")
def veterans() -> Dataset:
    """scikit-survival's Veterans' lung cancer data with categories as plain labels."""
    from sksurv.datasets import load_veterans_lung_cancer

    X, y = load_veterans_lung_cancer()
    return Dataset(X.astype({c: object for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)}), y)


@pytest.fixture(scope="session")
def gbsg2() -> Dataset:
    """scikit-survival's GBSG2 breast-cancer data, one-hot encoded (686 rows; first and last times censored)."""
    from sksurv.column import encode_categorical
    from sksurv.datasets import load_gbsg2

    X, y = load_gbsg2()
    return Dataset(encode_categorical(X).astype(float), y)


def simulate_ph(n: int, seed: int, beta=(0.7, -0.5), base_rate: float = 0.1, censor_rate: float = 0.05) -> Dataset:
    """Exponential proportional-hazards data: x1 ~ Bernoulli(0.4), x2 ~ N(0, 1), independent exponential censoring."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.binomial(1, 0.4, n), rng.normal(size=n)]).astype(float)
    rate = base_rate * np.exp(X @ np.asarray(beta))
    t_event = rng.exponential(1 / rate)
    t_censor = rng.exponential(1 / censor_rate, n)
    y = Surv.from_arrays(t_event <= t_censor, np.minimum(t_event, t_censor))
    return Dataset(pd.DataFrame(X, columns=["x1", "x2"]), y)


@pytest.fixture
def make_ph():
    """Factory fixture: ``make_ph(n, seed)`` returns simulated exponential PH data."""
    return simulate_ph


def make_cohort_frame(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A checked-cohort-like frame (dictionary columns and dtypes) with a PH outcome driven by pce and lmd."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "age": rng.normal(60, 12, n).clip(18, 90).round(),
            "ecog": rng.integers(0, 3, n).astype("int64"),
            "pce": rng.random(n) < 0.4,
            "lmd": rng.random(n) < 0.3,
            "bridging": rng.choice(["systemic", "none", "radiotherapy", "combined"], n).astype(object),
        }
    )
    rate = 0.15 * np.exp(1.0 * df.pce + 1.0 * df.lmd)
    t = rng.exponential(1 / rate)
    c = rng.uniform(3, 24, n)
    return df, Surv.from_arrays(t <= c, np.minimum(t, c))


@pytest.fixture
def cohort():
    """Factory fixture: ``cohort(n, seed)`` returns (frame, y) shaped like a checked cohort."""
    return make_cohort_frame
