"""The REST API against a real HTTP server: `cnslrisk serve` in a subprocess (and uvicorn in a thread where the
test must reach inside, e.g. to move an alias), on a free loopback port."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cnslrisk.model.contract import data_dictionary
from cnslrisk.registry import model_card
from cnslrisk.serving.scoring import score_records

PATIENT = {"patient_id": "EXAMPLE-001", "age": 62, "sex": "female", "ecog": 1, "cnsl_type": "primary",
           "prior_lines": 2, "car_product": "axi-cel", "bridging": "radiotherapy", "steroids": True,
           "ldh_elevated": False, "pce": True, "lmd": False}
JSON = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(base: str, process: subprocess.Popen | None = None, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode}")
        # a connection made while the workers still load the model waits in the backlog: a timeout, not an error
        with contextlib.suppress(requests.ConnectionError, requests.Timeout):
            if requests.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{base} not healthy after {timeout} s")


@contextlib.contextmanager
def serve_subprocess(registered, log_path: Path, *extra: str, env: dict | None = None) -> Iterator[str]:
    """`cnslrisk serve` as a child process, its stdout and stderr written to ``log_path``."""
    port = free_port()
    command = [sys.executable, "-m", "cnslrisk.cli", "serve", "--model", registered.model_uri,
               "--tracking-uri", registered.tracking_uri, "--port", str(port), *extra]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=registered.directory, env=env)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(base, process)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def serve_thread(app) -> Iterator[str]:
    """uvicorn in a thread of this process (shares the MLflow registry with the test)."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, timeout=30)
        yield base
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def server(registered, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("api") / "server.log"
    with serve_subprocess(registered, log_path, "--log-level", "debug") as base:
        yield base, log_path


def local(model, records, **kwargs):
    """What the server must answer: score_records through JSON (as the wire carries it)."""
    return json.loads(json.dumps(score_records(model, records, **kwargs)))


def post(base: str, body, *, params=None, headers=JSON, data=None):
    payload = json.dumps(body) if data is None else data
    return requests.post(f"{base}/v1/predict", data=payload, params=params, headers=headers, timeout=30)


def test_predict_one_patient_equals_score_records(server, registered):
    base, _ = server
    response = post(base, PATIENT)
    assert response.status_code == 200
    assert response.json() == local(registered.model, [PATIENT])


def test_predict_equals_cli_score_json(server, registered):
    from typer.testing import CliRunner

    from cnslrisk.cli import app

    cli = CliRunner().invoke(app, ["score", "--model", registered.model_uri, "--tracking-uri", registered.tracking_uri,
                                   "--patient", json.dumps(PATIENT), "--json", "--curve"])
    assert cli.exit_code == 0, cli.output
    response = post(server[0], PATIENT, params={"curve": "true"})
    assert response.json() == json.loads(cli.stdout)


def test_predict_list_with_horizons_and_curve(server, registered):
    second = {**PATIENT, "patient_id": "EXAMPLE-002", "pce": False, "lmd": True, "age": 45.5}
    response = post(server[0], [PATIENT, second], params={"curve": "true", "horizons": [1, 6, 24]})
    assert response.status_code == 200
    body = response.json()
    assert body == local(registered.model, [PATIENT, second], horizons=(1.0, 6.0, 24.0), curve=True)
    assert [row["patient_id"] for row in body["predictions"]] == ["EXAMPLE-001", "EXAMPLE-002"]
    assert {"survival_24", "survival_24_lower", "curve"} <= set(body["predictions"][1])


def test_long_list_scored_off_the_event_loop_equals_score_records(server, registered):
    from cnslrisk.serving.api.routers.predict import INLINE_PATIENTS

    patients = [{**PATIENT, "patient_id": f"P-{i}", "age": 30.0 + i, "lmd": i % 2 == 0}
                for i in range(INLINE_PATIENTS + 9)]
    response = post(server[0], patients)
    assert response.status_code == 200
    assert response.json() == local(registered.model, patients)


def test_model_endpoint(server, registered):
    body = requests.get(f"{server[0]}/v1/model", timeout=10).json()
    model = registered.model
    assert (body["name"], body["version"], body["alias"]) == ("cnslrisk-pfs1", "1", "champion")
    assert body["card"] == json.loads(json.dumps(model_card(model)))
    assert body["training_km"] == model.training_km
    names = [f["name"] for f in body["inputs"]]
    assert sorted(names) == sorted([model.features["id"], *model.feature_columns, model.landmark.response])
    dictionary = data_dictionary().by_name()
    for spec in body["inputs"]:
        assert (spec["unit"], spec["levels"], spec["min"], spec["max"]) == (
            dictionary[spec["name"]].unit, list(dictionary[spec["name"]].levels),
            dictionary[spec["name"]].min, dictionary[spec["name"]].max)


def test_health(server):
    assert requests.get(f"{server[0]}/health", timeout=5).json() == {"status": "ok", "model_version": "1"}


def test_openapi_schema_comes_from_the_dictionary(server, registered):
    spec = requests.get(f"{server[0]}/openapi.json", timeout=10).json()
    assert requests.get(f"{server[0]}/docs", timeout=10).status_code == 200
    patient = spec["components"]["schemas"]["Patient"]
    assert patient["additionalProperties"] is False
    assert sorted(patient["required"]) == sorted(registered.model.feature_columns)
    used = {registered.model.features["id"], *registered.model.feature_columns, registered.model.landmark.response}
    for field in data_dictionary().fields:
        prop = patient["properties"][field.name]
        assert field.description in prop["description"]
        if field.name not in used:  # the validator passes unused dictionary fields over unchecked; so does the schema
            assert "passed over unchecked" in prop["description"] and "type" not in prop
            continue
        assert field.expected() in prop["description"]
        assert prop.get("x-unit") == field.unit
        flat = json.dumps(prop)
        if field.levels:
            assert all(f'"{level}"' in flat for level in field.levels)
        if field.max is not None:
            assert f'"maximum": {field.max}' in flat or f'"maximum": {float(field.max)}' in flat


def _locs(response) -> list[list]:
    return [item["loc"] for item in response.json()["detail"]]


def test_every_invalid_field_is_named(server):
    bad = {**PATIENT, "age": 500, "pce": "maybe", "ecog": 7, "cnsl_type": "tertiary", "colour": "blue"}
    del bad["lmd"]
    response = post(server[0], bad)
    assert response.status_code == 422
    assert sorted(map(tuple, _locs(response))) == sorted(
        [("body", "age"), ("body", "pce"), ("body", "ecog"), ("body", "cnsl_type"), ("body", "colour"),
         ("body", "lmd")])
    messages = " ".join(item["msg"] for item in response.json()["detail"])
    assert "field age: " in messages and "expected a number >= 18 and <= 100 (years)" in messages
    assert "500" not in messages and "maybe" not in messages and "tertiary" not in messages


def test_list_errors_name_the_index_and_field(server):
    response = post(server[0], [PATIENT, {**PATIENT, "age": 10}])
    assert response.status_code == 422
    assert _locs(response) == [["body", 1, "age"]]


def test_validator_problems_become_422_items_without_values(server):
    response = post(server[0], [PATIENT, dict(PATIENT)])  # duplicate identifier: the validator's rule, not pydantic's
    assert response.status_code == 422
    assert ["body", 1, "patient_id"] in _locs(response)
    assert "EXAMPLE-001" not in response.text


@pytest.mark.parametrize(("data", "headers", "status", "loc"), [
    ("{", JSON, 422, ["body"]),
    ("", JSON, 422, ["body"]),
    ("[]", JSON, 422, ["body"]),
    ('"patient"', JSON, 422, ["body"]),
    ("{}", {"Content-Type": "text/plain"}, 415, ["header", "content-type"]),
    ("{}", {}, 415, ["header", "content-type"]),
    ("x" * ((1 << 20) + 1), JSON, 413, ["body"]),
])
def test_bad_bodies_are_4xx_naming_what_is_wrong(server, data, headers, status, loc):
    response = post(server[0], None, data=data, headers=headers)
    assert response.status_code == status
    assert loc in _locs(response)


def test_oversized_chunked_body_is_413(server):
    def chunks():
        for _ in range(40):
            yield b" " * 65536  # 2.5 MiB without a Content-Length

    response = requests.post(f"{server[0]}/v1/predict", data=chunks(), headers=JSON, timeout=30)
    assert response.status_code == 413


def test_bad_query_is_422_naming_it(server):
    response = post(server[0], PATIENT, params={"horizons": [6, 3]})
    assert response.status_code == 422
    assert _locs(response) == [["query", "horizons"]]
    assert post(server[0], PATIENT, params={"curve": "perhaps"}).json()["detail"][0]["loc"] == ["query", "curve"]


def test_logs_carry_no_patient_values(server):
    base, log_path = server
    secret = {**PATIENT, "patient_id": "PID-SECRET-93817", "age": 87.123456}
    assert post(base, secret).status_code == 200
    assert post(base, {**secret, "ecog": 9.654321}).status_code == 422
    assert post(base, [secret, {**secret, "prior_lines": 31337}]).status_code == 422
    assert post(base, None, data=json.dumps(secret)[:-3], headers=JSON).status_code == 422
    time.sleep(0.5)  # let the server flush its log lines
    text = log_path.read_text()
    assert '"POST /v1/predict' in text and "422" in text  # the log is captured
    for value in ("PID-SECRET-93817", "87.123456", "9.654321", "31337", "EXAMPLE-001"):
        assert value not in text


def test_bearer_token(registered):
    from cnslrisk.serving.api import create_app

    app = create_app(registered.model_uri, tracking_uri=registered.tracking_uri, token="s3cret-token")
    with serve_thread(app) as base:
        assert requests.get(f"{base}/health", timeout=5).status_code == 200
        for headers in (JSON, {**JSON, "Authorization": "Bearer wrong"}, {**JSON, "Authorization": "Basic s3cret"}):
            response = post(base, PATIENT, headers=headers)
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert _locs(response) == [["header", "authorization"]]
        assert requests.get(f"{base}/v1/model", timeout=5).status_code == 401
        assert post(base, PATIENT, headers={**JSON, "Authorization": "Bearer s3cret-token"}).status_code == 200


def test_alias_change_is_picked_up_on_reload_and_on_schedule(registered):
    from mlflow import MlflowClient

    from cnslrisk.serving.api import create_app

    client = MlflowClient(registered.tracking_uri)
    name = registered.model_uri.split("/")[1].split("@")[0]
    first = str(client.get_model_version_by_alias(name, "champion").version)
    source = client.get_model_version(name, first)
    second = str(client.create_model_version(name, source.source, run_id=source.run_id).version)
    on_request = create_app(registered.model_uri, tracking_uri=registered.tracking_uri, refresh_seconds=0)
    scheduled = create_app(registered.model_uri, tracking_uri=registered.tracking_uri, refresh_seconds=0.5)
    try:
        with serve_thread(on_request) as base, serve_thread(scheduled) as timed:
            client.set_registered_model_alias(name, "champion", second)
            time.sleep(1.0)  # two refresh periods: only the scheduled server may move on its own
            assert requests.get(f"{base}/health", timeout=5).json()["model_version"] == first
            reloaded = requests.post(f"{base}/v1/model/reload", timeout=30).json()
            assert reloaded == {"changed": True, "version": second, "model_uri": registered.model_uri}
            assert requests.get(f"{base}/v1/model", timeout=5).json()["version"] == second
            assert post(base, PATIENT).json()["provenance"]["model_version"] == second
            assert requests.post(f"{base}/v1/model/reload", timeout=30).json()["changed"] is False
            deadline = time.monotonic() + 15
            while requests.get(f"{timed}/health", timeout=5).json()["model_version"] != second:
                assert time.monotonic() < deadline, "alias change not picked up by the schedule"
                time.sleep(0.2)
    finally:
        client.set_registered_model_alias(name, "champion", first)


def test_server_freezes_its_long_lived_heap_at_start(registered):
    """A full garbage collection walks every object of the process (about 0.2 s): it was the p99 of a loaded server."""
    import gc

    from cnslrisk.serving.api import create_app

    app = create_app(registered.model_uri, tracking_uri=registered.tracking_uri, refresh_seconds=0)
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    with serve_thread(app) as base:
        assert post(base, PATIENT).status_code == 200
        assert gc.get_freeze_count() > 0


def _connections_by_process(port: int) -> dict[int, int]:
    """Established TCP connections whose local port is ``port``, counted per process holding them (Linux /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            for line in list(lines)[1:]:
                local, state, inode = line.split()[1], line.split()[3], line.split()[9]
                if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                    inodes.add(f"socket:[{inode}]")
    counts = {}
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            held = sum(1 for fd in fd_dir.iterdir() if os.readlink(fd) in inodes)
            if held:
                counts[int(fd_dir.parent.name)] = held
    return counts


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_several_workers_answer_the_same_and_share_a_burst_of_connections(registered, tmp_path):
    with serve_subprocess(registered, tmp_path / "workers.log", "--workers", "2") as base:
        port = int(base.rsplit(":", 1)[1])
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(16)]
        for connection in connections:  # 16 keep-alive connections opened in one burst, as a load balancer does
            connection.connect()
        answers = []
        for connection in connections:
            connection.request("POST", "/v1/predict", json.dumps(PATIENT), JSON)
            answers.append(json.loads(connection.getresponse().read()))
        held = _connections_by_process(port)
        for connection in connections:
            connection.close()
    assert all(answer == local(registered.model, [PATIENT]) for answer in answers)
    # each worker accepts on its own SO_REUSEPORT socket, so the kernel spreads the connections by address hash:
    # all 16 on one worker has probability 2 / 2**16 (uvicorn's shared socket gave them all to one worker often)
    assert len(held) == 2 and sum(held.values()) == 16, held
