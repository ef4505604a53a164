"""Out-of-fold accuracy of the relapse-pattern incidences, before and after they were made one coherent prediction.

Compares, on the same repeated stratified folds (validate_pattern_model, the card's pattern validation):

- ``0.1``: the pattern model's own product-limit incidences, ridge alpha 0.1 (what 0.1 showed);
- ``product-limit``: the same, unpenalised (Firth's penalty only under separation);
- ``split``: what is shown now, the survival model's risk split between the causes by the pattern model's hazards.

For each: the IPCW Brier score per cause and horizon and the Aalen-Johansen calibration (|mean predicted -
observed| overall, and averaged over the tertile groups), means over causes and horizons, and the largest gap
|sum of incidences - (1 - survival)| on the cohort. Usage:

    python3 scripts/pattern_coherence.py [--config FILE] [--set KEY=VALUE ...] [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import json
from functools import partial

import numpy as np

from cnslrisk.model.coherent import CoherentIncidence
from cnslrisk.model.pattern import competing_outcome
from cnslrisk.training import load_config
from cnslrisk.training.data import load_training_data
from cnslrisk.training.fit import pattern_factory, pipeline_factory
from cnslrisk.training.pattern_card import coherence_gaps
from cnslrisk.training.pattern_validation import validate_pattern_model


def _summary(result: dict) -> dict:
    brier = [r["mean"] for r in result["brier"] if r["mean"] is not None]
    overall = [abs(r["predicted"] - r["observed"]) for r in result["calibration"]
               if r["group"] == "all" and r["observed"] is not None and r["predicted"] is not None]
    groups = [abs(r["predicted"] - r["observed"]) for r in result["calibration"]
              if r["group"] != "all" and r["observed"] is not None]
    return {"brier": float(np.mean(brier)), "calibration_all": float(np.mean(overall)),
            "calibration_groups": float(np.mean(groups)),
            "brier_by_cause_horizon": {f"{r['cause']}@{r['horizon']:g}": r["mean"] for r in result["brier"]},
            "failed_folds": len(result["failed_folds"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=None)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kind", default="cox", help="the survival model whose risk is split")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from cnslrisk.cli.train import parse_overrides

    config = load_config(args.config, parse_overrides(args.overrides))
    data = load_training_data(config)
    v = config.validation
    run = partial(validate_pattern_model, time=data.y["time"], cause=data.cause, horizons=v.horizons,
                  censored=config.data.censored, folds=v.folds, repeats=args.repeats, bootstrap=50, seed=config.seed,
                  n_jobs=config.n_jobs)
    old = load_config(args.config, [*parse_overrides(args.overrides), ("pattern.alpha", 0.1)])
    pattern_columns = data.X[config.pattern_features]
    survival = pipeline_factory(args.kind, config)
    split = partial(CoherentIncidence, survival(), pattern_factory(config)(), censored=config.data.censored)
    results = {
        "0.1": _summary(run(pattern_factory(old), pattern_columns)),
        "product-limit": _summary(run(pattern_factory(config), pattern_columns)),
        "split": _summary(run(split, data.X)),
    }
    fitted_survival = survival().fit(data.X, data.y)
    for name, cfg in (("0.1", old), ("product-limit", config)):
        pattern = pattern_factory(cfg)().fit(pattern_columns, competing_outcome(data.cause, data.y["time"]))
        gaps = coherence_gaps(fitted_survival, pattern, data.X, v.horizons)
        results[name]["max_gap"] = gaps["product_limit"]["max"]
        if name == "product-limit":
            results["split"]["max_gap"] = gaps["split"]["max"]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    print(f"cohort {config.data.path.name}: n = {data.n}, events {data.events}, pattern covariates "
          f"{config.pattern_features}, survival model {args.kind}, {v.folds}-fold x {args.repeats} repeats")
    print(f"{'incidences':<15} {'Brier':>8} {'|AJ cal| all':>13} {'|AJ cal| groups':>16} {'max gap':>9} failed")
    for name, r in results.items():
        print(f"{name:<15} {r['brier']:8.4f} {r['calibration_all']:13.4f} {r['calibration_groups']:16.4f} "
              f"{r['max_gap']:9.2e} {r['failed_folds']}")


if __name__ == "__main__":
    main()
