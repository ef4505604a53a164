import math

import numpy as np
import pytest
from lifelines import CoxPHFitter

from cnslrisk.training.sample_size import (
    anticipated_r2_cs,
    assess_sample_size,
    max_r2_cs,
    riley_sample_size,
    shrinkage_sample_size,
)


def _riley(p, r2, rate, meanfup=2.07, timepoint=2.0, n=10_000):
    """pmsampsize's convention: an arbitrary n = 10000 with ceiling(rate * meanfup * n) events."""
    return riley_sample_size(
        n=n, events=math.ceil(rate * meanfup * n), parameters=p, mean_followup=meanfup, timepoint=timepoint, r2_cs=r2
    )


# Reference values from the test suite of the R package pmsampsize (tests/testthat/test_surv.R,
# https://rdrr.io/cran/pmsampsize/src/tests/testthat/test_surv.R): pmsampsize(type = "s", rsquared,
# parameters, rate, timepoint = 2, meanfup = 2.07) -> sample sizes of criteria 1 and 2 and their EPP.
@pytest.mark.parametrize(
    ("p", "r2", "rate", "n1", "n2", "epp1", "epp2"),
    [
        (25, 0.051, 0.065, 4286, 866, 23.07, 4.66),
        (25, 0.065, 0.065, 3335, 859, 17.95, 4.62),
        (50, 0.051, 0.065, 8572, 1731, 23.07, 4.66),
        (25, 0.051, 0.1, 4286, 731, 35.49, 6.05),
    ],
)
def test_matches_pmsampsize_reference(p, r2, rate, n1, n2, epp1, epp2):
    res = _riley(p, r2, rate)
    assert res.criteria.loc["shrinkage", "n"] == n1
    assert res.criteria.loc["r2_optimism", "n"] == n2
    # pmsampsize's EPP is n_k * rate * meanfup / p (E/n = 0.13455 for rate 0.065) while the events are
    # n_k * E/n with its ceiling'd E/n = 0.1346: relative difference 4e-4, i.e. < 0.01 at EPP <= 36, plus
    # pmsampsize's rounding to 2 decimals (0.005)
    assert res.criteria.loc["shrinkage", "events"] / p == pytest.approx(epp1, abs=0.015)
    assert res.criteria.loc["r2_optimism", "events"] / p == pytest.approx(epp2, abs=0.015)


def test_worked_example_by_hand():
    # Riley et al. BMJ 2020 worked example (recurrent VTE): R2_CS 0.051, 30 parameters, rate 0.065 per year,
    # mean follow-up 2.07 years, risk at 2 years.
    res = _riley(30, 0.051, 0.065, n=20_000)  # 2691 events: E/n = 0.065 * 2.07 = 0.13455 exactly
    # (i)  n1 = 30 / ((0.9 - 1) ln(1 - 0.051 / 0.9)) = 30 / (-0.1 * -0.0583371) = 5142.5 -> 5143
    assert res.criteria.loc["shrinkage", "n"] == 5143
    # (ii) ln 0.13455 = -2.005820; max R2 = 1 - exp(2 * 0.13455 * (-3.005820)) = 1 - exp(-0.808866)
    #      = 1 - 0.445363 = 0.554637
    assert res.max_r2_cs == pytest.approx(0.554637, abs=1e-6)
    #      S = 0.051 / (0.051 + 0.05 * 0.554637) = 0.647768;
    #      n2 = 30 / (-0.352232 * ln(1 - 0.051 / 0.647768)) = 30 / (0.352232 * 0.082004) = 1038.6 -> 1039
    assert res.criteria.loc["r2_optimism", "shrinkage"] == pytest.approx(0.647768, abs=1e-6)
    assert res.criteria.loc["r2_optimism", "n"] == 1039
    # (iii) F(2) = 1 - exp(-0.13) = 0.12190; the lower side binds: d <= 0.065 + ln(0.87810 + 0.05) / 2 = 0.027690,
    #      n3 = 1.96^2 * 0.065 / (2.07 * 0.027690^2) = 157.3 -> 158
    assert res.criteria.loc["overall_risk", "n"] == 158
    assert res.minimum == 5143 and res.adequate
    # pmsampsize reports for n = 5143 (692 events) the interval (0.113, 0.13) around 0.122
    at = riley_sample_size(n=5143, events=692, parameters=30, mean_followup=2.07, timepoint=2.0, r2_cs=0.051)
    assert round(at.risk, 3) == 0.122
    assert tuple(round(v, 3) for v in at.risk_interval) == (0.113, 0.130)


def test_criteria_satisfy_their_equations_when_plugged_back():
    res = _riley(12, 0.1, 0.08, meanfup=3.0, timepoint=1.5)
    for crit in ("shrinkage", "r2_optimism"):
        s, n = res.criteria.loc[crit, "shrinkage"], res.criteria.loc[crit, "n"]
        exact = shrinkage_sample_size(12, 0.1, s)
        # van Houwelingen's expected shrinkage S = 1 + p / (n ln(1 - R2_app)) with R2_app = R2_adj / S
        assert 1 + 12 / (exact * math.log(1 - 0.1 / s)) == pytest.approx(s, abs=1e-12)
        assert n == math.ceil(exact)
    # criterion (iii): the margin is met at n3 and not at n3 - 1 (both sides of the interval)
    n3 = res.criteria.loc["overall_risk", "n"]
    rate = res.events / (res.n * 3.0)

    def margin(n):
        d = 1.959963984540054 * math.sqrt(rate / (n * 3.0))
        f = 1 - math.exp(-rate * 1.5)
        return max(f - (1 - math.exp(-(rate - d) * 1.5)), (1 - math.exp(-(rate + d) * 1.5)) - f)

    assert margin(n3) <= 0.05 < margin(n3 - 1)


def test_paper_sized_cohort_is_inadequate_with_a_plain_warning():
    res = riley_sample_size(n=60, events=36, parameters=8, mean_followup=9.0, timepoint=6.0, r2_cs=0.2)
    assert res.events_per_parameter == 4.5
    assert not res.adequate and res.minimum > 60
    assert res.warning.startswith("the cohort is too small for a reliable prediction model: 60 patients with 36")
    assert f"at least {res.minimum} patients" in res.warning
    card = res.to_dict()
    assert card["riley_minimum_n"] == res.minimum and card["adequate"] is False and card["events_per_parameter"] == 4.5
    big = riley_sample_size(
        n=res.minimum, events=round(res.minimum * 0.6), parameters=8, mean_followup=9.0, timepoint=6.0, r2_cs=0.2
    )
    assert big.adequate and big.warning == ""


def test_anticipated_r2_from_likelihood_ratio():
    # LR = 20 on n = 60 with p = 4: apparent R2 = 1 - exp(-1/3) = 0.283469, S_VH = 1 - 4/20 = 0.8
    assert anticipated_r2_cs(20.0, 60, 4) == pytest.approx(0.8 * (1 - math.exp(-1 / 3)))
    assert anticipated_r2_cs(3.0, 60, 4) is None
    res = riley_sample_size(n=60, events=36, parameters=4, mean_followup=9.0, timepoint=6.0, lr_statistic=20.0)
    assert res.r2_cs == pytest.approx(0.226775, abs=1e-6) and res.r2_source.startswith("likelihood ratio")
    fallback = riley_sample_size(n=60, events=36, parameters=4, mean_followup=9.0, timepoint=6.0, lr_statistic=3.0)
    assert fallback.r2_cs == pytest.approx(0.15 * max_r2_cs(0.6)) and fallback.r2_source.startswith("default")


def test_assess_sample_size_from_a_fitted_cox_model(cohort):
    y = cohort.y
    df = cohort.X.astype(float).assign(time=y["time"], event=y["event"])
    fit = CoxPHFitter().fit(df, "time", "event")
    lp = df[list(cohort.X.columns)].to_numpy() @ fit.params_.to_numpy()
    res = assess_sample_size(y, parameters=3, timepoint=6.0, linear_predictor=lp)
    lr = fit.log_likelihood_ratio_test().test_statistic
    assert res.r2_cs == pytest.approx((1 - 3 / lr) * (1 - np.exp(-lr / 60)), rel=1e-6)
    assert res.n == 60 and res.events == int(y["event"].sum())
    assert assess_sample_size(y, parameters=3, timepoint=6.0, r2_cs=0.1).r2_source == "user"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0}, r"parameter n of riley_sample_size must be an int > 0; got 0"),
        ({"parameters": 2.5}, r"parameter parameters of riley_sample_size must be an int > 0; got 2.5"),
        ({"mean_followup": -1.0}, r"parameter mean_followup of riley_sample_size must be a number > 0; got -1.0"),
        ({"events": 70}, r"parameter events of riley_sample_size must be <= n \(60\); got 70"),
        ({"r2_cs": 0.9}, r"parameter r2_cs of riley_sample_size must be in \(0, 0\.\d+\), the maximum"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"n": 60, "events": 36, "parameters": 4, "mean_followup": 9.0, "timepoint": 6.0, "r2_cs": 0.1}
    with pytest.raises(ValueError, match=message):
        riley_sample_size(**{**args, **kwargs})
