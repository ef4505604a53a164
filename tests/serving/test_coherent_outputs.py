"""Every displayed set of numbers is one prediction, through every way of scoring: the pattern incidences add up to
1 - CNS-PFS1 at each horizon (1e-9) and never decrease over a fine time grid, post-response columns included;
files keep their extra columns out of the scoring and list them (Python, pyfunc, CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from test_api import post, serve_subprocess

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import CohortValidationError, read_cohort, write_cohort
from cnslrisk.model.outputs import horizon_label
from cnslrisk.registry import use_tracking
from cnslrisk.serving import load
from cnslrisk.serving.batch import score_file

EXAMPLE = Path(__file__).resolve().parents[2] / "data" / "example_cohort.csv"
FINE = tuple(float(h) for h in np.round(np.linspace(0.25, 24.0, 96), 2))
TOLERANCE = 1e-9


def assert_coherent(frame: pd.DataFrame, causes, horizons, prefix: str = "") -> int:
    """Sums and monotonicity of the ``prefix`` columns; returns how many rows had them."""
    labels = [horizon_label(h) for h in horizons]
    survival = frame[[f"{prefix}survival_{label}" for label in labels]].to_numpy(dtype=float)
    incidence = np.stack([frame[[f"{prefix}cif_{c}_{label}" for label in labels]].to_numpy(dtype=float)
                          for c in causes])  # (K, n, H)
    shown = ~np.isnan(survival)
    assert (np.isnan(incidence).any(axis=0) == ~shown).all()  # incidences exactly where the survival is shown
    gap = np.abs(incidence.sum(axis=0) - (1.0 - survival))[shown]
    assert gap.max(initial=0.0) <= TOLERANCE
    rows = shown.all(axis=1)
    assert (np.diff(incidence[:, rows], axis=2) >= 0).all()
    return int(rows.sum())


def _batch() -> pd.DataFrame:
    cohort = generate_cohort(500, seed=21)
    cohort.loc[cohort.index % 3 == 0, "best_response"] = None  # the post-response columns only where it is known
    return cohort


def _causes(model):
    return list(model.pattern[-1].causes_), list(model.landmark.causes)


@pytest.mark.parametrize("source", ["synthetic", "example"])
def test_batch_file_rows_are_coherent(registered, tmp_path, source):
    model = registered.model
    path = tmp_path / "in.parquet"
    if source == "synthetic":
        write_cohort(_batch(), path)
    else:
        path = EXAMPLE
    score_file(model, path, tmp_path / "out.parquet", horizons=FINE, chunk_size=128)
    out = pd.read_parquet(tmp_path / "out.parquet")
    causes, post_causes = _causes(model)
    assert assert_coherent(out, causes, FINE) == len(out)
    after = [h for h in FINE if h > model.landmark.time]
    assert assert_coherent(out, post_causes, after, prefix="post_response_") > 0


def test_cli_python_and_pyfunc_rows_are_coherent_and_ignore_extra_columns(registered, tmp_path):
    model = registered.model
    frame = read_cohort(EXAMPLE).assign(registry_site="X", lab_value="1.5")
    frame.to_csv(tmp_path / "in.csv", index=False)
    command = [sys.executable, "-m", "cnslrisk.cli", "score", "--model", registered.model_uri, "--tracking-uri",
               registered.tracking_uri, "--input", str(tmp_path / "in.csv"), "--out", str(tmp_path / "out.csv"),
               "--horizons", ",".join(f"{h:g}" for h in FINE)]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "ignored" in done.stdout and "registry_site" in done.stdout and "pfs1_months (known)" in done.stdout
    cli = pd.read_csv(tmp_path / "out.csv")
    scorer = load(registered.model_uri, tracking_uri=registered.tracking_uri)
    python = scorer.predict(frame, horizons=FINE)
    assert {"registry_site", "lab_value", "pfs1_months"} <= set(python.attrs["ignored_columns"])
    use_tracking(registered.tracking_uri, explicit=True)
    pyfunc = mlflow.pyfunc.load_model(registered.model_uri).predict(frame, params={"horizons": list(FINE)})
    causes, post_causes = _causes(model)
    after = [h for h in FINE if h > model.landmark.time]
    for out in (cli, python, pyfunc):
        assert assert_coherent(out, causes, FINE) == len(frame)
        assert assert_coherent(out, post_causes, after, prefix="post_response_") > 0
    np.testing.assert_allclose(python.filter(like="cif_").to_numpy(float), pyfunc.filter(like="cif_").to_numpy(float),
                               rtol=0, atol=0)
    with pytest.raises(CohortValidationError, match=r"field registry_site: is not a model input; --strict"):
        scorer.predict(frame, strict=True)
    with pytest.raises(CohortValidationError, match=r"field LMD: looks like the model input 'lmd'"):
        scorer.predict(frame.rename(columns={"lmd": "LMD"}))


def test_api_answers_are_coherent_and_unknown_fields_still_refused(registered, tmp_path):
    model = registered.model
    patients = json.loads(_batch().head(200).to_json(orient="records"))
    horizons = [0.5, 1, 2, 3, 4.5, 6, 9, 12, 18, 24]
    with serve_subprocess(registered, tmp_path / "server.log") as base:
        response = post(base, patients, params={"horizons": horizons})
        assert response.status_code == 200, response.text
        refused = post(base, {**patients[0], "lmd_status": True})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["body", "lmd_status"]
    rows = pd.DataFrame(response.json()["predictions"]).astype({c: float for c in response.json()["predictions"][0]
                                                                if "survival_" in c or "cif_" in c})
    causes, post_causes = _causes(model)
    assert assert_coherent(rows, causes, horizons) == len(patients)
    assert assert_coherent(rows, post_causes, [h for h in horizons if h > model.landmark.time],
                           prefix="post_response_") > 0
