"""Calibration, reproducibility and contract tests of the synthetic cohort generator.

Statistical checks run on one seeded sample of N = 40,000 patients (seed 20261, independent of the
solver's own sample, seed 2026) and allow 4 standard errors: a calibrated generator fails one such
check with probability about 6e-5, a miscalibrated one by more than ~5 SE fails it almost surely.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from cnslrisk.data import _synthetic_calibration as cal
from cnslrisk.data.synthetic import (
    generate_cohort,
    iter_cohort,
    load_parameters,
    parameters_sha256,
    solve_parameters,
    write_synthetic_cohort,
)
from cnslrisk.model import check_cohort, read_cohort

N, SEED, K = 40_000, 20261, 4.0
SOLVER_N = load_parameters()["method"]["n"]


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return generate_cohort(N, SEED)


def _greenwood(time: np.ndarray, event: np.ndarray, at: float) -> tuple[float, float]:
    """Kaplan-Meier S(at) and its Greenwood standard error, S * sqrt(sum d / (r (r - d))) over times <= at."""
    times, inverse = np.unique(time, return_inverse=True)
    d = np.bincount(inverse, weights=event.astype(float))
    r = time.size - np.concatenate([[0], np.cumsum(np.bincount(inverse))[:-1]])
    keep = times <= at
    s = float(np.prod(1 - d[keep] / r[keep]))
    return s, s * math.sqrt(float(np.sum(d[keep] / (r[keep] * (r[keep] - d[keep])))))


def test_every_column_passes_the_validator(cohort):
    checked = check_cohort(cohort)
    assert list(checked.columns) == list(cohort.columns)
    assert cohort["patient_id"].is_unique and cohort["patient_id"].iloc[0] == "SYN-00001"


@pytest.mark.parametrize("level, target", [(["CR"], 0.45), (["PR"], 0.15), (["SD", "PD"], 0.40)])
def test_best_response_marginals(cohort, level, target):
    # binomial proportion: SE = sqrt(p (1 - p) / N) ~ 0.0025 for p = 0.45
    share = cohort["best_response"].isin(level).mean()
    assert abs(share - target) <= K * math.sqrt(target * (1 - target) / N)


@pytest.mark.parametrize("pattern, target", [("local", 14 / 60), ("local_and_distant", 10 / 60),
                                             ("distant", 12 / 60), ("none", 24 / 60)])
def test_pattern_shares_of_all_patients(cohort, pattern, target):
    # the published shares are of all 60 patients; "none" is the 40 % without observed progression
    share = (cohort["pattern"] == pattern).mean()
    assert abs(share - target) <= K * math.sqrt(target * (1 - target) / N)


def test_kaplan_meier_median_pfs1_is_four_months(cohort):
    # median = 4 months <=> S(4) = 0.5; Greenwood SE of S(4) (~0.0025 here) sets the tolerance. This is
    # the Brookmeyer-Crowley test: 4 lies in the 4-SE confidence set of the median.
    s, se = _greenwood(cohort["pfs1_months"].to_numpy(), cohort["pfs1_event"].to_numpy(), 4.0)
    assert abs(s - 0.5) <= K * se


def test_cox_on_pce_and_lmd_recovers_published_hazard_ratios(cohort):
    # log-HR SE from the fit's own information matrix; the stored solution was itself fitted on a
    # 200,000-patient sample, whose noise adds variance SE^2 * N / SOLVER_N.
    data = cohort[["pfs1_months", "pfs1_event", "pce", "lmd"]].astype(float)
    fit = CoxPHFitter().fit(data, "pfs1_months", "pfs1_event")
    for name, hr in (("pce", 2.75), ("lmd", 2.72)):
        se = fit.standard_errors_[name] * math.sqrt(1 + N / SOLVER_N)
        assert abs(fit.params_[name] - math.log(hr)) <= K * se, name


def test_bcell_aplasia_at_progression(cohort):
    progressed = cohort[cohort["pfs1_event"]]
    share = progressed["bcell_aplasia"].astype(bool).mean()
    assert abs(share - 0.93) <= K * math.sqrt(0.93 * 0.07 / len(progressed))


def test_median_pfs2_is_one_month(cohort):
    progressed = cohort[cohort["pfs1_event"]]
    s, se = _greenwood(progressed["pfs2_months"].to_numpy(), progressed["pfs2_event"].to_numpy(bool), 1.0)
    assert abs(s - 0.5) <= K * se


def _difference(a: pd.Series, b: pd.Series) -> tuple[float, float]:
    """Difference of two proportions and its SE, sqrt(pa (1 - pa) / na + pb (1 - pb) / nb)."""
    pa, pb = a.mean(), b.mean()
    return pa - pb, math.sqrt(pa * (1 - pa) / len(a) + pb * (1 - pb) / len(b))


def test_associations_hold_in_the_published_direction(cohort):
    # each difference must exceed 4 of its SEs: the direction is established, not a noise artefact
    refractory = cohort["best_response"].isin(["SD", "PD"])
    after_cr = cohort["best_response"] == "CR"
    progressed = cohort["pfs1_event"]
    checks = {
        "distant relapse after CR": _difference((cohort["pattern"] == "distant")[progressed & after_cr],
                                                (cohort["pattern"] == "distant")[progressed & refractory]),
        "local progression after refractory": _difference((cohort["pattern"] == "local")[progressed & refractory],
                                                          (cohort["pattern"] == "local")[progressed & after_cr]),
        "pce with refractory disease": _difference(refractory[cohort["pce"]], refractory[~cohort["pce"]]),
        "lmd with relapse after CR": _difference(progressed[after_cr & cohort["lmd"]],
                                                 progressed[after_cr & ~cohort["lmd"]]),
    }
    for name, (diff, se) in checks.items():
        assert diff > K * se, name


def test_distant_mostly_after_cr_and_local_mostly_after_refractory(cohort):
    # "mostly": more than half, by 4 binomial SEs
    distant = cohort[cohort["pattern"] == "distant"]["best_response"] == "CR"
    local = cohort[cohort["pattern"] == "local"]["best_response"].isin(["SD", "PD"])
    for share in (distant, local):
        assert share.mean() - 0.5 > K * math.sqrt(0.25 / len(share))


def test_post_progression_fields_only_after_progression(cohort):
    censored = cohort[~cohort["pfs1_event"]]
    assert (censored["pattern"] == "none").all()
    assert censored[["bcell_aplasia", "pfs2_months", "pfs2_event", "salvage"]].isna().all().all()
    assert cohort[cohort["pfs1_event"]][["bcell_aplasia", "pfs2_months", "salvage"]].notna().all().all()


def test_follow_up_reflects_accrual_window(cohort):
    # infusions 2018-01 .. 2024-12, cut-off 2025-06: at most 90 months of follow-up; censoring earlier
    # than the 6-month administrative minimum happens only through loss to follow-up (5 %/year, so
    # P(lost by 6 months) = 1 - 0.95 ** 0.5 ~ 2.5 % of patients at most)
    assert cohort["pfs1_months"].max() <= 90.0
    assert cohort["pfs1_months"].min() >= 0.01
    early_censored = ((~cohort["pfs1_event"]) & (cohort["pfs1_months"] < 6.0)).mean()
    assert early_censored <= 1 - 0.95**0.5


def test_same_seed_same_frame_other_seed_other_frame():
    pd.testing.assert_frame_equal(generate_cohort(500, 3), generate_cohort(500, 3))
    assert not generate_cohort(500, 3).equals(generate_cohort(500, 4))


def test_chunks_concatenate_to_the_cohort_and_number_patients_continuously():
    chunks = list(iter_cohort(250, 5, chunk_size=100))
    assert [len(c) for c in chunks] == [100, 100, 50]
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(whole, generate_cohort(250, 5, chunk_size=100))
    assert whole["patient_id"].tolist() == [f"SYN-{i:03d}" for i in range(1, 251)]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_same_seed_same_bytes_and_valid_file(tmp_path, suffix):
    first = write_synthetic_cohort(tmp_path / f"a{suffix}", 2_500, 9, chunk_size=1_000)
    second = write_synthetic_cohort(tmp_path / f"b{suffix}", 2_500, 9, chunk_size=1_000)
    other = write_synthetic_cohort(tmp_path / f"c{suffix}", 2_500, 10, chunk_size=1_000)
    assert first.read_bytes() == second.read_bytes() != other.read_bytes()
    raw = read_cohort(first)
    assert raw.attrs["provenance"] == {"source": "synthetic", "generator": "cnslrisk.synth", "seed": 9, "n": 2_500,
                                       "parameters_sha256": parameters_sha256()}
    checked = check_cohort(raw)
    expected = generate_cohort(2_500, 9, chunk_size=1_000)
    assert checked["pfs1_months"].tolist() == expected["pfs1_months"].tolist()
    assert checked["pattern"].tolist() == expected["pattern"].tolist()
    assert not list(tmp_path.glob(".*partial"))


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, r"parameter n of iter_cohort must be an int in \[1, inf\); got 0"),
    ({"n": 2.5}, r"parameter n of iter_cohort must be an int in \[1, inf\); got 2.5"),
    ({"n": 10, "chunk_size": 0}, r"parameter chunk_size of iter_cohort must be an int in \[1, inf\); got 0"),
    ({"n": 10, "seed": -1}, r"parameter seed of iter_cohort must be an int in \[0, inf\); got -1"),
])
def test_bad_arguments_are_rejected_at_the_call(kwargs, message):
    with pytest.raises(ValueError, match=message):
        iter_cohort(**kwargs)


def test_unknown_extension_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"extension '\.txt' is not supported; expected \.csv or \.parquet"):
        write_synthetic_cohort(tmp_path / "cohort.txt", 10)


def test_every_parameter_has_provenance_and_inputs_match_the_code():
    doc = load_parameters()
    allowed = {"published", "derived", "assumed", "solved"}
    for name, entry in doc["parameters"].items():
        assert entry["provenance"] in allowed and entry["note"], name
    for source, table in (("published", cal.PUBLISHED), ("assumed", cal.ASSUMED)):
        for name, entry in table.items():
            assert doc["parameters"][name] == {**entry, "provenance": source}, name
    assert doc["method"]["converged"] and doc["method"]["n"] == 200_000


def test_prevalence_from_published_ci_inverts_schoenfeld():
    # SE(log HR) = 1 / sqrt(D p (1 - p)) must give back the CI width it was derived from
    for lower, upper in ((1.08, 6.68), (1.20, 6.25)):
        p = cal.prevalence_from_ci(lower, upper, 36)
        assert 1 / math.sqrt(36 * p * (1 - p)) == pytest.approx(math.log(upper / lower) / (2 * 1.959964), rel=1e-6)


@pytest.mark.slow
def test_re_solving_on_a_smaller_sample_lands_near_the_stored_solution():
    # Deterministic parts (prevalences, response intercepts) must agree exactly. The direct effects
    # absorb the sampling error of the realised log-HR: SE ~ 0.016 * sqrt(40k / 20k) = 0.023 at
    # n = 20,000 plus 0.007 for the stored 200k solution; dB/dlogHR is about b / log HR <= 1.5
    # (non-collapsibility and mediation), so 4 SE of b is 4 * 1.5 * sqrt(0.023^2 + 0.007^2) = 0.15.
    stored = load_parameters()["parameters"]
    doc = solve_parameters(n=20_000, seed=7)
    fresh = doc["parameters"]
    for name in ("pce_prevalence", "lmd_prevalence", "response_intercepts"):
        assert fresh[name]["value"] == pytest.approx(stored[name]["value"], abs=1e-9), name
    for name in ("b_pce", "b_lmd"):
        assert abs(fresh[name]["value"] - stored[name]["value"]) <= 0.15, name
    assert doc["method"]["achieved"]["hr_pce"] == pytest.approx(2.75, rel=1e-3)
    assert doc["method"]["achieved"]["hr_lmd"] == pytest.approx(2.72, rel=1e-3)
