"""``cnslrisk report`` through the installed console command."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import write_cohort

EXAMPLE = Path(__file__).parents[2] / "data" / "example_cohort.csv"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cnslrisk", *args], capture_output=True, text=True, timeout=180)


@pytest.mark.skipif(not EXAMPLE.exists(), reason="data/example_cohort.csv is not in this checkout")
def test_report_on_the_example_cohort_with_a_covariate(tmp_path):
    out = tmp_path / "rep"
    done = run("report", str(EXAMPLE), "--out", str(out), "--covariate", "age", "--covariate", "ecog")
    assert done.returncode == 0, done.stderr
    assert f"wrote {out / 'report.html'}" in done.stdout.replace("\n", "")
    numbers = json.loads((out / "report.json").read_text())
    assert numbers["cox"]["covariates"] == ["pce", "lmd", "age", "ecog"]
    assert list(numbers["cox"]["multivariable"]["terms"]) == ["pce", "lmd", "age", "ecog"]
    assert numbers["response"]["groups"]["overall"]["counts"]["CR"] == 27
    assert "SYNTHETIC — NOT REAL PATIENTS" in (out / "report.html").read_text()


def test_invalid_cohort_exits_1_with_a_clear_message_and_no_report(tmp_path):
    df = generate_cohort(20, seed=2)
    df["pce"] = df["pce"].astype(object)
    df.loc[0, "pce"] = "maybe"
    bad = write_cohort(df, tmp_path / "bad.csv")
    out = tmp_path / "rep"
    done = run("report", str(bad), "--out", str(out))
    assert done.returncode == 1
    assert "invalid cohort: 1 problem(s) in cohort:" in done.stderr
    assert "row 1 (patient SYN-001), field pce: 'maybe' is not one of {true, false}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["--covariate", "pfs2_months"], "error: option --covariate: 'pfs2_months' is not a baseline field"),
    ([], "invalid cohort: 1 problem(s) in cohort:"),
])
def test_user_errors_exit_1(tmp_path, args, message):
    cohort = str(EXAMPLE) if args else str(tmp_path / "missing.csv")
    done = run("report", cohort, "--out", str(tmp_path / "rep"), *args)
    assert done.returncode == 1
    assert message in done.stderr
    assert not (tmp_path / "rep").exists()
