"""FeatureEncoder (coding, missing values, applicability, export) and the SurvivalPipeline built on it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from cnslrisk.model.estimators import CoxPH
from cnslrisk.model.features import FeatureEncoder
from cnslrisk.model.pipeline import make_pipeline, n_parameters
from cnslrisk.model.summary import summary


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pce": [True, False, True, False],
            "age": [50.0, 60.0, 70.0, 80.0],
            "bridging": ["systemic", "none", "combined", "systemic"],
            "site": ["b", "a", "c", "a"],
        }
    )


def test_column_order_reference_levels_and_values(frame):
    enc = FeatureEncoder(["pce"], ["bridging", "site"], ["age"]).fit(frame)
    # dictionary order for bridging (none, radiotherapy, systemic, combined; radiotherapy unseen), sorted for site
    assert enc.levels_ == {"bridging": ["none", "systemic", "combined"], "site": ["a", "b", "c"]}
    assert list(enc.get_feature_names_out()) == [
        "pce", "age", "bridging_systemic", "bridging_combined", "site_b", "site_c"]
    want = np.array([[1, 50, 1, 0, 1, 0], [0, 60, 0, 0, 0, 0], [1, 70, 0, 1, 0, 1], [0, 80, 1, 0, 0, 0]], float)
    out = enc.transform(frame)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, want)


def test_scaling_uses_training_mean_and_population_sd(frame):
    enc = FeatureEncoder(numeric=["age"], scale=True).fit(frame)
    np.testing.assert_allclose(enc.transform(frame)[:, 0], (frame.age - 65) / np.sqrt(125))


def test_fixed_categories_set_the_reference(frame):
    enc = FeatureEncoder(categorical=["site"], categories={"site": ["c", "a", "b"]}).fit(frame)
    assert list(enc.get_feature_names_out()) == ["site_a", "site_b"]
    with pytest.raises(ValueError, match=r"FeatureEncoder.fit: field site: 'c' is not one of the declared categories"):
        FeatureEncoder(categorical=["site"], categories={"site": ["a", "b"]}).fit(frame)


def test_missing_values_are_refused_by_default(frame):
    gappy = frame.assign(age=[50.0, np.nan, np.nan, 80.0])
    with pytest.raises(ValueError, match="FeatureEncoder.fit: field age: 2 row\\(s\\) have a missing value; the model"):
        FeatureEncoder(numeric=["age"]).fit(gappy)
    enc = FeatureEncoder(numeric=["age"]).fit(frame)
    with pytest.raises(ValueError, match="FeatureEncoder.transform: field age: 2 row\\(s\\) have a missing value"):
        enc.transform(gappy)


def test_declared_imputation_uses_median_and_most_frequent(frame):
    gappy = frame.assign(
        age=[50.0, np.nan, 70.0, 90.0],
        site=["a", "a", None, "b"],
        pce=pd.array([True, None, True, False], dtype="boolean"),
    )
    enc = FeatureEncoder(["pce"], ["site"], ["age"], impute="median").fit(gappy)
    assert enc.fill_ == {"site": "a", "pce": 1.0, "age": 70.0}
    out = enc.transform(gappy)
    np.testing.assert_array_equal(out[1, :2], [1.0, 70.0])
    assert out[2, 2] == 0.0  # site imputed as the reference 'a'
    notes = enc.applicability(gappy.assign(age=[70.0, np.nan, 70.0, 70.0]))
    assert notes[0] == ""
    assert "field pce: missing, imputed as 1.0" in notes[1] and "field age: missing, imputed as 70.0" in notes[1]


def test_unseen_category_and_out_of_range_values_are_flagged(frame):
    # the range is the interpolated 1st-99th percentile of 50, 60, 70, 80: 50 + 0.03 * 10 and 80 - 0.03 * 10
    enc = FeatureEncoder(["pce"], ["bridging"], ["age"]).fit(frame)
    new = pd.DataFrame({"pce": [True, False], "age": [95.0, 60.0], "bridging": ["radiotherapy", "none"]})
    np.testing.assert_array_equal(enc.transform(new)[0, 2:], [0.0, 0.0])
    assert list(enc.applicability(new)) == [
        "field bridging: 'radiotherapy' was not seen in training (scored as the reference 'none'); "
        "field age: 95 is outside the training range [50.3, 79.7] (central 98% of training)",
        "",
    ]


@pytest.mark.parametrize("impute", [None, "median"])
def test_large_batches_encode_each_row_as_alone(frame, impute):
    # above 256 values a categorical column is coded once per distinct value: the codes must not change
    enc = FeatureEncoder(["pce"], ["site"], ["age"], impute=impute).fit(frame)
    rng = np.random.default_rng(0)
    sites = np.array(["a", "b", "c", "zz", None, np.nan], dtype=object) if impute else np.array(["a", "b", "c", "zz"],
                                                                                                  dtype=object)
    big = pd.DataFrame({"pce": rng.random(600) < 0.5, "age": rng.uniform(40, 90, 600),
                        "site": sites[rng.integers(0, sites.size, 600)]})
    encoded, notes = enc.transform(big), enc.applicability(big)
    np.testing.assert_array_equal(enc._codes("site", big["site"]),
                                  [enc._codes("site", [v])[0] for v in big["site"]])
    for row in range(0, 600, 7):
        np.testing.assert_array_equal(encoded[row], enc.transform(big.iloc[[row]])[0])
        assert notes[row] == enc.applicability(big.iloc[[row]])[0]
    assert (encoded[:, 2:].sum(axis=1) == 0).any() and (encoded[:, 2:].sum(axis=1) == 1).any()


def test_to_dict_round_trip(frame):
    enc = FeatureEncoder(["pce"], ["bridging", "site"], ["age"], scale=True).fit(frame)
    loaded = FeatureEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    np.testing.assert_array_equal(loaded.transform(frame), enc.transform(frame))
    assert list(loaded.get_feature_names_out()) == list(enc.get_feature_names_out())
    with pytest.raises(ValueError, match="FeatureEncoder.from_dict: format None is not 'cnslrisk.feature-encoder/1'"):
        FeatureEncoder.from_dict({})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pd.DataFrame({"pce": ["yes", "no"]}), r"field pce: 2 row\(s\) are not one of \{true, false, 0, 1\}"),
        (pd.DataFrame({"other": [1, 2]}), "FeatureEncoder.fit: field pce: column is missing from the input"),
        (np.zeros((2, 1)), "FeatureEncoder.fit: X must be a pandas DataFrame with named columns or a mapping "
                           "of column names to values; got ndarray"),
    ],
)
def test_bad_inputs(data, message):
    with pytest.raises(ValueError, match=message):
        FeatureEncoder(["pce"]).fit(data)


# ---- the pipeline built on the encoder ---------------------------------------------------------------


def test_cox_pipeline_equals_cox_on_encoded_columns(cohort):
    df, y = cohort(150, seed=2)
    spec = {"binary": ["pce", "lmd"], "categorical": ["bridging"], "numeric": ["age", "ecog"]}
    pipe = make_pipeline("cox", **spec).fit(df, y)
    encoded = FeatureEncoder(**spec).fit(df).transform(df)
    direct = CoxPH().fit(encoded, y)
    np.testing.assert_allclose(pipe[-1].coef_, direct.coef_, rtol=1e-12)
    times = [3.0, 6.0, 12.0]
    np.testing.assert_allclose(pipe.predict_survival(df, times), direct.predict_survival(encoded, times), rtol=1e-12)
    lo, hi = pipe.predict_survival_interval(df, times, level=0.9)
    lo2, hi2 = direct.predict_survival_interval(encoded, times, level=0.9)
    np.testing.assert_allclose(lo, lo2, rtol=1e-12)
    np.testing.assert_allclose(hi, hi2, rtol=1e-12)
    # dictionary order of bridging: none (reference), radiotherapy, systemic, combined
    assert list(summary(pipe).index) == ["pce", "lmd", "age", "ecog", "bridging_radiotherapy", "bridging_systemic",
                                         "bridging_combined"]
    assert n_parameters(pipe) == 7 and n_parameters(spec, df) == 7
    assert n_parameters(make_pipeline("cox", **spec), df) == 7


def test_coxnet_pipeline_standardises_and_rsf_does_not(cohort):
    df, y = cohort(80, seed=5)
    coxnet = make_pipeline("coxnet", binary=["pce", "lmd"], numeric=["age"], n_alphas=8, inner_cv=3)
    rsf = make_pipeline("rsf", binary=["pce", "lmd"], numeric=["age"], n_estimators=5,
                        param_grid={"min_samples_leaf": [5]})
    assert coxnet[0].scale and not rsf[0].scale
    coxnet.fit(df, y)
    rsf.fit(df, y)
    for pipe in (coxnet, rsf):
        surv = pipe.predict_survival(df, [1.0, 6.0])
        assert surv.shape == (80, 2) and np.all(surv[:, 1] <= surv[:, 0])
    np.testing.assert_allclose(-np.log(coxnet.predict_survival(df, [6.0])), coxnet.predict_cumulative_hazard(df, [6.0]))
    lower, upper = rsf.predict_survival_interval(df, [6.0])  # the forest's infinitesimal-jackknife band
    surv = rsf.predict_survival(df, [6.0])
    assert np.all((lower <= surv) & (surv <= upper))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match=r"make_pipeline: kind 'svm' is not one of \{cox, coxnet, rsf\}"):
        make_pipeline("svm", binary=["pce"])
