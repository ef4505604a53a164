"""scikit-survival's RandomSurvivalForest against cnslrisk's CompactForest, side by side in one run.

Run on demand (not a test)::

    python benchmarks/bench_forest.py            # example-sized (60) and 5,000-patient cohorts, 500 trees
    python benchmarks/bench_forest.py --quick    # 50 trees, 500 patients: a smoke run

For each cohort one sksurv forest is fitted (``min_samples_leaf=3``, ``max_features="sqrt"``,
``random_state=0``, serial), pickled with joblib and converted to a CompactForest (``.npz`` +
JSON). Each engine is then measured in its own fresh subprocess, so load time and peak memory are
not polluted by the other one; CompactForest is measured twice, with its default threads (one per
CPU) and with one thread. "Scoring" is what the scorer asks of the forest: the risk score plus
survival at 3, 6 and 12 months.

Peak memory is the subprocess's own high-water mark (``VmHWM`` in ``/proc/self/status``, which
includes the interpreter and imports). Not ``ru_maxrss``: Linux carries that across fork and exec,
so a child started by this (large) benchmark process reports at least the parent's peak.

On the 5,000-patient cohort the outcome times are rounded UP to whole months before fitting: with
the cohort's native 0.01-month times, scikit-survival's grid holds every distinct time (about 2,400
here) in every node of every tree, tens of GB for 500 trees, more than this shared machine has.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import joblib
import numpy as np
from sksurv.ensemble import RandomSurvivalForest
from sksurv.util import Surv

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model.estimators import CompactForest
from cnslrisk.model.estimators._breslow import step_lookup
from cnslrisk.model.features import FeatureEncoder

FEATURES = {
    "binary": ("pce", "lmd", "steroids", "ldh_elevated"),
    "categorical": ("cnsl_type", "car_product", "bridging"),
    "numeric": ("age", "ecog", "prior_lines"),
}
HORIZONS = np.array([3.0, 6.0, 12.0])


def _score(engine: str, model, X: np.ndarray) -> np.ndarray:
    """Risk score and survival at HORIZONS, shape (n, 4)."""
    if engine == "sksurv":
        curves = model.predict_survival_function(X, return_array=True)
        surv = step_lookup(model.unique_times_, curves, HORIZONS, axis=1, before=1.0)
        return np.column_stack([model.predict(X), surv])
    risk, surv = model.predict_with_survival(X, HORIZONS)  # one routing for both
    return np.column_stack([risk, surv])


ENGINES = ("sksurv", "compact", "compact-1-thread")


def _peak_mb() -> float:
    """This process's peak resident memory (MB)."""
    status = Path("/proc/self/status")
    if status.is_file():
        return int(status.read_text().split("VmHWM:")[1].split()[0]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # elsewhere: may include the parent's


def _worker(engine: str, folder: Path, repeats: int) -> None:
    """Load one engine, time it, save its scores on the big batch; print a JSON line."""
    start = time.perf_counter()
    if engine == "sksurv":
        model = joblib.load(folder / "sksurv.joblib")
    else:
        model = CompactForest.load(folder / "compact", json.loads((folder / "record.json").read_text()))
        if engine == "compact-1-thread":
            model.n_threads = 1
    load_s = time.perf_counter() - start
    rss_loaded = _peak_mb()
    batch = np.load(folder / "batch.npy")
    _score(engine, model, batch[:1])  # warm-up
    latencies = []
    for i in range(repeats):
        start = time.perf_counter()
        _score(engine, model, batch[i : i + 1])
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    scores = _score(engine, model, batch)
    batch_s = time.perf_counter() - start
    np.save(folder / f"scores_{engine}.npy", scores)
    print(json.dumps({
        "load_s": load_s, "one_row_ms": 1000 * float(np.median(latencies)), "batch_s": batch_s,
        "rss_loaded_mb": rss_loaded, "rss_peak_mb": _peak_mb(),
    }))


def _measure(engine: str, folder: Path, repeats: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", engine, str(folder), "--repeats", str(repeats)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(name: str, n: int, n_trees: int, n_rows: int, whole_months: bool, repeats: int) -> None:
    """Fit, store and compare both engines on one cohort; print a Markdown table."""
    cohort = generate_cohort(n, seed=0)
    time_ = np.ceil(cohort["pfs1_months"].to_numpy()) if whole_months else cohort["pfs1_months"].to_numpy()
    encoder = FeatureEncoder(**FEATURES).fit(cohort)
    X = np.asarray(encoder.transform(cohort), dtype=float)
    start = time.perf_counter()
    rsf = RandomSurvivalForest(n_estimators=n_trees, min_samples_leaf=3, max_features="sqrt", random_state=0)
    rsf.fit(X, Surv.from_arrays(cohort["pfs1_event"], time_))
    fit_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        joblib.dump(rsf, folder / "sksurv.joblib")
        start = time.perf_counter()
        compact = CompactForest.from_sksurv(rsf)
        convert_s = time.perf_counter() - start
        (folder / "record.json").write_text(json.dumps(compact.save(folder / "compact")))
        grid = (rsf.unique_times_.size, compact.times_.size)
        del rsf, compact
        np.save(folder / "batch.npy", np.asarray(encoder.transform(generate_cohort(n_rows, seed=1)), dtype=float))
        sizes = {"sksurv": (folder / "sksurv.joblib").stat().st_size,
                 "compact": sum(p.stat().st_size for p in (folder / "compact").iterdir())}
        load_avg = os.getloadavg()[0]
        results = {engine: _measure(engine, folder, repeats) for engine in ENGINES}
        reference = np.load(folder / "scores_sksurv.npy")
        diff = np.max([np.abs(np.load(folder / f"scores_{engine}.npy") - reference).max(axis=0)
                       for engine in ENGINES[1:]], axis=0)
    s, c, c1 = (results[engine] for engine in ENGINES)
    print(f"\n### {name}: {n} patients, {n_trees} trees, grid {grid[0]} sksurv times -> {grid[1]} event times"
          f"{' (times rounded up to whole months)' if whole_months else ''}")
    print(f"sksurv fit {fit_s:.1f} s (serial); conversion to CompactForest {convert_s:.2f} s; "
          f"load average before measuring {load_avg:.2f}\n")
    print("| measure | scikit-survival | CompactForest | ratio |\n|---|---:|---:|---:|")
    print(f"| artifact size (MB) | {sizes['sksurv'] / 1e6:.2f} | {sizes['compact'] / 1e6:.3f} | "
          f"{sizes['sksurv'] / sizes['compact']:.0f}x smaller |")
    print(f"| load time (s) | {s['load_s']:.3f} | {c['load_s']:.3f} | {s['load_s'] / c['load_s']:.0f}x faster |")
    print(f"| one-row scoring, median of {repeats} (ms) | {s['one_row_ms']:.1f} | {c['one_row_ms']:.2f} | "
          f"{s['one_row_ms'] / c['one_row_ms']:.0f}x faster |")
    print(f"| {n_rows:,}-row scoring (s) | {s['batch_s']:.2f} | {c['batch_s']:.3f} | "
          f"{s['batch_s'] / c['batch_s']:.1f}x faster |")
    print(f"| {n_rows:,}-row scoring, CompactForest on one thread (s) | {s['batch_s']:.2f} | {c1['batch_s']:.3f} | "
          f"{s['batch_s'] / c1['batch_s']:.1f}x faster |")
    print(f"| peak RSS after load (MB) | {s['rss_loaded_mb']:.0f} | {c['rss_loaded_mb']:.0f} | |")
    print(f"| peak RSS after scoring (MB) | {s['rss_peak_mb']:.0f} | {c['rss_peak_mb']:.0f} | |")
    print(f"| max abs difference (both thread settings): risk; S(3), S(6), S(12) | | | {diff[0]:.1e}; "
          f"{', '.join(f'{d:.1e}' for d in diff[1:])} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 trees, 500 patients, 10,000 rows")
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=50, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.worker[0], Path(args.worker[1]), args.repeats)
    elif args.quick:
        run("quick", 500, 50, 10_000, whole_months=False, repeats=20)
    else:
        run("example-sized cohort", 60, 500, 100_000, whole_months=False, repeats=50)
        run("registry-sized cohort", 5000, 500, 100_000, whole_months=True, repeats=20)


if __name__ == "__main__":
    main()
