"""Wall time of the default training run, broken down by model type and stage.

Run on demand (not a test):  python benchmarks/bench_train.py [--set KEY=VALUE ...]

Trains the bundled default config (all three model types, 5 x 10 cross-validation, 200 bootstrap
resamples each with tuning repeated inside every resample, plus the relapse-pattern model) into a
temporary SQLite registry and prints the seconds each stage took, as recorded in the run's metrics
(``run.seconds.<stage>``: the comparison of every candidate with the null and published models on the same
folds, the fits with the Cox-type bootstraps, the band, the pattern and post-response models, the card,
the plots and the registry). ``benchmarks/bench_train_scale.py`` does the same against cohort size.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from cnslrisk.cli.train import parse_overrides
from cnslrisk.training import load_config, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        config = load_config(None, [*parse_overrides(args.overrides), ("mlflow.tracking_uri", f"sqlite:///{tmp}/b.db")])
        start = time.perf_counter()
        result = train(config)
        total = time.perf_counter() - start
    print(f"cores: {os.cpu_count()}, n_jobs: {config.n_jobs}, models: {', '.join(config.models.fit)}, "
          f"folds x repeats: {config.validation.folds} x {config.validation.repeats}, "
          f"bootstrap: {config.validation.bootstrap}")
    for kind in config.models.fit:
        fit, boot = (result.metrics.get(f"{kind}.seconds.{stage}", 0.0) for stage in ("fit", "bootstrap"))
        print(f"{kind:8} fit on the whole cohort {fit:6.1f} s, bootstrap optimism {boot:6.1f} s")
    stages = {k.removeprefix("run.seconds."): v for k, v in result.metrics.items() if k.startswith("run.seconds.")}
    print("stages (s): " + ", ".join(f"{stage} {seconds:.1f}" for stage, seconds in stages.items()))
    print(f"not in a stage (config, cohort, start of the workers): {total - sum(stages.values()):.1f} s")
    print(f"whole run: {total:.1f} s; registered {result.name} version {result.version} ({result.model_type})")


if __name__ == "__main__":
    main()
