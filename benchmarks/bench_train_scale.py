"""Cost of training against cohort size: the bundled validation on synthetic cohorts, locally and on Dask.

Run on demand (not a test):

    python benchmarks/bench_train_scale.py                                  # every row of BENCHMARKS.md
    python benchmarks/bench_train_scale.py --family cox --sizes 600 6000 --backends local
    python benchmarks/bench_train_scale.py --family cox --sizes 60000 --set validation.bootstrap=20
    python benchmarks/bench_train_scale.py --example                        # the bundled 60-patient run
    python benchmarks/bench_train_scale.py --resample-cost --sizes 600 6000 60000

Each row trains the bundled config (data/default_config.toml: pCE and LMD, 5 x 10 repeated
cross-validation of every candidate plus the Kaplan-Meier null and the published model, 200 bootstrap
resamples for each Cox-type model, the relapse-pattern model's validation, the post-response model)
on a synthetic cohort of n patients (``cnslrisk.data.synthetic``, seed 1) into a scratch SQLite
registry, with ``n_jobs = 2``: ``local`` is joblib's processes, ``dask`` a local two-worker Dask
cluster started for the run. The family ``cox`` fits the Cox and penalised Cox models, ``forest`` the
random survival forest. Printed: the stage seconds the run logs (``run.seconds.*``), the Dask cluster's
start, and per Cox-type model the cost of one bootstrap resample (2 workers x bootstrap seconds /
resamples) against one fit of the model on the whole cohort (tuning included). With ``--set
validation.bootstrap=20`` (fewer resamples) the per-resample figure is the same quantity, measured on fewer.

``--resample-cost`` measures that ratio without the other jobs of a shared machine in it: in one process,
one thread, the median of three fits of each Cox-type model on the whole cohort (tuning included) against
the mean cost of five bootstrap resamples (refit with its tuning, then Harrell's C and the calibration slope
on the resample and on the original cohort) and of one fold of the comparison (refit, out-of-fold
survival on the grid and every figure of :func:`~cnslrisk.training.comparison.compare`).
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

from cnslrisk.cli.train import parse_overrides
from cnslrisk.data.synthetic import write_synthetic_cohort
from cnslrisk.training import train

FAMILIES = {"cox": ["cox", "coxnet"], "forest": ["rsf"]}
SIZES = {"cox": [600, 6_000, 60_000], "forest": [600, 6_000]}
STAGES = ("comparison", "fit_and_bootstrap", "band", "pattern", "landmark", "calibration", "diagnostics", "card",
          "plots", "registry")


def run(family: str | None, n: int | None, backend: str, overrides: dict, folder: Path) -> dict:
    """One training run; ``family=None`` trains the bundled config on the bundled example as it is."""
    settings = {"n_jobs": 2, "compute.backend": backend, "mlflow.tracking_uri": f"sqlite:///{folder}/mlflow.db",
                **overrides}
    if family is not None:
        cohort = folder.parent / f"synthetic_{n}.csv"
        if not cohort.exists():
            write_synthetic_cohort(cohort, n, seed=1)
        settings.update({"data.path": str(cohort), "models.fit": FAMILIES[family]})
    load = os.getloadavg()[0]
    start = time.perf_counter()
    result = train(overrides=settings)
    total = time.perf_counter() - start
    seconds = {k.removeprefix("run.seconds."): v for k, v in result.metrics.items() if k.startswith("run.seconds.")}
    row = {"family": family or "example", "n": n or 60, "backend": backend, "total": total, "stages": seconds,
           "startup": total - sum(seconds.values()), "chosen": result.model_type, "load_before": load,
           "load_after": os.getloadavg()[0], "per_resample": {}}
    resamples = int(dict(settings).get("validation.bootstrap", 200))
    for kind in FAMILIES.get(family, ()):
        fit, boot = result.metrics.get(f"{kind}.seconds.fit"), result.metrics.get(f"{kind}.seconds.bootstrap")
        if fit and boot:
            per = 2 * boot / resamples  # two workers busy for the stage's wall time
            row["per_resample"][kind] = {"fit": fit, "resample": per, "ratio": per / fit}
    return row


def resample_cost(n: int, folder: Path) -> None:
    """One thread, one process: fit, bootstrap resample and comparison fold of each Cox-type model at size n."""
    from statistics import median

    from cnslrisk.training import load_config
    from cnslrisk.training.bootstrap import bootstrap_optimism
    from cnslrisk.training.comparison import _fold_chunk
    from cnslrisk.training.crossval import fold_splits
    from cnslrisk.training.data import load_training_data
    from cnslrisk.training.fit import pipeline_factory

    cohort = folder / f"synthetic_{n}.csv"
    if not cohort.exists():
        write_synthetic_cohort(cohort, n, seed=1)
    config = load_config(None, [("data.path", str(cohort)), ("models.fit", FAMILIES["cox"]), ("n_jobs", 1)])
    data = load_training_data(config)
    splits = fold_splits(data.y["event"], 5, 1, 0)
    for kind in FAMILIES["cox"]:
        factory = pipeline_factory(kind, config)
        # imports and compiled code loaded before anything is timed
        bootstrap_optimism(factory, data.X, data.y, resamples=1, seed=2)
        _fold_chunk({kind: factory}, config.validation.horizons, data.X, data.y, splits, [(kind, 1)])
        fits = []
        for _ in range(3):
            start = time.perf_counter()
            factory().fit(data.X, data.y)
            fits.append(time.perf_counter() - start)
        start = time.perf_counter()
        bootstrap_optimism(factory, data.X, data.y, resamples=5, seed=1)
        boot = (time.perf_counter() - start - median(fits)) / 5  # less its apparent fit on the whole cohort
        start = time.perf_counter()
        _fold_chunk({kind: factory}, config.validation.horizons, data.X, data.y, splits, [(kind, 0)])
        fold = time.perf_counter() - start
        fit = median(fits)
        print(f"| {n:,} | {kind} | {fit:.3f} | {boot:.3f} ({boot / fit:.1f}x) | {fold:.3f} ({fold / fit:.1f}x) "
              f"| {os.getloadavg()[0]:.1f} |", flush=True)


def print_row(row: dict) -> None:
    stages = " | ".join(f"{row['stages'].get(s, 0.0):.1f}" for s in STAGES)
    ratios = "; ".join(f"{k} {v['resample']:.2f} s / fit {v['fit']:.2f} s = {v['ratio']:.1f}x"
                       for k, v in row["per_resample"].items())
    print(f"| {row['family']} | {row['n']:,} | {row['backend']} | {row['total']:.1f} | {row['startup']:.1f} | {stages} "
          f"| {ratios or '-'} | {row['load_before']:.1f} / {row['load_after']:.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=sorted(FAMILIES), action="append")
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--backends", nargs="+", default=["local", "dask"], choices=["local", "dask"])
    parser.add_argument("--example", action="store_true", help="only the bundled config on the bundled example")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--json", type=Path, help="append each row as a JSON line to this file")
    parser.add_argument("--resample-cost", action="store_true", help="one resample against one fit, one thread")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # one run, in a fresh process (see below)
    args = parser.parse_args()
    overrides = dict(parse_overrides(args.overrides))
    if args.resample_cost:
        from threadpoolctl import threadpool_limits

        print("| n | model | one fit s | one bootstrap resample s | one comparison fold s | load 1-min |")
        print("|---|---|---:|---:|---:|---:|")
        with tempfile.TemporaryDirectory() as tmp, threadpool_limits(limits=1):
            for n in args.sizes or SIZES["cox"]:
                resample_cost(n, Path(tmp))
        return
    if args.row:
        family, n, backend, folder = json.loads(args.row)
        os.chdir(folder)  # MLflow puts a new experiment's artifacts under ./mlruns
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        print(json.dumps(run(family, n, backend, overrides, Path(folder))))
        return
    print(f"| family | n | backend | total s | cluster start s | {' | '.join(STAGES)} | one resample vs one fit "
          f"| load 1-min before / after |")
    print("|" + "---|" * (len(STAGES) + 7))
    plan = [(None, None)] if args.example else [
        (family, n) for family in (args.family or sorted(FAMILIES)) for n in (args.sizes or SIZES[family])]
    with tempfile.TemporaryDirectory() as tmp:
        for family, n in plan:
            for backend in args.backends:
                # each run in a process of its own, as `cnslrisk train` is: no run inherits another's imports,
                # worker processes or MLflow tables
                folder = Path(tmp) / f"{family}-{n}-{backend}"
                folder.mkdir()
                done = subprocess.run([sys.executable, __file__, "--row", json.dumps([family, n, backend, str(folder)]),
                                       *(f"--set={s}" for s in args.overrides)], capture_output=True, text=True,
                                      check=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                print_row(row)
                if args.json:
                    with args.json.open("a") as out:
                        out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
