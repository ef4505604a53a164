"""`cnslrisk validate` by the CNSL dictionary, by a training config's contract and by a model's contract."""

from __future__ import annotations

import json

from public_cohorts import write_public_cohort
from typer.testing import CliRunner

from cnslrisk.cli import app
from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import write_cohort
from cnslrisk.training.config_init import starter_config


def run(*args):
    return CliRunner().invoke(app, ["validate", *map(str, args)])


def test_another_diseases_cohort_is_checked_by_its_configs_rules(tmp_path):
    cohort = write_public_cohort("kidney", tmp_path)
    by_dictionary = run(cohort, "--json")
    assert by_dictionary.exit_code == 1
    problems = json.loads(by_dictionary.stdout)["problems"]
    fields = {p["field"] for p in problems}
    assert {"time", "death", "pfs1_months"} <= fields  # not a CNSL cohort: unknown and missing columns
    assert any(p["field"] == "age" and p["expected"] == "is below the minimum 18" for p in problems)
    starter_config(cohort, time="time", event="death", time_unit="days", out=tmp_path / "kidney.toml")
    by_config = run(cohort, "--config", tmp_path / "kidney.toml", "--json")
    assert by_config.exit_code == 0, by_config.stdout
    result = json.loads(by_config.stdout)
    assert (result["n"], result["events"]) == (863, 140)
    assert result["contract"] == f"the contract of config {tmp_path / 'kidney.toml'}"


def test_a_scoring_file_is_checked_by_the_models_contract(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registered.tracking_uri)
    write_cohort(generate_cohort(30, seed=2).assign(site="A"), tmp_path / "in.csv")
    done = run(tmp_path / "in.csv", "--model", registered.model_uri, "--json")
    assert done.exit_code == 0, done.stdout
    result = json.loads(done.stdout)
    assert "site" in result["ignored"] and "pfs1_months" in result["ignored"] and result["n"] == 30
    write_cohort(generate_cohort(30, seed=2).rename(columns={"lmd": "Lmd"}), tmp_path / "typo.csv")
    refused = run(tmp_path / "typo.csv", "--model", registered.model_uri)
    assert refused.exit_code == 1 and "field Lmd: looks like the model input 'lmd'" in refused.stdout
