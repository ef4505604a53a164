"""``cnslrisk synth`` through the installed console command."""

from __future__ import annotations

import json
import subprocess
from importlib import resources

import pytest


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["cnslrisk", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_same_seed_same_bytes_and_the_file_validates(tmp_path, suffix):
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    for out in (first, second):
        done = run("synth", "--n", "300", "--seed", "4", "--out", str(out), "--json")
        assert done.returncode == 0, done.stderr
    assert first.read_bytes() == second.read_bytes()
    result = json.loads(done.stdout)
    assert result["provenance"]["source"] == "synthetic" and result["provenance"]["n"] == 300
    assert result["provenance"]["seed"] == 4
    checked = run("validate", str(first), "--json")
    assert checked.returncode == 0, checked.stdout
    assert json.loads(checked.stdout)["n"] == 300


def test_example_regenerates_the_packaged_file(tmp_path):
    out = tmp_path / "example_cohort.csv"
    done = run("synth", "--example", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == resources.files("cnslrisk.data").joinpath("example_cohort.csv").read_bytes()


@pytest.mark.parametrize("args, message", [
    (["--n", "5", "--example"], "option --n: 5 cannot be combined with --example; the example cohort has n = 60"),
    ([], "option --n: missing; give the number of patients"),
])
def test_user_errors_exit_1_without_traceback(tmp_path, args, message):
    done = run("synth", *args, "--out", str(tmp_path / "x.csv"))
    assert done.returncode == 1 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_unknown_extension_is_a_user_error(tmp_path):
    done = run("synth", "--n", "5", "--out", str(tmp_path / "x.txt"))
    assert done.returncode == 1 and "extension '.txt' is not supported; expected .csv or .parquet" in done.stderr


def test_help_documents_every_option():
    done = run("synth", "--help")
    assert done.returncode == 0
    for option in ("--out", "--n", "--seed", "--example", "--json"):
        assert option in done.stdout
