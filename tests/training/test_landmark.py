"""The post-response (landmark) model: its cohort, its numbers against an independent Cox fit, its outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sksurv.linear_model import CoxPHSurvivalAnalysis

from cnslrisk.training.config import ConfigError, load_config
from cnslrisk.training.data import load_training_data
from cnslrisk.training.landmark import fit_landmark, landmark_data

FAST = {"validation.repeats": 1, "validation.bootstrap": 10, "pattern.repeats": 1, "n_jobs": 1}


@pytest.fixture(scope="module")
def fitted():
    config = load_config(overrides=FAST)
    data = load_training_data(config)
    model, section = fit_landmark(config, data)
    return config, data, model, section


def test_landmark_cohort_is_the_progression_free_with_a_known_response_on_residual_time():
    config = load_config(overrides=FAST)
    data = load_training_data(config)
    response = data.response.copy()
    response[:5] = None  # five patients without a recorded response
    data = type(data)(X=data.X, y=data.y, cause=data.cause, provenance=data.provenance, response=response)
    cohort = landmark_data(config, data)
    keep = (data.y["time"] > config.landmark.time) & np.array([r is not None for r in response])
    assert cohort.n == keep.sum()
    np.testing.assert_array_equal(cohort.y["time"], data.y["time"][keep] - config.landmark.time)
    np.testing.assert_array_equal(cohort.y["event"], data.y["event"][keep])
    assert list(cohort.X[config.landmark.response]) == list(response[keep])
    assert cohort.provenance["missing_response"] == int(((data.y["time"] > config.landmark.time)
                                                         & ~np.array([r is not None for r in response])).sum())


def test_post_response_survival_equals_an_independent_landmark_cox_fit(fitted):
    """S(h | T > L, x, r) = S_L(h - L | x, r), S_L from scikit-survival's Cox model with the same ridge penalty.

    scikit-survival penalises 0.5 * alpha * ||beta||^2 as ours does, and its baseline is Breslow's; both
    fits stop at Newton steps below 1e-9, so coefficients agree to about 1e-7 and survival to 1e-6.
    """
    config, data, model, _ = fitted
    L, name = config.landmark.time, config.landmark.response
    keep = (data.y["time"] > L) & np.array([r is not None for r in data.response])
    levels = model.levels
    X = data.X.loc[keep, ["pce", "lmd"]].to_numpy(dtype=float)
    dummies = np.column_stack([data.response[keep] == level for level in levels[1:]]).astype(float)
    Z = np.column_stack([X, dummies])
    y = data.y[keep].copy()
    y["time"] -= L
    reference = CoxPHSurvivalAnalysis(alpha=config.landmark.alpha, ties="efron", tol=1e-12, n_iter=200).fit(Z, y)
    np.testing.assert_allclose(model.pipeline[-1].coef_, reference.coef_, rtol=1e-6, atol=1e-7)

    patients = pd.DataFrame({"pce": [True, False, True, False], "lmd": [False, False, True, True],
                             name: [levels[0], levels[-1], levels[1], levels[0]]})
    horizons = (0.5, 3.0, 6.0, 12.0)
    out = model.predict_arrays(patients, horizons)
    Zp = np.column_stack([patients[["pce", "lmd"]].to_numpy(dtype=float),
                          np.column_stack([patients[name] == level for level in levels[1:]]).astype(float)])
    expected = np.vstack([fn(np.array(horizons[1:]) - L) for fn in reference.predict_survival_function(Zp)])
    got = np.column_stack([out[f"post_response_survival_{h:g}"] for h in horizons[1:]])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert np.isnan(out["post_response_survival_0.5"]).all()  # a horizon before the landmark has no prediction
    lower, upper = out["post_response_survival_6_lower"], out["post_response_survival_6_upper"]
    assert np.all((lower <= out["post_response_survival_6"]) & (out["post_response_survival_6"] <= upper))


def test_patients_without_a_usable_response_get_no_post_response_prediction(fitted):
    _, _, model, _ = fitted
    patients = pd.DataFrame({"pce": [True, True], "lmd": [False, False], model.response: [None, model.levels[0]]})
    out = model.predict_arrays(patients, (3.0, 6.0))
    assert np.isnan(out["post_response_survival_3"][0]) and out["post_response_likely_pattern"][0] is None
    assert np.isfinite(out["post_response_survival_3"][1]) and out["post_response_likely_pattern"][1] is not None
    frame = patients.assign(**{model.response: ["XX", None]})  # a level the landmark cohort did not have
    assert "'XX' was not seen among the patients progression-free" in model.applicability(frame)[0]
    assert model.applicability(frame)[1] == ""
    assert np.isnan(model.predict_arrays(frame, (3.0,))["post_response_survival_3"]).all()


def test_pattern_incidences_and_median_are_consistent(fitted):
    config, _, model, _ = fitted
    patients = pd.DataFrame({"pce": [True, False], "lmd": [False, True], model.response: model.levels[:2]})
    out = model.predict_arrays(patients, (3.0, 6.0, 12.0))
    cifs = np.column_stack([out[f"post_response_cif_{c}_12"] for c in model.causes])
    assert np.all(cifs >= 0) and np.all(cifs.sum(axis=1) <= 1 + 1e-12)
    assert list(out["post_response_likely_pattern"]) == [model.causes[k] for k in cifs.argmax(axis=1)]
    median = out["post_response_median_time"]
    assert np.all(np.isnan(median) | (median > config.landmark.time))


def test_card_section_states_the_landmark_cohort_and_its_uncertainty(fitted):
    config, data, model, section = fitted
    assert section["landmark_time"] == config.landmark.time
    assert section["n"] == int(((data.y["time"] > config.landmark.time)).sum())
    assert section["events"] == int(data.y["event"][data.y["time"] > config.landmark.time].sum())
    assert section["sample_size"]["events_per_parameter"] == pytest.approx(section["events"] / section["parameters"],
                                                                           abs=0.05)
    assert 0.5 <= section["validation"]["bootstrap"]["corrected"]["c_index"] <= 1
    assert "immortal-time" in section["caveat"]
    assert set(section["coefficients"]) == {"pce", "lmd", *(f"{model.response}_{lv}" for lv in model.levels[1:])}
    assert section["pattern_validation"]["uncertainty"]["events"]


def test_same_data_config_and_seed_give_identical_landmark_models(fitted):
    config, data, model, section = fitted
    again, section_again = fit_landmark(config, data)
    assert again.to_dict() == model.to_dict()
    assert json.dumps(section_again["validation"], sort_keys=True) == json.dumps(section["validation"], sort_keys=True)


def test_config_rejects_an_impossible_landmark(tmp_path):
    with pytest.raises(ConfigError, match=r"`landmark.time = 24`: must be after the time origin and before the last "
                                          r"horizon \(12\)"):
        load_config(overrides={"landmark.time": 24})
    with pytest.raises(ConfigError, match="`landmark.response = 'pce'`: pce is a covariate"):
        load_config(overrides={"landmark.response": "pce"})
    with pytest.raises(ConfigError, match=r"`landmark.features = \['bridging'\]`: bridging is not one of the "
                                          "configured covariates"):
        load_config(overrides={"landmark.features": ["bridging"]})


def test_too_few_events_after_the_landmark_is_a_clear_error():
    config = load_config(overrides={**FAST, "landmark.time": 11.0})
    data = load_training_data(config)
    with pytest.raises(ConfigError, match=r"landmark.time = 11: .* at least 10 are needed"):
        landmark_data(config, data)
