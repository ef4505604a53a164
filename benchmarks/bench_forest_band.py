"""Coverage of a forest's 95 % band of S(h|x): infinitesimal jackknife against bootstrap refits, on the truth.

Run on demand (not a test)::

    python benchmarks/bench_forest_band.py                  # n = 60 and 600
    python benchmarks/bench_forest_band.py --trees-check    # Monte Carlo noise of the IJ variance against B

Each replicate draws a synthetic cohort (``generate_cohort(n, seed=1000 + r)``), fits the forest as
``cnslrisk train`` does (the bundled config's covariates, 200 trees, out-of-bag choice between
``min_samples_leaf`` 3 and 8) and asks both bands for S(h|x) at h = 3, 6, 12 months for four
patients (pCE and LMD each absent or present; age 60, ECOG 1, two prior lines, primary CNSL, no
steroids, normal LDH). The truth is the simulator's own model: with the response r drawn given pCE
and LMD, S(h|x) = sum_r P(r | pCE, LMD) * P(no progression by h | r, pCE, LMD) (the other covariates
have no effect). The refit band is the 2.5-97.5th percentile of 50 refits of the whole fitting
procedure on bootstrap resamples (``validation.forest_band = "refits"``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sksurv.util import Surv

from cnslrisk.data import _synthetic_calibration as cal
from cnslrisk.data.synthetic import _values, generate_cohort
from cnslrisk.model.band import band_interval
from cnslrisk.model.pipeline import make_pipeline

FEATURES = {"binary": ["pce", "lmd", "steroids", "ldh_elevated"], "categorical": ["cnsl_type"],
            "numeric": ["age", "ecog", "prior_lines"]}
HORIZONS = np.array([3.0, 6.0, 12.0])
PATIENTS = pd.DataFrame({"pce": [False, True, False, True], "lmd": [False, False, True, True],
                         "steroids": False, "ldh_elevated": False, "cnsl_type": "primary", "age": 60.0, "ecog": 1,
                         "prior_lines": 2})


def true_survival(patients: pd.DataFrame, horizons: np.ndarray) -> np.ndarray:
    """The simulator's S(h | pCE, LMD), shape (n_patients, n_horizons)."""
    v = _values()
    pce, lmd = patients["pce"].to_numpy(float), patients["lmd"].to_numpy(float)
    prob = cal.response_probabilities(v, pce, lmd)
    split = v["pd_fraction_of_refractory"]
    prob = np.column_stack([prob[:, :2], prob[:, 2] * (1 - split), prob[:, 2] * split])
    out = np.zeros((len(patients), horizons.size))
    for r in range(4):
        response = np.full(len(patients), r)
        for j, h in enumerate(horizons):
            out[:, j] += prob[:, r] * cal.progression_free(v, np.full(len(patients), h), response, pce, lmd)
    return out


def _fit(cohort: pd.DataFrame, trees: int, seed: int = 0):
    y = Surv.from_arrays(cohort["pfs1_event"], cohort["pfs1_months"])
    return make_pipeline("rsf", **FEATURES, n_estimators=trees, random_state=seed).fit(cohort, y)


def replicate(n: int, r: int, trees: int, refits: int) -> dict[str, np.ndarray]:
    cohort = generate_cohort(n, seed=1000 + r)
    pipe = _fit(cohort, trees)
    encoded = pipe.named_steps["encode"].encode(PATIENTS)
    forest = pipe[-1]
    lower, upper = forest.predict_survival_interval(encoded, HORIZONS, check_input=False)
    out = {"point": forest.predict_survival(encoded, HORIZONS, check_input=False), "ij": np.stack([lower, upper])}
    if refits:
        rng = np.random.default_rng(r)
        members = []
        for _ in range(refits):
            rows = rng.integers(0, n, n)
            try:
                members.append(_fit(cohort.iloc[rows].reset_index(drop=True), trees))
            except (ValueError, ArithmeticError):  # a resample without the events a fit needs: left out
                continue
        out["refits"] = np.stack(band_interval(members, PATIENTS, HORIZONS))
    return out


def coverage(n: int, replicates: int, trees: int, refits: int) -> None:
    start = time.perf_counter()
    runs = Parallel(n_jobs=2)(delayed(replicate)(n, r, trees, refits) for r in range(replicates))
    truth = true_survival(PATIENTS, HORIZONS)
    print(f"\nn = {n}: {replicates} cohorts x 4 patients x 3 horizons, {trees} trees, "
          f"{time.perf_counter() - start:.0f} s (load average {os.getloadavg()[0]:.1f})")
    points = np.stack([run["point"] for run in runs])
    expected = points.mean(axis=0)  # what the forest estimates on average: its own target, bias included
    spread = points.std(axis=0, ddof=1).mean()
    print(f"forest: mean |bias| against the truth {np.abs(expected - truth).mean():.3f}, sd of S-hat across "
          f"cohorts {spread:.3f}")
    print("| band | coverage of true S(h|x) | by horizon 3 / 6 / 12 | coverage of the forest's mean S-hat | "
          "mean width | width / (2 x 1.96) |\n|---|---:|---:|---:|---:|---:|")
    for name in ("ij", "refits"):
        if name not in runs[0]:
            continue
        bands = np.stack([run[name] for run in runs])  # (replicates, 2, patients, horizons)
        hit = (bands[:, 0] <= truth) & (truth <= bands[:, 1])
        own = (bands[:, 0] <= expected) & (expected <= bands[:, 1])
        by_h = " / ".join(f"{x:.2f}" for x in hit.mean(axis=(0, 1)))
        se = np.sqrt(hit.mean() * (1 - hit.mean()) / replicates)  # replicates are independent; points are not
        width = np.mean(bands[:, 1] - bands[:, 0])
        print(f"| {name} | {hit.mean():.3f} (binomial SE over cohorts at most {se:.3f}) | {by_h} | {own.mean():.3f} | "
              f"{width:.3f} | {width / 3.92:.3f} |")


def trees_check(n: int, tree_counts: list[int], seeds: int) -> None:
    """Monte Carlo sd of the IJ standard error over forest seeds, on one cohort, against B."""
    cohort = generate_cohort(n, seed=1000)
    print(f"\nIJ standard error of S(h|x) on one n = {n} cohort, over {seeds} forest seeds (4 patients x 3 horizons)")
    print("| trees B | mean se | MC sd of se / mean se | share floored at 0 |\n|---:|---:|---:|---:|")
    for trees in tree_counts:
        ses = []
        for seed in range(seeds):
            pipe = _fit(cohort, trees, seed)
            encoded = pipe.named_steps["encode"].encode(PATIENTS)
            compact = pipe[-1].compact_
            columns = compact._columns(HORIZONS)[0]
            leaves = compact.apply(encoded.astype(np.float32))
            per_tree = np.stack([compact._leaf_table_rows([("survival", columns)], row) for row in leaves])
            from cnslrisk.model.estimators._ij_variance import ij_variance

            ses.append(np.sqrt(ij_variance(per_tree, compact.inbag_gram)))
        ses = np.stack(ses)
        print(f"| {trees} | {ses.mean():.4f} | {np.mean(ses.std(axis=0) / ses.mean(axis=0)):.2f} | "
              f"{(ses == 0).mean():.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[60, 600])
    parser.add_argument("--replicates", type=int, nargs="+", default=[200, 40])
    parser.add_argument("--refits", type=int, default=50)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--trees-check", action="store_true")
    args = parser.parse_args()
    if args.trees_check:
        trees_check(60, [50, 100, 200, 500, 1000, 2000], 20)
        return
    for n, replicates in zip(args.sizes, args.replicates, strict=True):
        coverage(n, replicates, args.trees, args.refits)


if __name__ == "__main__":
    main()
