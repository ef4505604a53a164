"""The real `cnslrisk evaluate`, `recalibrate` and the fair `promote` gate on an own SQLite registry."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from cnslrisk.model import read_cohort
from cnslrisk.model.cohort_io import write_cohort
from cnslrisk.training import train

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "example_cohort.csv"
NAME = "cnslrisk-pfs1"
# 5 x 2 folds: the fewest with which the bundled model's out-of-fold C is shown to beat 0.5, so it becomes champion
FAST = {"models.fit": ["cox"], "validation.repeats": 2, "validation.folds": 5, "validation.bootstrap": 10,
        "pattern.repeats": 1, "n_jobs": 1}


def shifted_cohort(path: Path, factor: float) -> Path:
    """The example cohort with every time multiplied by ``factor`` (< 1: events come sooner, a baseline shift)."""
    frame = read_cohort(EXAMPLE)
    frame["pfs1_months"] = (frame["pfs1_months"].astype(float) * factor).round(3).astype(str)
    frame["pfs2_months"] = pd.to_numeric(frame["pfs2_months"], errors="coerce").mul(factor).round(3)
    write_cohort(frame, path, provenance={"source": "synthetic"})
    return path


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cli_evaluate")
    uri = f"sqlite:///{directory}/mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(directory)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        train(overrides=FAST)
        yield directory, shifted_cohort(directory / "shifted.csv", 0.4)


def run(*args):
    from typer.testing import CliRunner

    from cnslrisk.cli import app

    result = CliRunner().invoke(app, list(map(str, args)))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_evaluate_json_has_the_documented_keys_and_reproduces_the_card(registry):
    done = run("evaluate", f"models:/{NAME}/1", "--cohort", EXAMPLE, "--json", "--bootstrap", "20", "--no-log")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    card = json.loads(run("card", f"models:/{NAME}/1", "--json").stdout)
    assert summary["c_index"] == card["validation"]["bootstrap"]["apparent"]["c_index"]
    assert set(summary["horizons"]) == {"3", "6", "12"}
    for entry in summary["horizons"].values():
        for key in ("calibration_in_the_large", "calibration_slope", "brier", "auc"):
            assert isinstance(entry[key], float)
    assert "run_id" not in summary and "validated_on.1" not in MlflowClient().get_model_version(NAME, "1").tags


def test_recalibrate_registers_a_new_version_with_lineage(registry):
    directory, shifted = registry
    before = json.loads(run("evaluate", f"models:/{NAME}/1", "--cohort", shifted, "--json", "--bootstrap", "0",
                            "--no-log").stdout)
    done = run("recalibrate", f"models:/{NAME}/1", "--cohort", shifted, "--method", "intercept", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["parent_version"] == "1" and out["method"] == "intercept"
    client = MlflowClient()
    tags = client.get_model_version(NAME, out["version"]).tags
    sha = read_cohort(shifted).attrs["sha256"]
    assert tags["recalibration.parent_version"] == "1" and tags["recalibration.cohort_sha256"] == sha
    artifacts = {a.path for a in client.list_artifacts(out["run_id"], "plots")}
    assert artifacts == {"plots/calibration_before.png", "plots/calibration_after.png"}
    after = json.loads(run("evaluate", f"models:/{NAME}/{out['version']}", "--cohort", shifted, "--json",
                           "--bootstrap", "0", "--no-log").stdout)
    # times x 0.4: the cohort's S(h) is the example's S(h / 0.4), about 0.15 lower at 3 and 6 months, with a
    # Kaplan-Meier standard error near 0.065 at n = 60, so the parent's CITL is negative there (the CI need not
    # exclude 0 at this size: detection is tested on n = 800 in test_evaluate); after the baseline is
    # re-estimated on the cohort, 0 lies inside every CI
    for label in ("3", "6"):
        assert before["horizons"][label]["calibration_in_the_large"] < 0
    for entry in after["horizons"].values():
        lower, upper = entry["calibration_in_the_large_ci"]
        assert lower <= 0 <= upper
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == "1"  # no alias moved
    # a recalibrated version has no optimism-corrected figures: it is compared on a held-out cohort, which
    # must not be the cohort its baseline was fitted on
    done = run("promote", "--version", out["version"])
    assert done.returncode == 1 and "a recalibrated version is compared on a held-out cohort" in done.stderr
    done = run("promote", "--version", out["version"], "--holdout", shifted)
    assert done.returncode == 1 and "one of the two models was trained on this cohort" in done.stderr


def test_evaluate_per_period_and_logged_history(registry, tmp_path):
    frame = read_cohort(EXAMPLE)
    frame["infusion_date"] = np.where(np.arange(len(frame)) % 2 == 0, "2024-05-01", "2025-02-11")
    write_cohort(frame, tmp_path / "dated.csv", provenance={"source": "synthetic"})
    done = run("evaluate", f"models:/{NAME}/1", "--cohort", tmp_path / "dated.csv", "--period-column",
               "infusion_date", "--bootstrap", "0", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    assert "period 2024: n = 30" in done.stdout and "period 2025: n = 30" in done.stdout
    periods = pd.read_csv(tmp_path / "out" / "periods.csv")
    assert periods["n"].tolist() == [30, 30] and periods["events"].sum() == 36
    history = json.loads(MlflowClient().get_model_version(NAME, "1").tags["validated_on.1"])
    assert history["n"] == 60 and history["sha256"] == read_cohort(tmp_path / "dated.csv").attrs["sha256"]
    card = run("card", f"models:/{NAME}/1", "--json")
    assert json.loads(card.stdout)["validation_history"][0]["sha256"] == history["sha256"]
    assert "## Validated on (external evaluations)" in run("card", f"models:/{NAME}/1").stdout


def test_the_config_maps_the_cohorts_column_names(registry, tmp_path):
    frame = read_cohort(EXAMPLE).rename(columns={"pfs1_months": "months", "pfs1_event": "progressed",
                                                  "pattern": "relapse"})
    write_cohort(frame, tmp_path / "renamed.csv", provenance={"source": "synthetic"})
    (tmp_path / "map.toml").write_text('[data]\npath = "renamed.csv"\ntime = "months"\nevent = "progressed"\n'
                                       'cause = "relapse"\ncensored = "none"\ntime_unit = "months"\n')
    done = run("evaluate", f"models:/{NAME}/1", "--cohort", tmp_path / "renamed.csv", "--config", tmp_path / "map.toml",
               "--json", "--bootstrap", "0", "--no-log")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    original = json.loads(run("evaluate", f"models:/{NAME}/1", "--cohort", EXAMPLE, "--json", "--bootstrap", "0",
                              "--no-log").stdout)
    assert summary["c_index"] == original["c_index"] and summary["pattern"] == original["pattern"]
    assert summary["horizons"] == original["horizons"]


def test_user_errors_exit_1_with_a_message(registry, tmp_path):
    done = run("evaluate", f"models:/{NAME}/1", "--cohort", EXAMPLE, "--period-column", "year", "--no-log")
    assert done.returncode == 1 and "period column year is not in the file" in done.stderr
    done = run("recalibrate", f"models:/{NAME}/1", "--cohort", EXAMPLE, "--method", "both")
    assert done.returncode == 1
    assert "parameter method of recalibrate must be one of {intercept, slope, auto}; got 'both'" in done.stderr


def test_promotion_compares_on_the_challengers_training_cohort(registry):
    directory, shifted = registry
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(directory)
        challenger = train(overrides={**FAST, "data.path": str(shifted)}).version
    done = run("promote")
    assert done.returncode == 1
    assert "different training cohorts; their figures are not comparable" in done.stdout
    done = run("promote", "--cohort", EXAMPLE)
    assert done.returncode == 1 and "is not the challenger's training cohort" in done.stderr
    done = run("promote", "--cohort", shifted, "--holdout", EXAMPLE)
    assert done.returncode == 1 and "one of the two models was trained on this cohort" in done.stderr
    held_out = shifted_cohort(directory / "held_out.csv", 0.7)
    done = run("promote", "--cohort", shifted, "--holdout", held_out)
    tags = MlflowClient().get_model_version(NAME, challenger).tags
    assert tags["promotion.basis"].startswith("champion's external C on the challenger's training cohort")
    assert tags["promotion.basis"].endswith("; both external on a held-out cohort")
    printed = " ".join(done.stdout.split())  # rich wraps long lines
    assert "on the held-out cohort" in printed and " ".join(tags["promotion.reason"].split()) in printed
    assert done.returncode == (0 if tags["promotion.decision"] == "promoted" else 1)
