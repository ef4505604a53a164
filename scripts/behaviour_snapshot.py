"""Record what the installed ``cnslrisk`` does on the bundled example, to compare two versions of the code.

Runs the public commands only (so it works across internal reorganisations): ``cnslrisk train`` with
the bundled config, ``card --json``, ``score`` of the example patient (``--json --curve``) and of the
example cohort (a CSV file), and the REST API (``POST /v1/predict``, ``GET /v1/model``) of a real
``cnslrisk serve`` process. Run ids, times, versions of packages and git revisions are left out; all
else is written as one JSON file.

Usage::

    python scripts/behaviour_snapshot.py --out before.json      # on the old code
    python scripts/behaviour_snapshot.py --out after.json       # on the new code
    python scripts/behaviour_snapshot.py --compare before.json after.json [--rtol 1e-12]

``--set KEY=VALUE`` passes config overrides to ``cnslrisk train`` (e.g. ``--set validation.repeats=2``
for a quicker check); the comparison is meaningful only between snapshots made with the same ones.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# keys whose values differ between two runs of the same code
_VOLATILE = re.compile(r"(run_id|seconds.*|git_revision|^version\.|created|timestamp|loaded_at|mlflow_version"
                       r"|artifact_bytes|model_uri)$")


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not _VOLATILE.search(str(k))}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _run(*args: str, env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run(["cnslrisk", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"cnslrisk {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(url: str, body: Any | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _api(env: dict[str, str], cwd: Path, patient: dict[str, Any]) -> dict[str, Any]:
    port = _free_port()
    server = subprocess.Popen(["cnslrisk", "serve", "--port", str(port), "--log-level", "warning"], env=env, cwd=cwd,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                _http(f"{base}/health")
                break
            except OSError:
                time.sleep(0.1)
        return {"predict": _http(f"{base}/v1/predict", patient), "model": _http(f"{base}/v1/model")}
    finally:
        server.terminate()
        server.wait(timeout=30)


def snapshot(overrides: list[str]) -> dict[str, Any]:
    """Train on the bundled example in a scratch folder and record every public output."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
        sets = [arg for pair in overrides for arg in ("--set", pair)]
        # the progress display shares stdout with the JSON: the JSON is the block from the last line "{"
        printed = _run("train", "--json", *sets, env=env, cwd=work)
        trained = json.loads(printed[printed.rindex("\n{") + 1:] if not printed.startswith("{") else printed)
        card = json.loads(_run("card", "--json", env=env, cwd=work))
        patient_file = ROOT / "data" / "example_patient.json"
        scored_patient = json.loads(_run("score", "--patient-file", str(patient_file), "--json", "--curve",
                                         env=env, cwd=work))
        _run("score", "--input", str(ROOT / "data" / "example_cohort.csv"), "--out", str(work / "scored.csv"),
             env=env, cwd=work)
        with open(work / "scored.csv", newline="") as handle:
            scored_cohort = list(csv.DictReader(handle))
        api = _api(env, work, json.loads(patient_file.read_text()))
    return _strip({"train": trained, "card": card, "score_patient": scored_patient, "score_cohort": scored_cohort,
                   "api": api})


def _differences(a: Any, b: Any, path: str = "", rtol: float = 0.0) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in the first" for k in a.keys() - b.keys()]
        out += [f"{path}.{k}: only in the second" for k in b.keys() - a.keys()]
        for k in sorted(a.keys() & b.keys()):
            out += _differences(a[k], b[k], f"{path}.{k}", rtol)
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items against {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _differences(x, y, f"{path}[{i}]", rtol)]
    numbers = all(isinstance(v, float | int) and not isinstance(v, bool) for v in (a, b))
    if numbers and rtol and abs(a - b) <= rtol * max(abs(a), abs(b)):
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the snapshot here")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override for train")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    parser.add_argument("--rtol", type=float, default=0.0, help="numbers this close (relative) count as equal")
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        differences = _differences(before, after, rtol=args.rtol)
        for line in differences[:50]:
            print(line)
        tolerance = f" (numbers to a relative {args.rtol:g})" if args.rtol else ""
        print(f"{len(differences)} difference(s)" if differences else f"identical{tolerance}: train, card, scores, API")
        return 1 if differences else 0
    if args.out is None:
        parser.error("give --out or --compare")
    args.out.write_text(json.dumps(snapshot(args.overrides), indent=1, sort_keys=True))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
