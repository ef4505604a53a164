"""Tests for the cross-validation of the relapse-pattern model (training.pattern_validation)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model.features import FeatureEncoder
from cnslrisk.model.pattern import CauseSpecificCox
from cnslrisk.training.pattern_validation import aalen_johansen, validate_pattern_model, wolbers_c

EXAMPLE = "data/example_cohort.csv"


def _example() -> pd.DataFrame:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / EXAMPLE
    df = pd.read_csv(path, comment="#")
    return df.assign(pce=df["pce"].astype(bool), lmd=df["lmd"].astype(bool))


def _factory(alpha: float = 0.1):
    return lambda: Pipeline([
        ("encode", FeatureEncoder(("pce", "lmd"), ("best_response",), ())),
        ("model", CauseSpecificCox(alpha=alpha)),
    ])


def _random_competing(n: int, seed: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    time = rng.exponential(size=n)
    if ties:
        time = np.ceil(time * 4) / 4
    cause = rng.choice(np.array(["a", "b", "none"]), n, p=[0.4, 0.3, 0.3])
    return time, cause, rng.normal(size=n)


def test_aalen_johansen_matches_lifelines():
    """Reference: lifelines' AalenJohansenFitter on continuous times (no jitter needed)."""
    from lifelines import AalenJohansenFitter

    time, cause, _ = _random_competing(150, seed=1)
    grid = np.array([0.0, 0.05, 0.3, 0.9, 2.0])
    ours = aalen_johansen(time, cause, ["a", "b"], grid)
    codes = np.select([cause == "a", cause == "b"], [1, 2], 0)
    for k, code in enumerate((1, 2)):
        curve = AalenJohansenFitter(calculate_variance=False).fit(time, codes, event_of_interest=code)
        series = curve.cumulative_density_.iloc[:, 0]
        np.testing.assert_allclose(ours[k], [series[series.index <= t].iloc[-1] for t in grid], atol=1e-12)


def test_aalen_johansen_beyond_follow_up():
    time, cause = np.array([1.0, 2.0, 3.0]), np.array(["a", "none", "none"])
    out = aalen_johansen(time, cause, ["a"], [2.5, 3.0, 4.0])
    assert out[0, 0] == pytest.approx(1 / 3) and out[0, 1] == pytest.approx(1 / 3) and np.isnan(out[0, 2])
    ended_by_event = aalen_johansen(np.array([1.0, 2.0]), np.array(["none", "a"]), ["a"], [5.0])
    assert ended_by_event[0, 0] == 1.0


def _naive_wolbers(time, cause, marker, of, horizon, censored):
    num = den = 0.0
    for i in range(time.size):
        if cause[i] != of or time[i] > horizon:
            continue
        for j in range(time.size):
            if i == j:
                continue
            later = time[j] > time[i] or (time[j] == time[i] and cause[j] == censored)
            competing = cause[j] not in (of, censored) and time[j] <= time[i]
            if later or competing:
                den += 1
                num += 1.0 if marker[i] > marker[j] else 0.5 if marker[i] == marker[j] else 0.0
    return num / den


@pytest.mark.parametrize("horizon", [0.5, 1.0, np.inf])
def test_wolbers_c_matches_pairwise_loop(horizon):
    time, cause, marker = _random_competing(120, seed=2, ties=True)
    marker = np.round(marker, 1)  # ties in the marker too
    for of in ("a", "b"):
        assert wolbers_c(time, cause, marker, of, horizon, "none") == pytest.approx(
            _naive_wolbers(time, cause, marker, of, horizon, "none"), abs=1e-12)


def test_wolbers_c_single_cause_is_harrell():
    """With one cause and no horizon, Wolbers' C is Harrell's C (reference: scikit-survival)."""
    from sksurv.metrics import concordance_index_censored

    time, cause, marker = _random_competing(100, seed=3)
    cause = np.where(cause == "b", "none", cause)
    expected = concordance_index_censored(cause == "a", time, marker)[0]
    assert wolbers_c(time, cause, marker, "a", np.inf, "none") == pytest.approx(expected, abs=1e-12)


def test_wolbers_c_undefined():
    with pytest.raises(ValueError, match=r"no event of cause 'a' by horizon 0.5"):
        wolbers_c(np.array([1.0, 2.0]), np.array(["a", "none"]), np.zeros(2), "a", 0.5, "none")
    with pytest.raises(ValueError, match=r"no usable pair for cause 'a' by horizon 5"):
        wolbers_c(np.array([1.0, 2.0]), np.array(["none", "a"]), np.zeros(2), "a", 5.0, "none")


def test_example_cohort_report_is_json_safe_deterministic_and_states_uncertainty():
    df = _example()
    args = (df, df["pfs1_months"], df["pattern"])
    result = validate_pattern_model(_factory(), *args, horizons=[3, 6, 12])
    json.dumps(result, allow_nan=False)  # strict JSON: no NaN anywhere
    assert result == validate_pattern_model(_factory(), *args, horizons=[3, 6, 12])
    assert result == validate_pattern_model(_factory(), *args, horizons=[3, 6, 12], n_jobs=2)
    assert result["causes"] == ["distant", "local", "local_and_distant"]
    assert result["uncertainty"]["events"] == {"distant": 12, "local": 14, "local_and_distant": 10}
    assert result["uncertainty"]["causes_with_few_events"] == result["causes"]
    for cause, n in result["uncertainty"]["events"].items():
        assert f"Pattern '{cause}' rests on only {n} events" in result["uncertainty"]["statement"]
    overall = [r for r in result["calibration"] if r["group"] == "all"]
    assert len(overall) == 9 and all(r["observed_lower"] <= r["observed"] <= r["observed_upper"] for r in overall)
    assert {r["group"] for r in result["calibration"]} == {"all", 1, 2, 3}
    assert len(result["concordance"]) == 9 and all(0 <= r["mean"] <= 1 for r in result["concordance"])
    assert result["failed_folds"] == []


def test_undefined_values_are_reported_with_reasons():
    df = _example()
    early, late = float(df["pfs1_months"].min()) / 2, float(df["pfs1_months"].max()) + 100
    result = validate_pattern_model(_factory(), df, df["pfs1_months"], df["pattern"], horizons=[early, late],
                                    repeats=1, bootstrap=20)
    c_early = [r for r in result["concordance"] if r["horizon"] == early]
    assert all(r["mean"] is None and r["n_undefined"] == 1 and "no event of cause" in r["reason"] for r in c_early)
    cal_late = [r for r in result["calibration"] if r["horizon"] == late and r["group"] == "all"]
    last_censored = df.loc[df["pfs1_months"].idxmax(), "pattern"] == "none"
    assert last_censored and all(r["observed"] is None and r["reason"].startswith("not identified") for r in cal_late)


def test_separation_in_a_fold_gets_firths_penalty_and_failed_refits_are_listed():
    """Without a ridge penalty best_response separates a rare pattern in some training folds: Firth's penalty keeps
    those refits finite; a covariate that is constant in every fold still fails, and each failure is listed."""
    df = _example()
    result = validate_pattern_model(_factory(alpha=0.0), df, df["pfs1_months"], df["pattern"], horizons=[6],
                                    repeats=1, bootstrap=10)
    assert result["failed_folds"] == []
    constant = df.assign(lmd=False)
    failing = validate_pattern_model(_factory(alpha=0.0), constant, df["pfs1_months"], df["pattern"], horizons=[6],
                                     repeats=1, bootstrap=10)
    assert len(failing["failed_folds"]) == 5
    assert all("a covariate is constant among the patients at risk or collinear" in f["reason"]
               for f in failing["failed_folds"])
    json.dumps(failing, allow_nan=False)


def test_large_cohort_is_calibrated_in_the_large():
    """On 2,000 synthetic patients the out-of-fold mean CIF lies within 4 SE of the Aalen-Johansen CIF.

    SE is taken from the bootstrap 95 % interval as (upper - lower) / (2 * 1.96). The mean of the
    predictions of a correctly specified model estimates the marginal CIF with far smaller
    error than the single Aalen-Johansen estimate, so 4 SE of the latter bounds the difference.
    """
    df = generate_cohort(2000, seed=5)
    result = validate_pattern_model(_factory(alpha=0.0), df, df["pfs1_months"], df["pattern"],
                                    horizons=[3, 12], repeats=1, bootstrap=100)
    for r in (r for r in result["calibration"] if r["group"] == "all"):
        se = (r["observed_upper"] - r["observed_lower"]) / (2 * 1.96)
        assert abs(r["predicted"] - r["observed"]) < 4 * se, r
    assert result["uncertainty"]["causes_with_few_events"] == []


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"folds": 1}, r"parameter folds of validate_pattern_model must be an int >= 2; got 1"),
    ({"bootstrap": 0}, r"parameter bootstrap of validate_pattern_model must be an int >= 1; got 0"),
    ({"horizons": [-1]}, r"parameter horizons must be positive finite times; got \[-1\]"),
])
def test_parameter_errors(kwargs, match):
    df = _example()
    with pytest.raises(ValueError, match=match):
        validate_pattern_model(_factory(), df, df["pfs1_months"], df["pattern"], **{"horizons": [6], **kwargs})
