"""The cohort report: its numbers against direct computations (pandas, scipy, lifelines), its sections and its page.

Reference values come from independent implementations: counts and quartiles from pandas, Fisher's
test from scipy, Kaplan-Meier medians and their Brookmeyer-Crowley intervals, the log-rank test and
Cox hazard ratios from lifelines. The exact tests, figures and provenance text have their own files.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test
from lifelines.utils import median_survival_times
from scipy.stats import fisher_exact

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import CohortValidationError, check_cohort, read_cohort, write_cohort
from cnslrisk.report import report

EXAMPLE = Path(__file__).parents[2] / "data" / "example_cohort.csv"
OPTIONAL = ["best_response", "pattern", "bcell_aplasia", "pfs2_months", "pfs2_event", "salvage"]


def _write(df: pd.DataFrame, path: Path, provenance: dict | None) -> Path:
    return write_cohort(df, path, provenance=provenance)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A 240-patient synthetic cohort, its report (with age and cnsl_type as covariates) and its JSON."""
    folder = tmp_path_factory.mktemp("report")
    df = generate_cohort(240, seed=11)
    path = _write(df, folder / "cohort.csv", df.attrs["provenance"])
    html = report(path, folder / "out", covariates=["age", "cnsl_type"])
    numbers = json.loads((folder / "out" / "report.json").read_text())
    return check_cohort(read_cohort(path)), html, numbers


def _lifelines_median(time, event):
    kmf = KaplanMeierFitter().fit(time, event)
    ci = median_survival_times(kmf.confidence_interval_)
    values = [kmf.median_survival_time_, ci.iloc[0, 0], ci.iloc[0, 1]]
    return [None if not np.isfinite(v) else float(v) for v in values]


def test_table1_counts_and_quartiles_match_pandas(synthetic):
    df, _, numbers = synthetic
    t1 = numbers["table1"]
    for group, mask in {"overall": np.ones(len(df), bool), "pce=true": df["pce"], "lmd=false": ~df["lmd"]}.items():
        part = df[np.asarray(mask, bool)]
        assert t1["groups"][group] == len(part)
        assert t1["variables"]["car_product"][group]["counts"] == {
            level: int((part["car_product"] == level).sum()) for level in ("axi-cel", "tisa-cel", "liso-cel", "other")}
        assert t1["variables"]["steroids"][group]["n_true"] == int(part["steroids"].sum())
        age = t1["variables"]["age"][group]
        expected = part["age"].quantile([0.25, 0.5, 0.75]).to_numpy()  # pandas' linear interpolation
        np.testing.assert_allclose([age["q1"], age["median"], age["q3"]], expected, rtol=1e-12)


def test_response_counts_and_fisher_match_pandas_and_scipy(synthetic):
    df, _, numbers = synthetic
    response = numbers["response"]
    assert response["groups"]["overall"]["counts"] == df["best_response"].value_counts().to_dict() | {
        r: 0 for r in ("CR", "PR", "SD", "PD") if r not in set(df["best_response"])}
    for split in ("pce", "lmd"):
        responder = df["best_response"].isin(["CR", "PR"])
        table = pd.crosstab(responder, df[split]).reindex(index=[True, False], columns=[False, True]).to_numpy()
        assert response["groups"][f"{split}=true"]["orr"] == table[0, 1]
        assert response["tests"][split]["orr"]["method"] == "fisher exact"
        assert response["tests"][split]["orr"]["p"] == pytest.approx(fisher_exact(table).pvalue, rel=1e-12)


def test_km_medians_and_intervals_match_lifelines(synthetic):
    df, _, numbers = synthetic
    pfs1 = numbers["pfs1"]
    km = pfs1["overall"]
    assert [km["median"], km["median_lower"], km["median_upper"]] == pytest.approx(
        _lifelines_median(df["pfs1_months"], df["pfs1_event"]), abs=1e-12)
    for split in ("pce", "lmd"):
        for level in (False, True):
            part = df[df[split] == level]
            km = pfs1[f"by_{split}"]["groups"][str(level).lower()]
            assert (km["n"], km["events"]) == (len(part), int(part["pfs1_event"].sum()))
            reference = _lifelines_median(part["pfs1_months"], part["pfs1_event"])
            assert [km["median"], km["median_lower"], km["median_upper"]] == pytest.approx(reference, abs=1e-12)
    post = df[df["pfs2_months"].notna()]
    km = numbers["pfs2"]["overall"]
    assert [km["median"], km["median_lower"], km["median_upper"]] == pytest.approx(
        _lifelines_median(post["pfs2_months"], post["pfs2_event"].astype(bool)), abs=1e-12)


def test_logrank_matches_lifelines(synthetic):
    df, _, numbers = synthetic
    for split in ("pce", "lmd"):
        a, b = df[df[split]], df[~df[split]]
        reference = logrank_test(a["pfs1_months"], b["pfs1_months"], a["pfs1_event"], b["pfs1_event"])
        result = numbers["pfs1"][f"by_{split}"]["logrank"]
        assert result["df"] == 1
        assert result["chi2"] == pytest.approx(reference.test_statistic, rel=1e-9)
        assert result["p"] == pytest.approx(reference.p_value, rel=1e-9)


def test_cox_hazard_ratios_match_lifelines(synthetic):
    # Both fits maximise the same Efron partial likelihood. lifelines' default stopping rule (precision
    # 1e-7) leaves the coefficient ~5e-5 short of the optimum here, so it is run to precision 1e-12 (ours
    # stops at a Newton step below 1e-9, where the quadratic convergence leaves an error far below 1e-9);
    # coefficients then agree to ~1e-9 and HRs, CIs and p-values to a relative 1e-7.
    df, _, numbers = synthetic
    data = pd.DataFrame({"pce": df["pce"].astype(float), "lmd": df["lmd"].astype(float), "age": df["age"],
                         "cnsl_type_secondary": (df["cnsl_type"] == "secondary").astype(float),
                         "T": df["pfs1_months"], "E": df["pfs1_event"].astype(float)})
    exact = {"precision": 1e-12}
    full = CoxPHFitter().fit(data, "T", "E", fit_options=exact).summary
    terms = numbers["cox"]["multivariable"]["terms"]
    assert list(terms) == ["pce", "lmd", "age", "cnsl_type_secondary"]
    for term, row in terms.items():
        assert row["hr"] == pytest.approx(full.loc[term, "exp(coef)"], rel=1e-7)
        assert row["ci_lower"] == pytest.approx(full.loc[term, "exp(coef) lower 95%"], rel=1e-7)
        assert row["ci_upper"] == pytest.approx(full.loc[term, "exp(coef) upper 95%"], rel=1e-7)
        assert row["p"] == pytest.approx(full.loc[term, "p"], rel=1e-7)
    uni = CoxPHFitter().fit(data[["pce", "T", "E"]], "T", "E", fit_options=exact).summary
    assert numbers["cox"]["univariable"]["pce"]["terms"]["pce"]["hr"] == pytest.approx(uni.loc["pce", "exp(coef)"],
                                                                                       rel=1e-7)
    size = numbers["cox"]["sample_size"]
    assert size["events"] == int(df["pfs1_event"].sum()) and size["parameters"] == 4
    assert size["events_per_parameter"] == pytest.approx(size["events"] / 4)


def test_pattern_crosstab_matches_pandas(synthetic):
    df, _, numbers = synthetic
    pattern = numbers["pattern"]
    assert pattern["counts"] == {p: int((df["pattern"] == p).sum())
                                 for p in ("none", "local", "local_and_distant", "distant", "death")}
    progressed = df[df["pattern"].isin(["local", "local_and_distant", "distant"])]
    table = pd.crosstab(progressed["best_response"], progressed["pattern"])
    for response, row in pattern["crosstab"].items():
        for level, count in row.items():
            assert count == (table.loc[response, level] if response in table.index else 0)
    cr = pattern["cr_distant"]
    assert cr["test"]["p"] == pytest.approx(fisher_exact(cr["table"]).pvalue, rel=1e-12)
    assert numbers["bcell_aplasia"]["n_aplasia"] == int(df["bcell_aplasia"].sum())


def test_page_is_self_contained_and_shows_no_patient_rows(synthetic):
    df, html, numbers = synthetic
    page = html.read_text()
    assert not re.search(r"<script|<link|@import|url\(|https?://", page)
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == 7 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "@media print" in page
    assert "SYNTHETIC — NOT REAL PATIENTS" in page and numbers["cohort"]["synthetic"] is True
    text = page + json.dumps(numbers)
    assert not [pid for pid in df["patient_id"] if pid in text]


def test_same_cohort_gives_identical_files(synthetic, tmp_path):
    df, html, _ = synthetic
    again = report(html.parents[1] / "cohort.csv", tmp_path, covariates=["age", "cnsl_type"])
    assert again.read_bytes() == html.read_bytes()
    assert (tmp_path / "report.json").read_bytes() == (html.parent / "report.json").read_bytes()


def test_cohort_without_optional_fields_reports_them_absent(tmp_path):
    df = generate_cohort(80, seed=5).drop(columns=OPTIONAL)
    path = _write(df, tmp_path / "core.csv", None)
    html = report(path, tmp_path / "out")
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())
    assert numbers["absent"] == ["response", "pattern", "bcell_aplasia", "pfs2"]
    assert numbers["cohort"]["source"] == "real" and numbers["cohort"]["synthetic"] is False
    page = html.read_text()
    assert page.count("absent in this cohort") == 4
    assert "NOT REAL PATIENTS" not in page
    assert numbers["pfs1"]["overall"]["n"] == 80 and numbers["cox"]["covariates"] == ["pce", "lmd"]


def test_constant_risk_factor_still_gives_a_report(tmp_path):
    df = generate_cohort(40, seed=3)
    df["pce"] = False
    html = report(_write(df, tmp_path / "flat.csv", None), tmp_path / "out")
    numbers = json.loads((tmp_path / "out" / "report.json").read_text())
    assert numbers["pfs1"]["by_pce"]["logrank"]["note"] == "not testable (fewer than two groups or no event)"
    assert numbers["response"]["tests"]["pce"]["orr"]["p"] is None
    assert numbers["cox"]["univariable"]["pce"]["note"].startswith("not estimable: CoxPH fit: the information matrix")
    assert numbers["cox"]["multivariable"]["terms"] == {}
    assert "lmd" in numbers["cox"]["univariable"]["lmd"]["terms"]
    assert "not estimable" in html.read_text()


def test_invalid_cohort_raises_and_writes_nothing(tmp_path):
    df = generate_cohort(30, seed=1)
    df.loc[3, "age"] = -5
    path = _write(df, tmp_path / "bad.csv", None)
    message = r"row 4 \(patient SYN-0+4\), field age: '-5.0' is below the minimum 18"
    with pytest.raises(CohortValidationError, match=message):
        report(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_covariate_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"option --covariate: 'tumour_size' is not a baseline field; expected one of"):
        report(EXAMPLE, tmp_path, covariates=["tumour_size"])
    assert not list(tmp_path.iterdir())


@pytest.mark.skipif(not EXAMPLE.exists(), reason="data/example_cohort.csv is not in this checkout")
def test_example_cohort_shows_the_published_counts(tmp_path):
    html = report(EXAMPLE, tmp_path)
    numbers = json.loads((tmp_path / "report.json").read_text())
    counts = numbers["response"]["groups"]["overall"]["counts"]
    assert (counts["CR"], counts["PR"], counts["SD"] + counts["PD"]) == (27, 9, 24)
    patterns = numbers["pattern"]["counts"]
    assert (patterns["local"], patterns["local_and_distant"], patterns["distant"], patterns["none"]) == (14, 10, 12, 24)
    page = html.read_text()
    assert "<td>CR</td><td>27 (45.0 %)</td>" in page and "<td>local</td><td>14</td>" in page
