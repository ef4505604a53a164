"""Random survival forests on registry-sized cohorts: fit time and memory, validation memory, 1M-row scoring.

Run on demand (not a test)::

    python benchmarks/bench_forest.py fit                 # one 500-tree forest at n = 686, 5,000, 50,000
    python benchmarks/bench_forest.py fit --sizes 5000 --grid default
    python benchmarks/bench_forest.py validate            # cnslrisk train, rsf only, 5 x 10 CV, n = 5,000
    python benchmarks/bench_forest.py score               # 1M rows end to end: forest vs Cox champion

Cohorts are ``generate_cohort(n, seed=0)`` (``cnslrisk synth`` for the CLI runs; n = 60 is the bundled
example) with their native 0.01-month times (no rounding), with the covariates of :data:`FEATURES`.
Each measured job runs in its own process; this benchmark samples, every 50 ms, the resident memory
(``VmRSS``) of that process and of all its descendants (joblib workers included) and reports the peak
of their sum: shared pages are counted once per process, so it is an upper bound of what the tree
needs. Wall times include process start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FEATURES = {"binary": ["pce", "lmd", "steroids", "ldh_elevated"], "categorical": ["cnsl_type"],
            "numeric": ["age", "ecog", "prior_lines"]}

FIT_SCRIPT = """
import json, sys, time
import numpy as np
from sksurv.util import Surv
from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model.estimators import SurvivalForest
from cnslrisk.model.features import FeatureEncoder
n, trees, grid = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
cohort = generate_cohort(n, seed=0)
X = np.asarray(FeatureEncoder(**json.loads(sys.argv[4])).fit_transform(cohort), dtype=float)
y = Surv.from_arrays(cohort["pfs1_event"], cohort["pfs1_months"])
start = time.perf_counter()
forest = SurvivalForest(trees, param_grid=grid, random_state=0, n_jobs=2).fit(X, y)
seconds = time.perf_counter() - start
c = forest.compact_
print(json.dumps({"fit_s": seconds, "times": int(np.unique(y["time"]).size), "event_times": int(c.times_.size),
                  "nodes": int(c.arrays["node_offsets"][-1]), "steps": int(c.arrays["step_ptr"][-1]),
                  "forest_mb": (sum(a.nbytes for a in c.arrays.values()) + c.inbag_gram.nbytes) / 1e6,
                  "oob_c": [float(s) for s in forest.cv_results_["mean_test_score"]]}))
"""


def _tree_rss_kb(root: int) -> int:
    """Resident kB of ``root`` and every descendant (one pass over /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        pid = int(entry.name)
        children.setdefault(int(fields["PPid"]), []).append(pid)
        rss[pid] = int(fields.get("VmRSS", "0 kB").split()[0])
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def watched(command: list[str], **kwargs) -> tuple[float, float, str]:
    """Run ``command``; return (wall seconds, peak MB of its whole process tree, stdout)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, **kwargs)
    peak = 0
    while process.poll() is None:
        peak = max(peak, _tree_rss_kb(process.pid))
        time.sleep(0.05)
    out = process.stdout.read()
    if process.returncode:
        raise SystemExit(f"{command[:4]} failed with exit code {process.returncode}")
    return time.perf_counter() - start, peak / 1024, out


def bench_fit(sizes: list[int], trees: int, grid: str) -> None:
    point = {"min_samples_leaf": [3], "max_features": ["sqrt"]} if grid == "one" else None
    print("| n | distinct times | event times | grid | fit s | wall s | peak MB (process tree) | nodes | "
          "leaf steps | forest MB | load average |\n|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for n in sizes:
        load = os.getloadavg()[0]
        wall, peak, out = watched([sys.executable, "-c", FIT_SCRIPT, str(n), str(trees), json.dumps(point),
                                   json.dumps(FEATURES)])
        r = json.loads(out.strip().splitlines()[-1])
        label = "leaf 3" if grid == "one" else "leaf {3, 8}, OOB"
        print(f"| {n:,} | {r['times']:,} | {r['event_times']:,} | {label} | {r['fit_s']:.1f} | {wall:.1f} | "
              f"{peak:,.0f} | {r['nodes']:,} | {r['steps']:,} | {r['forest_mb']:.1f} | {load:.2f} |", flush=True)


def _cohort_and_config(folder: Path, n: int, fit: str) -> Path:
    """The bundled config on a synthetic cohort of ``n`` (60: the bundled example), with :data:`FEATURES`."""
    from cnslrisk.training.config import default_config_path

    bundled = default_config_path()
    cohort = bundled.parent / "example_cohort.csv" if n == 60 else folder / f"cohort_{n}.csv"
    if not cohort.exists():
        subprocess.run([sys.executable, "-m", "cnslrisk.cli", "synth", "--n", str(n), "--seed", "0", "--out",
                        str(cohort)], check=True, capture_output=True)
    text = bundled.read_text().replace('path = "example_cohort.csv"', f'path = "{cohort}"')
    text = text.replace('fit = ["cox", "coxnet", "rsf"]', f"fit = {fit}")
    text = text.replace('tracking_uri = "sqlite:///mlflow.db"', f'tracking_uri = "sqlite:///{folder}/mlflow.db"')
    start, stop = text.index("[features]"), text.index("[models]")
    features = "".join(f"{kind} = {json.dumps(list(names))}\n" for kind, names in FEATURES.items())
    text = f"{text[:start]}[features]\n{features}\n{text[stop:]}"
    config = folder / f"config_{n}_{fit.strip('[]').replace(chr(34), '')}.toml"
    config.write_text(text)
    return config


def bench_validate(n: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench-forest-"))
    config = _cohort_and_config(folder, n, '["rsf"]')
    load = os.getloadavg()[0]
    wall, peak, _ = watched([sys.executable, "-m", "cnslrisk.cli", "train", "--config", str(config)], cwd=folder)
    print(f"cnslrisk train, rsf only, bundled validation (5 x 10 CV), n = {n:,}: {wall:.0f} s, "
          f"peak {peak:,.0f} MB for the whole process tree (load average before: {load:.2f})")


def bench_score(rows: int, sizes: list[int]) -> None:
    from cnslrisk.data.synthetic import write_synthetic_cohort

    folder = Path(tempfile.mkdtemp(prefix="bench-forest-score-"))
    big = write_synthetic_cohort(folder / "registry.parquet", rows, seed=1)
    uri = f"sqlite:///{folder}/mlflow.db"
    print(f"| champion | trained on n | trees | cnslrisk score, {rows:,} rows, wall s | peak MB | "
          f"ratio to Cox |\n|---|---:|---:|---:|---:|---:|")
    for n in sizes:
        walls = {}
        for kind in ("cox", "rsf"):
            from cnslrisk.training import train

            config = _cohort_and_config(folder, n, f'["{kind}"]')
            overrides = {"models.fit": [kind], "validation.repeats": 1, "validation.bootstrap": 10,
                         "mlflow.tracking_uri": uri, "mlflow.registered_model": f"bench-{kind}-{n}"}
            result = train(config, overrides=overrides)
            model = f"models:/{result.name}/{result.version}"
            cli = [sys.executable, "-m", "cnslrisk.cli", "score", "--model", model, "--tracking-uri", uri,
                   "--input", str(big), "--out", str(folder / f"out_{kind}_{n}.parquet")]
            wall, peak, _ = watched(cli)
            walls[kind] = wall
            trees = "" if kind == "cox" else "200"
            print(f"| {kind} | {n:,} | {trees} | {wall:.1f} | {peak:,.0f} | {wall / walls['cox']:.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["fit", "validate", "score"])
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--trees", type=int, default=500)
    parser.add_argument("--grid", choices=["one", "default"], default="one")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"({time.strftime('%d %b %Y %H:%M')}, load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs)")
    if args.what == "fit":
        bench_fit(args.sizes or [686, 5000, 50_000], args.trees, args.grid)
    elif args.what == "validate":
        bench_validate((args.sizes or [5000])[0])
    else:
        bench_score(args.rows, args.sizes or [60, 5000])


if __name__ == "__main__":
    main()
