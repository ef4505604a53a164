"""Load benchmark of ``cnslrisk serve`` against ``mlflow models serve`` of the same registered model (on demand).

Bounded loopback run: N requests (default 5,000) of one patient each, C concurrent keep-alive connections (default
16), a hard time limit per server, 127.0.0.1 only. Reports throughput, p50/p90/p99/max latency and errors, plus
the in-process cost of ``score_records`` (the floor under any HTTP layer). Without ``--model`` it trains the
Cox champion in a temporary directory first (as in ``tests/serving/conftest.py``).

The load comes from ``wrk`` (Debian package ``wrk``: C, one thread, epoll), so the generator takes little of the
two cores the servers need; ``--client python`` uses threads of this process instead (no extra package, but on
two cores its own CPU and GIL waits inflate the latencies it measures).

    python benchmarks/bench_api.py                 # about 2 minutes on 2 cores
    python benchmarks/bench_api.py --requests 500  # quick
    python benchmarks/bench_api.py --kind rsf --workers 2 --skip-mlflow   # a forest champion, cnslrisk only
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from importlib import resources
from pathlib import Path

PATIENT = json.loads(resources.files("cnslrisk.data").joinpath("example_patient.json").read_text("utf-8"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, path: str, process: subprocess.Popen, timeout: float = 120) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with code {process.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"server on port {port} not ready after {timeout} s")


def load(port: int, path: str, body: bytes, total: int, concurrency: int, limit_s: float) -> dict:
    """``total`` POSTs over ``concurrency`` keep-alive connections; stops early at ``limit_s`` seconds."""
    latencies: list[float] = []
    errors = [0]
    issued = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + limit_s
    headers = {"Content-Type": "application/json"}

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < deadline:
            with lock:
                if issued[0] >= total:
                    break
                issued[0] += 1
            t0 = time.perf_counter()
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine.append(time.perf_counter() - t0)
            if not ok:
                with lock:
                    errors[0] += 1
        with lock:
            latencies.extend(mine)
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    ms = sorted(x * 1000 for x in latencies)
    q = statistics.quantiles(ms, n=100, method="inclusive")
    return {"requests": len(ms), "errors": errors[0], "seconds": elapsed, "throughput": len(ms) / elapsed,
            "p50": q[49], "p90": q[89], "p99": q[98], "max": ms[-1]}


# stops after the wanted number of responses and prints the counts and latency percentiles as JSON. wrk's main
# thread sleeps for the whole -d duration whatever its worker does, and measures the run up to its own wake-up,
# so the worker announces that it has stopped and load_wrk wakes wrk with SIGINT (its way of ending early).
_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("BENCH_BODY"), "rb"):read("*a")
local wanted, seen = tonumber(os.getenv("BENCH_REQUESTS")), 0
function response(status, headers, body)
  seen = seen + 1
  if seen == wanted then
    wrk.thread:stop()
    io.write("bench: enough responses\\n")
    io.stdout:flush()
  end
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "errors": %d, "us": %d, "p50": %f, "p90": %f, "p99": %f, "max": %f}\\n',
    summary.requests, e.connect + e.read + e.write + e.timeout + e.status, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def load_wrk(port: int, path: str, body: bytes, total: int, concurrency: int, limit_s: float) -> dict:
    """``total`` POSTs from wrk over ``concurrency`` keep-alive connections; stops early at ``limit_s`` seconds."""
    with tempfile.TemporaryDirectory() as scratch:
        script, body_file = Path(scratch) / "post.lua", Path(scratch) / "body.json"
        script.write_text(_WRK_SCRIPT)
        body_file.write_bytes(body)
        env = {**os.environ, "BENCH_BODY": str(body_file), "BENCH_REQUESTS": str(total)}
        wrk = subprocess.Popen(["wrk", "-t1", f"-c{concurrency}", f"-d{int(limit_s)}s", "--timeout", "30s",
                                "-s", str(script), f"http://127.0.0.1:{port}{path}"],
                               env=env, stdout=subprocess.PIPE, text=True)
        lines = []
        for line in wrk.stdout:
            lines.append(line)
            if line.startswith("bench: enough responses"):
                wrk.send_signal(signal.SIGINT)
        if wrk.wait() != 0:
            raise RuntimeError(f"wrk exited with code {wrk.returncode}: {''.join(lines)}")
    r = json.loads(lines[-1])
    seconds = r.pop("us") / 1e6
    return {**r, "seconds": seconds, "throughput": r["requests"] / seconds,
            **{k: r[k] / 1000 for k in ("p50", "p90", "p99", "max")}}


def run_server(command: list[str], env: dict, cwd: str, port: int, ready_path: str, body: bytes, path: str,
               args: argparse.Namespace, log: Path) -> dict:
    measure = load_wrk if args.client == "wrk" else load
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        try:
            ready = wait_ready(port, ready_path, process)
            measure(port, path, body, min(200, args.requests), args.concurrency, 30)  # warm-up, not counted
            result = measure(port, path, body, args.requests, args.concurrency, args.limit)
            result["one_client"] = measure(port, path, body, min(1000, args.requests), 1, 30)["p50"]
            result["ready_s"] = ready
            return result
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


def in_process(model_uri: str, tracking_uri: str, patient: dict, repeats: int = 300) -> float:
    from cnslrisk.registry import load_risk_model, use_tracking
    from cnslrisk.serving.scoring import score_records

    use_tracking(tracking_uri, explicit=True)
    model, _ = load_risk_model(model_uri)
    score_records(model, [patient], redact=True)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        score_records(model, [patient], redact=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


EIGHT = {"features.binary": ["pce", "lmd", "steroids", "ldh_elevated"], "features.categorical": ["cnsl_type"],
         "features.numeric": ["age", "ecog", "prior_lines"]}


def train_champion(directory: str, kind: str = "cox", eight: bool = False) -> tuple[str, str]:
    from cnslrisk.training import train

    tracking_uri = f"sqlite:///{directory}/mlflow.db"
    os.chdir(directory)
    result = train(overrides={"models.fit": [kind], "validation.repeats": 1, "validation.bootstrap": 10,
                              "n_jobs": 1, "mlflow.tracking_uri": tracking_uri, **(EIGHT if eight else {})})
    return f"models:/{result.name}/{result.version}", tracking_uri


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="registered model URI (default: train a --kind champion in a temp dir)")
    parser.add_argument("--kind", choices=("cox", "rsf"), default="cox",
                        help="model type of the champion trained without --model (rsf: 200 trees, jackknife band)")
    parser.add_argument("--skip-mlflow", action="store_true", help="measure cnslrisk serve only")
    parser.add_argument("--eight-covariates", action="store_true",
                        help="train on the eight baseline covariates of the data dictionary, not the bundled config's")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI of --model")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--limit", type=float, default=150.0, help="seconds per server, at most")
    parser.add_argument("--workers", default="1,2", help="cnslrisk serve worker counts to measure, e.g. 1,2")
    parser.add_argument("--client", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python",
                        help="load generator (default wrk when installed)")
    parser.add_argument("--log-level", default="info",
                        help="cnslrisk serve --log-level (default info, the serve default: access log on)")
    parser.add_argument("--without-response", action="store_true",
                        help="send the example patient without its best response, as known at infusion (no "
                             "post-response prediction)")
    args = parser.parse_args()
    patient = {k: v for k, v in PATIENT.items() if k != "best_response"} if args.without_response else PATIENT

    directory = tempfile.mkdtemp(prefix="bench_api_")
    if args.model:
        model_uri, tracking_uri = args.model, args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI", "")
    else:
        model_uri, tracking_uri = train_champion(directory, args.kind, args.eight_covariates)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri, "PATH": bin_dir + os.pathsep + os.environ["PATH"]}
    env.pop("CNSLRISK_API_TOKEN", None)
    body = json.dumps(patient).encode()
    results = {}
    for workers in (int(w) for w in args.workers.split(",")):
        port = free_port()
        results[f"cnslrisk serve --workers {workers} --log-level {args.log_level}"] = run_server(
            [sys.executable, "-m", "cnslrisk.cli", "serve", "--model", model_uri, "--port", str(port),
             "--tracking-uri", tracking_uri, "--workers", str(workers),
             "--log-level", args.log_level], env, directory, port, "/health", body,
            "/v1/predict", args, Path(directory) / f"cnslrisk{workers}.log")
    port = free_port()
    results["mlflow models serve (1 worker)"] = None if args.skip_mlflow else run_server(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri, "--env-manager", "local", "-p", str(port),
         "--host", "127.0.0.1"], env, directory, port, "/ping",
        json.dumps({"dataframe_records": [patient]}).encode(), "/invocations", args, Path(directory) / "mlflow.log")
    floor = in_process(model_uri, tracking_uri, patient)

    given = "without" if args.without_response else "with"
    print(f"\n{args.requests} requests of one patient ({given} a best response), {args.concurrency} concurrent "
          f"keep-alive connections ({args.client} client), 127.0.0.1, {os.cpu_count()} CPUs; model {model_uri}\n")
    print("| server | ready (s) | requests | errors | throughput (req/s) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) "
          "| p50, 1 connection (ms) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        if r is None:
            continue
        print(f"| {name} | {r['ready_s']:.1f} | {r['requests']} | {r['errors']} | {r['throughput']:.0f} | "
              f"{r['p50']:.1f} | {r['p90']:.1f} | {r['p99']:.1f} | {r['max']:.1f} | {r['one_client']:.2f} |")
    print(f"\nin-process score_records, one patient, median of 300: {floor:.2f} ms")


if __name__ == "__main__":
    main()
