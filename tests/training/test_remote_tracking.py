"""Training against a real `mlflow server` process on loopback (MLFLOW_TRACKING_URI takes precedence)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import write_cohort
from cnslrisk.training import train


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("server")
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root}/server.db",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    log = open(root / "server.log", "w")
    process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        process.terminate()
        pytest.fail(f"mlflow server did not answer within 120 s: {(root / 'server.log').read_text()[-2000:]}")
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()


def test_train_against_a_real_mlflow_server(mlflow_server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    # 300 patients: the model beats the Kaplan-Meier curve out of fold and becomes champion
    write_cohort(generate_cohort(300, seed=1), tmp_path / "cohort.csv", provenance={"source": "synthetic"})
    (tmp_path / "c.toml").write_text(f"""
[data]
path = "cohort.csv"
id = "patient_id"
time = "pfs1_months"
event = "pfs1_event"
time_unit = "months"
[features]
binary = ["pce", "lmd"]
[models]
fit = ["cox"]
[validation]
folds = 3
repeats = 1
bootstrap = 5
horizons = [3, 6, 12]
[mlflow]
tracking_uri = "sqlite:///{tmp_path}/must-not-be-used.db"
registered_model = "remote-pfs1"
""")
    result = train(tmp_path / "c.toml")
    assert result.aliases == ("challenger", "champion")
    assert not (tmp_path / "must-not-be-used.db").exists()
    mlflow.set_tracking_uri(mlflow_server)
    version = MlflowClient().get_model_version_by_alias("remote-pfs1", "champion")
    assert version.version == result.version
    out = mlflow.pyfunc.load_model("models:/remote-pfs1@champion").predict(generate_cohort(2, seed=5))
    assert out["survival_6"].between(0, 1).all()
