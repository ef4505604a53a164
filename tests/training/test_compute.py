"""Training on a real Dask cluster (a `dask scheduler` and two `dask worker` processes on loopback) gives the
local run's figures exactly, survives the loss of a worker, and speaks TLS when the config says so."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from threadpoolctl import threadpool_info

from cnslrisk.training import ConfigError, train
from cnslrisk.training.compute import WorkUnit, active_runner, use_compute
from cnslrisk.training.config import ComputeConfig
from cnslrisk.training.crossval import run_chunked

# a quick but complete run: the candidate, the null and published models, bootstrap, pattern model, landmark model
QUICK = {"models.fit": ["cox"], "validation.folds": 3, "validation.repeats": 2, "validation.bootstrap": 8,
         "pattern.repeats": 1, "n_jobs": 2}
_VOLATILE = re.compile(r"seconds|run_id|created|timestamp|git_revision|artifact_bytes")


def _figures(value, top=True):
    """The card or metrics without what differs between any two runs (run ids, times, the registered name)."""
    if isinstance(value, dict):
        return {k: _figures(v, False) for k, v in value.items()
                if not _VOLATILE.search(str(k)) and not (top and k == "model")}
    if isinstance(value, list):
        return [_figures(v, False) for v in value]
    return value


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """One MLflow store for the module's runs (each registers under its own name): created once."""
    return tmp_path_factory.mktemp("registry")


def _train(registry: Path, name: str, progress=None, **overrides):
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(registry)
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        return train(overrides={**QUICK, "mlflow.tracking_uri": f"sqlite:///{registry}/mlflow.db",
                                "mlflow.registered_model": name, **overrides}, progress=progress)


@pytest.fixture(scope="module")
def local_run(registry):
    return _train(registry, "local")


DASK = [sys.executable, "-m", "dask"]  # the `dask` command of this environment, wherever its scripts are


class Cluster:
    """A scheduler and worker processes started as a user would start them (`dask scheduler`, `dask worker`),
    on 127.0.0.1."""

    def __init__(self, folder: Path, workers: int = 2, tls: dict[str, str] | None = None):
        self.folder, self.processes = folder, []
        folder.mkdir(parents=True, exist_ok=True)
        file = folder / "scheduler.json"
        tls_args = [] if tls is None else ["--tls-ca-file", tls["ca"], "--tls-cert", tls["cert"], "--tls-key",
                                           tls["key"]]
        protocol = ["--protocol", "tls"] if tls else []
        self._start("scheduler", [*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--dashboard-address",
                                  "127.0.0.1:0", "--scheduler-file", str(file), *protocol, *tls_args])
        deadline = time.monotonic() + 60
        while not file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.address = json.loads(file.read_text())["address"]
        # no nanny: a killed worker stays dead, so losing it really loses its tasks
        self.workers = [self._start(f"worker-{i}", [*DASK, "worker", "--scheduler-file", str(file), "--nthreads",
                                                    "1", "--no-nanny", "--no-dashboard", "--host", "127.0.0.1",
                                                    "--local-directory", str(folder), "--name", f"worker-{i}",
                                                    *tls_args])
                        for i in range(workers)]
        self._wait_for(workers)

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "w")  # noqa: SIM115 - kept open for the process's lifetime
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.folder)
        self.processes.append(process)
        return process

    def _wait_for(self, workers: int) -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            connected = sum("Registered to" in (self.folder / f"worker-{i}.log").read_text()
                            for i in range(workers))
            if connected == workers:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the workers did not connect: {self.log('scheduler')}")

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text()

    def cpu_seconds(self) -> list[float]:
        return [sum(psutil.Process(w.pid).cpu_times()[:2]) for w in self.workers]

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()  # nothing to save: the test has what it needs
            process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two workers for the module: the first test uses both, the second kills one."""
    started = Cluster(tmp_path_factory.mktemp("cluster"))
    yield started
    started.stop()


def test_training_on_a_dask_cluster_gives_the_local_figures_exactly(local_run, cluster, registry):
    before = cluster.cpu_seconds()
    stages: dict[str, int] = {}
    result = _train(registry, "dask", progress=lambda stage, n: stages.__setitem__(stage, stages.get(stage, 0) + n),
                    **{"compute.backend": "dask", "compute.address": cluster.address})
    worked = [after - b for after, b in zip(cluster.cpu_seconds(), before, strict=True)]
    assert _figures(result.card) == _figures(local_run.card)
    assert _figures(result.metrics) == _figures(local_run.metrics)
    assert result.model_type == local_run.model_type
    # both workers computed: each spent seconds of CPU on refits (an idle worker spends a few hundredths)
    assert min(worked) > 1.0, worked
    # the progress display saw every refit of the comparison (cox, null, published x 3 folds x 2 repeats)
    assert stages["cross-validation"] == 3 * 3 * 2


def test_a_lost_worker_costs_time_not_figures(local_run, cluster, registry):
    victim = cluster.workers[0]
    lost: dict[str, int] = {}

    def kill_mid_comparison(stage: str, n: int) -> None:
        if stage != "cross-validation" or victim.poll() is not None:
            return
        client = active_runner().client  # the run's own client, to see what the victim is running now
        address = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "worker-0")
        running = client.processing([address])[address]
        if running:  # killed holding chunks of refits: the scheduler must run them again elsewhere
            lost["chunks"] = len(running)
            os.kill(victim.pid, signal.SIGKILL)

    result = _train(registry, "lossy", progress=kill_mid_comparison,
                    **{"compute.backend": "dask", "compute.address": cluster.address})
    assert victim.wait(timeout=10) == -signal.SIGKILL
    assert lost["chunks"] >= 1
    assert "Remove worker" in cluster.log("scheduler")
    assert _figures(result.card) == _figures(local_run.card)


def test_a_local_dask_cluster_without_an_address(tmp_path):
    # compute.address omitted: a cluster of n_jobs workers on this machine, closed afterwards
    tasks = list(range(12))
    expected = run_chunked(_square_and_pid, tasks, 1, None, shared=(np.arange(12.0),))
    with use_compute(ComputeConfig(backend="dask"), n_jobs=2) as runner:
        assert len(runner.client.nthreads()) == 2
        got = run_chunked(_square_and_pid, tasks, 1, None, shared=(np.arange(12.0),))
    assert [g[0] for g in got] == [e[0] for e in expected]
    assert {g[1] for g in got} - {os.getpid()}, "the units ran in the cluster's worker processes"
    assert runner.client.status == "closed"


def _square_and_pid(values, chunk):
    return [(float(values[i] ** 2), os.getpid()) for i in chunk]


def _sent_by_value():
    """A function pickled with its code: a scheduler started by `dask scheduler` cannot import this test module."""

    def square_and_pid(values, chunk):
        return [(float(values[i] ** 2), os.getpid()) for i in chunk]

    return square_and_pid


def test_units_run_with_one_blas_thread():
    def threads(chunk):
        return [max((p["num_threads"] for p in threadpool_info()), default=1) for _ in chunk]

    assert WorkUnit(threads)([1, 2]) == [1, 1]


def _certificates(folder: Path) -> dict[str, str]:
    """A self-signed CA and a certificate it signs for 127.0.0.1 (scheduler, workers and client share it)."""

    def name(text):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, text)])

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("cnslrisk test CA")).issuer_name(name("cnslrisk test CA"))
          .public_key(ca_key.public_key()).serial_number(1).not_valid_before(now)
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    files = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return {k: str(v) for k, v in files.items()}


def test_tls_cluster_with_the_config_certificates(tmp_path):
    tls = _certificates(tmp_path)
    started = Cluster(tmp_path, workers=1, tls=tls)
    try:
        assert started.address.startswith("tls://")
        secure = ComputeConfig(backend="dask", address=started.address, tls_ca_file=tls["ca"],
                               tls_cert_file=tls["cert"], tls_key_file=tls["key"])
        with use_compute(secure):
            got = run_chunked(_sent_by_value(), [0, 1, 2], 1, None, shared=(np.arange(3.0),))
        assert [g[0] for g in got] == [0.0, 1.0, 4.0]
        with pytest.raises(ConfigError, match="compute.tls_cert_file, compute.tls_key_file"):
            with use_compute(ComputeConfig(backend="dask", address=started.address, tls_ca_file=tls["ca"])):
                pass
    finally:
        started.stop()


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as on an install without the extra
    with pytest.raises(ConfigError, match=re.escape('pip install "cnslrisk[dask]"')):
        with use_compute(ComputeConfig(backend="dask")):
            pass
