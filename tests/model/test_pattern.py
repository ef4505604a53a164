"""Tests for the cause-specific Cox relapse-pattern model (CauseSpecificCox)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

import cnslrisk.model.pattern as pattern_module
from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model.features import FeatureEncoder
from cnslrisk.model.pattern import CauseSpecificCox, cause_text, competing_outcome

TIMES = np.array([0.01, 0.5, 1.0, 2.0, 3.5, 5.0, 8.0, 100.0])


def _competing(n: int, seed: int, *, rates=(0.10, 0.05), betas=((0.7, 0.3), (-0.5, 0.0)), censor=0.05, ties=False):
    """Two exponential causes with hazards rate_k * exp(x @ beta_k), exponential censoring; no ties unless asked."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.binomial(1, 0.5, n), rng.normal(size=n)]).astype(float)
    hazards = np.column_stack([r * np.exp(X @ np.asarray(b)) for r, b in zip(rates, betas, strict=True)])
    t_cause = rng.exponential(1 / hazards)
    t_censor = rng.exponential(1 / censor, n)
    first = t_cause.argmin(axis=1)
    t_event = t_cause.min(axis=1)
    time = np.minimum(t_event, t_censor)
    cause = np.where(t_event <= t_censor, np.asarray(["a", "b"])[first], "none")
    if ties:
        time = np.ceil(time * 2) / 2
    return pd.DataFrame(X, columns=["x1", "x2"]), competing_outcome(cause, time)


def _naive_cif(X: np.ndarray, y: np.ndarray, betas: list[np.ndarray], causes: list[str], times: np.ndarray,
               ties: str = "breslow"):
    """Per-row Python loop: baseline increments d/sum_{risk set} exp(x b) (Breslow) or, with Efron's ties,
    sum_l 1/(sum_{risk set} - l/d sum_{tied}), then the product-limit recursion.

    As documented for the model, an all-cause jump above 1 is capped at 1 and shared by hazard.
    """
    event_times = sorted({float(t) for t, c in zip(y["time"], y["cause"], strict=True) if c in causes})
    out = np.zeros((X.shape[0], len(causes), times.size))
    increments = []
    for k, c in enumerate(causes):
        inc = {}
        for s in event_times:
            tied = [j for j in range(X.shape[0]) if y["time"][j] == s and y["cause"][j] == c]
            d = len(tied)
            at_risk = sum(float(np.exp(X[j] @ betas[k])) for j in range(X.shape[0]) if y["time"][j] >= s)
            share = sum(float(np.exp(X[j] @ betas[k])) for j in tied)
            inc[s] = sum(1 / (at_risk - (rank / d) * share) for rank in range(d)) if ties == "efron" else d / at_risk
        increments.append(inc)
    for i in range(X.shape[0]):
        r = [float(np.exp(X[i] @ b)) for b in betas]
        for j, t in enumerate(times):
            surv, cif = 1.0, [0.0] * len(causes)
            for s in event_times:
                if s > t:
                    break
                jumps = [r[k] * increments[k][s] for k in range(len(causes))]
                if sum(jumps) > 1:
                    jumps = [j / sum(jumps) for j in jumps]
                for k in range(len(causes)):
                    cif[k] += surv * jumps[k]
                surv *= 1.0 - sum(jumps)
            out[i, :, j] = cif
    return out


def test_matches_sksurv_coefficients_and_naive_product_limit():
    """CIF equals an independent computation: scikit-survival's Cox coefficients fed to a per-row Python loop.

    Each cause-specific model is refitted with scikit-survival's CoxPHSurvivalAnalysis (event =
    that cause, all else censored; no tied times, so Efron and Breslow agree), and the test's
    own loop builds the Breslow increments and the product-limit recursion from those
    coefficients. Nothing of the code under test enters the reference. Both fits stop at
    Newton steps below 1e-9 (sksurv: tol=1e-12 on the likelihood), so coefficients agree to
    ~1e-9 and the CIF, a smooth function of them with derivatives of order 1, to ~1e-8.
    (lifelines' CoxPHFitter stops on a relative log-likelihood change of 1e-9 and is ~6e-7 off
    here, so it is not used as the reference.)
    """
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    X, y = _competing(80, seed=3)
    model = CauseSpecificCox().fit(X, y)
    betas = []
    for c in ("a", "b"):
        reference = CoxPHSurvivalAnalysis(ties="breslow", tol=1e-12, n_iter=200)
        betas.append(reference.fit(X, Surv.from_arrays(y["cause"] == c, y["time"])).coef_)
    for k in range(2):
        np.testing.assert_allclose(model.models_[k].coef_, betas[k], atol=1e-9)
    expected = _naive_cif(X.to_numpy(), y, betas, ["a", "b"], TIMES)
    np.testing.assert_allclose(model.predict_cumulative_incidence(X, TIMES), expected, atol=1e-8)


def test_tied_times_match_naive_loop():
    """With tied times the combination equals the loop applied to the fitted coefficients, each tie method with its
    own baseline (Efron's tie-adjusted increments, as riskRegression takes them; Breslow's d / S0)."""
    X, y = _competing(60, seed=5, ties=True)
    assert np.unique(y["time"]).size < y.size  # the data really has ties
    model = CauseSpecificCox().fit(X, y)
    expected = _naive_cif(X.to_numpy(), y, [m.coef_ for m in model.models_], ["a", "b"], TIMES, ties="efron")
    np.testing.assert_allclose(model.predict_cumulative_incidence(X, TIMES), expected, rtol=1e-10, atol=1e-13)
    breslow = CauseSpecificCox(ties="breslow").fit(X, y)
    expected = _naive_cif(X.to_numpy(), y, [m.coef_ for m in breslow.models_], ["a", "b"], TIMES)
    np.testing.assert_allclose(breslow.predict_cumulative_incidence(X, TIMES), expected, rtol=1e-10, atol=1e-13)


def test_no_covariate_effect_equals_lifelines_aalen_johansen():
    """With every coefficient shrunk to ~0 (ridge alpha = 1e12) the model is the Aalen-Johansen estimator.

    With beta = 0 the Breslow increments are d_k(s) / n(s), the Nelson-Aalen increments, and the
    product-limit combination is exactly Aalen-Johansen; the reference is lifelines'
    AalenJohansenFitter (continuous times, so it does not jitter ties). beta ~ |score| / alpha
    < 1e-9 moves the CIF by less than 1e-8.
    """
    from lifelines import AalenJohansenFitter

    X, y = _competing(70, seed=8)
    model = CauseSpecificCox(alpha=1e12).fit(X, y)
    cif = model.predict_cumulative_incidence(X.iloc[:1], TIMES)[0]
    codes = np.select([y["cause"] == "a", y["cause"] == "b"], [1, 2], 0)
    for k, code in enumerate((1, 2)):
        aj = AalenJohansenFitter(calculate_variance=False).fit(y["time"], codes, event_of_interest=code)
        curve = aj.cumulative_density_.iloc[:, 0]
        expected = [curve[curve.index <= t].iloc[-1] for t in TIMES]
        np.testing.assert_allclose(cif[k], expected, atol=1e-8)


def test_incidences_and_survival_sum_to_one_and_increase():
    X, y = _competing(200, seed=1, ties=True)
    model = CauseSpecificCox().fit(X, y)
    grid = np.linspace(0, y["time"].max() + 1, 157)
    rows = pd.concat([X, pd.DataFrame({"x1": [1.0], "x2": [9.0]})])  # an extreme row whose jumps exceed 1
    cif = model.predict_cumulative_incidence(rows, grid)
    surv = model.predict_survival(rows, grid)
    np.testing.assert_allclose(cif.sum(axis=1) + surv, 1.0, atol=1e-12)
    assert (np.diff(cif, axis=2) >= -1e-15).all()
    assert (np.diff(surv, axis=1) <= 1e-15).all()
    assert ((cif >= 0) & (cif <= 1)).all()
    assert surv[-1, -1] == 0.0  # the capped jump ends the curve at 0, not below


def test_rows_do_not_depend_on_batch_or_chunk(monkeypatch):
    X, y = _competing(120, seed=2)
    model = CauseSpecificCox().fit(X, y)
    # extreme rows (all-cause jumps above 1, capped) among ordinary ones: a chunk holding one takes the capping
    # path for all its rows, a chunk without skips it, and neither may change an ordinary row's numbers
    extreme = pd.DataFrame({"x1": [1.0, 2.0], "x2": [9.0, 8.0]})
    X = pd.concat([X.iloc[:50], extreme, X.iloc[50:], X + 0.25], ignore_index=True)
    assert len(X) >= pattern_module._FEW_ROWS  # the whole batch takes the row-chunked recursion, one row the other
    whole = model.predict_cumulative_incidence(X, TIMES)
    single = np.concatenate([model.predict_cumulative_incidence(X.iloc[[i]], TIMES) for i in range(len(X))])
    monkeypatch.setattr(pattern_module, "_CHUNK_ROWS", 7)  # 242 rows: 34 chunks of 7 and one of 4
    chunked = model.predict_cumulative_incidence(X, TIMES)
    assert np.array_equal(whole, single) and np.array_equal(whole, chunked)
    assert (model.predict_survival(X.iloc[50:52], [y["time"].max()]) == 0.0).all()  # they were capped


def test_large_exponential_cohort_matches_closed_form():
    """Predicted CIF at x in {0, 1} (x2 = 0) against the closed form of exponential competing risks.

    With cause-specific hazards l_k(x), F_k(t|x) = l_k / l (1 - exp(-l t)), l = sum_k l_k.
    Standard error bound (derivation): the IPCW estimator sum_i I(T_i <= t, cause k) / (n G(T_i))
    in the n_x patients with covariate x is unbiased with variance
    (int_0^t dF_k / G - F_k^2) / n_x <= (F_k / G(t) - F_k^2) / n_x, G the censoring survival
    (here exp(-0.05 t)). Aalen-Johansen is at least as efficient as IPCW, and the correctly
    specified Cox model (shared baseline) at least as efficient as stratum-wise Aalen-Johansen,
    so this bound holds for the model's estimate too; the test allows 4 bounds (seed fixed).
    """
    rates, betas, censor = (0.10, 0.05), ((0.7, 0.3), (-0.5, 0.0)), 0.05
    X, y = _competing(20_000, seed=2026, rates=rates, betas=betas, censor=censor)
    model = CauseSpecificCox().fit(X, y)
    t = np.array([2.0, 5.0, 10.0])
    for x1 in (0.0, 1.0):
        lam = np.array([r * np.exp(b[0] * x1) for r, b in zip(rates, betas, strict=True)])
        truth = lam[:, None] / lam.sum() * -np.expm1(-lam.sum() * t)[None, :]
        predicted = model.predict_cumulative_incidence(pd.DataFrame({"x1": [x1], "x2": [0.0]}), t)[0]
        n_x = int(np.sum(X["x1"] == x1))
        bound = np.sqrt((truth / np.exp(-censor * t) - truth**2) / n_x)
        assert (np.abs(predicted - truth) < 4 * bound).all(), (predicted, truth, bound)


def test_generator_cr_has_more_distant_and_less_local_than_refractory():
    """On 4,000 synthetic patients, mean predicted 12-month distant CIF is higher after CR than after PD.

    The generator makes distant relapse the likely pattern after CR and local after refractory
    disease. Tolerance: by the IPCW bound of the test above, each group mean has SE <=
    sqrt(F / G - F^2 / n_group) <~ 0.02 here (G >~ 0.7 at 12 months, n_group >~ 700), so a
    difference must exceed 3 * sqrt(2) * 0.02 ~ 0.085 to count; the generator's true
    difference (about 0.1 distant, 0.45 local) clears it.
    """
    df = generate_cohort(4000, seed=11)
    encoder = FeatureEncoder(("pce", "lmd"), ("best_response",), ()).set_output(transform="pandas")
    X = encoder.fit_transform(df)
    model = CauseSpecificCox().fit(X, competing_outcome(df["pattern"], df["pfs1_months"]))
    cif = model.predict_cumulative_incidence(X, [12.0])[:, :, 0]
    by = {r: cif[(df["best_response"] == r).to_numpy()].mean(axis=0) for r in ("CR", "PD")}
    distant, local = (list(model.causes_).index(c) for c in ("distant", "local"))
    assert by["CR"][distant] - by["PD"][distant] > 0.085
    assert by["PD"][local] - by["CR"][local] > 0.085
    likely = model.likely_pattern(X, 12.0)
    assert (likely[(df["best_response"] == "CR").to_numpy()] == "distant").mean() > 0.5
    assert (likely[(df["best_response"] == "PD").to_numpy()] == "local").mean() > 0.5


def test_numeric_causes_and_json_round_trip():
    X, y = _competing(60, seed=4)
    codes = np.select([y["cause"] == "a", y["cause"] == "b"], [1, 2], 0)
    y_num = competing_outcome(codes.astype(float), y["time"])
    assert set(y_num["cause"]) == {"0", "1", "2"}
    model = CauseSpecificCox(censored=0).fit(X, y_num)
    assert list(model.causes_) == ["1", "2"]
    reference = CauseSpecificCox().fit(X, y)
    np.testing.assert_array_equal(model.predict_cumulative_incidence(X, TIMES),
                                  reference.predict_cumulative_incidence(X, TIMES))
    restored = CauseSpecificCox.from_dict(json.loads(json.dumps(model.to_dict())))
    assert np.array_equal(restored.predict_cumulative_incidence(X, TIMES), model.predict_cumulative_incidence(X, TIMES))
    assert list(restored.causes_) == ["1", "2"] and restored.event_counts_ == model.event_counts_


def test_likely_pattern_ties_and_undefined():
    X, y = _competing(60, seed=4)
    model = CauseSpecificCox(causes=["b", "a"]).fit(X, y)
    assert list(model.causes_) == ["b", "a"]
    assert list(model.pattern_from_incidence(np.array([[0.2, 0.2], [0.1, 0.3], [0.0, 0.0]]))) == ["b", "a", None]
    before_first = model.likely_pattern(X, y["time"].min() / 2)
    assert all(v is None for v in before_first)
    cif = model.predict_cumulative_incidence(X, [5.0])[:, :, 0]
    assert list(model.likely_pattern(X, 5.0)) == list(np.asarray(["b", "a"])[cif.argmax(axis=1)])


def test_pipeline_with_encoder_and_clone():
    df = generate_cohort(300, seed=3)
    pipe = Pipeline([("encode", FeatureEncoder(("pce", "lmd"), (), ())), ("model", CauseSpecificCox(alpha=0.01))])
    y = competing_outcome(df["pattern"], df["pfs1_months"])
    pipe.fit(df, y)
    cif = pipe[-1].predict_cumulative_incidence(pipe[:-1].transform(df), [6.0])
    assert cif.shape == (300, 3, 1)
    assert clone(pipe).get_params()["model__alpha"] == 0.01


@pytest.mark.parametrize(
    ("cause", "kwargs", "match"),
    [
        (["a"] * 5 + ["b"] + ["none"] * 4, {}, r"cause 'b': 1 event\(s\), fewer than the 2"),
        (["a"] * 5 + ["b"] * 2 + ["none"] * 3, {"causes": ["a", "c"]}, r"field cause: 'b' is neither one of"),
        (["a"] * 5 + ["b"] * 2 + ["none"] * 3, {"causes": ["a", "b", "c"]}, r"cause 'c': 0 event\(s\)"),
        (["a"] * 5 + ["b"] * 2 + ["none"] * 3, {"causes": ["a", "none"]}, r"causes: 'none' is the censored value"),
    ],
)
def test_fit_refuses(cause, kwargs, match):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(10, 1))
    y = competing_outcome(cause, rng.exponential(size=10))
    with pytest.raises(ValueError, match=match):
        CauseSpecificCox(**kwargs).fit(X, y)


def test_fit_refuses_bad_outcome_and_separation():
    X = np.arange(10.0)[:, None]
    with pytest.raises(ValueError, match=r"y must be a structured array with fields \('cause', 'time'\)"):
        CauseSpecificCox().fit(X, np.arange(10.0))
    with pytest.raises(ValueError, match=r"field time: every value must be finite and >= 0"):
        CauseSpecificCox().fit(X, competing_outcome(["a"] * 10, [-1.0] + [1.0] * 9))
    with pytest.raises(ValueError, match=r"field cause: 1 row\(s\) have a missing value"):
        cause_text(["a", None])
    # x is constant in every risk set of cause b: its likelihood is flat, which no penalty for separation mends
    y = competing_outcome(["none"] * 6 + ["a"] * 2 + ["b"] * 2, [9, 8, 7, 6, 5, 4, 1, 2, 3, 3.5])
    with pytest.raises(ValueError, match=r"cause 'b': FirthCoxPH fit: the information matrix is singular, which no "
                                         r"penalty for separation mends: a covariate is constant among the patients"):
        CauseSpecificCox().fit(np.r_[np.zeros(6), 1, 1, 0, 0][:, None], y)


def test_separation_gets_firths_penalty_and_says_why():
    # x separates cause a (its events only at the highest x of their risk sets): the ordinary estimate is infinite
    y = competing_outcome(["none"] * 6 + ["a"] * 2 + ["b"] * 2, [9, 8, 7, 6, 5, 4, 1, 2, 3, 3.5])
    X = pd.DataFrame({"x": [0, 1, 0, 1, 0, 1, 1, 1, 0, 1.0]})
    model = CauseSpecificCox().fit(X, y)
    penalties = model.penalties()
    assert penalties["a"]["penalty"] == "firth" and penalties["b"]["penalty"] == "none"
    assert penalties["a"]["reason"].startswith("monotone partial likelihood (separation) along +x: ")
    assert np.isfinite(model.models_[0].coef_).all() and model.models_[0].coef_[0] > 0
    ridge = CauseSpecificCox(alpha=0.5).fit(X, y).penalties()
    assert ridge["a"] == {"penalty": "ridge", "alpha": 0.5, "reason": "ridge penalty asked for in the config"}
    again = CauseSpecificCox.from_dict(json.loads(json.dumps(model.to_dict())))
    assert again.penalties() == penalties
    np.testing.assert_array_equal(again.predict_cumulative_incidence(X, TIMES),
                                  model.predict_cumulative_incidence(X, TIMES))
