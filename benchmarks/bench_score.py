"""Registry-scale scoring: 1,000,000 synthetic patients, Cox model, three horizons + pattern probabilities.

Run on demand (not a test):  python benchmarks/bench_score.py [--rows 1000000]

Reports, side by side in one run:
- in-memory predict rows/s of the full RiskModel output (survival with 95 % band, median, risk group,
  pattern incidences, warnings, and the post-response columns of a model with a landmark), of the
  issue's own columns (survival at three horizons + the pattern incidences, on encoded rows) and of
  the survival-only core, against (a) the plain numpy limit S0(t)^exp(x'b) and (b) scikit-survival's
  own ``predict_survival_function`` path;
- end to end (process start, model load, Parquet in and out) ``cnslrisk score --input --out`` against a
  plain numpy + pyarrow script doing the same I/O, with the peak memory of each (/usr/bin/time -v);
- peak memory of ``cnslrisk score`` on 100k rows against 1M rows (chunked: it should stay flat).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cnslrisk.data.synthetic import write_synthetic_cohort
from cnslrisk.registry import load_risk_model, use_tracking
from cnslrisk.serving.scoring import check_input
from cnslrisk.training import load_config, train
from cnslrisk.training.config import default_config_path

HORIZONS = (3.0, 6.0, 12.0)

# the least a scorer must do: read Parquet, encode, S0(t)^exp(x'b) at three horizons, write Parquet
PLAIN_SCRIPT = """
import numpy as np, pyarrow as pa, pyarrow.parquet as pq
p = PARAMS
t = pq.read_table(p["input"]).to_pandas()
def column(name):
    if name in t:
        return t[name].to_numpy(dtype=float)
    base = next(c for c in p["categorical"] if name.startswith(c + "_"))
    return (t[base] == name[len(base) + 1:]).to_numpy(dtype=float)
x = np.column_stack([column(c) for c in p["columns"]])
s = np.exp(-np.outer(np.exp((x - np.array(p["mean"])) @ np.array(p["coef"])), np.array(p["h0"])))
out = {"patient_id": t["patient_id"].to_numpy(), **{f"survival_{h}": s[:, i] for i, h in enumerate([3, 6, 12])}}
pq.write_table(pa.table(out), p["output"])
"""


def timed(fn, repeats: int = 3) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def peak_rss_mb(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak resident MB) of a whole process, from GNU time."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr).group(1))
    return wall, kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-score-"))
    os.chdir(tmp)
    uri = f"sqlite:///{tmp}/b.db"
    result = train(overrides={"models.fit": ["cox"], "validation.repeats": 1, "validation.bootstrap": 10,
                              "mlflow.tracking_uri": uri})
    use_tracking(uri, explicit=True)
    model_uri = f"models:/{result.name}/{result.version}"
    model, _ = load_risk_model(model_uri)
    big = write_synthetic_cohort(tmp / "big.parquet", args.rows, seed=1)
    small = write_synthetic_cohort(tmp / "small.parquet", 100_000, seed=2)

    import pandas as pd

    frame = check_input(model, pd.read_parquet(big))
    encoded = np.asarray(model.pipeline[:-1].transform(frame[model.feature_columns]), dtype=float)
    cox = model.pipeline[-1]
    times = np.asarray(HORIZONS)
    h0 = cox.cum_baseline_hazard_[np.searchsorted(cox.unique_times_, times, side="right") - 1]

    def numpy_limit() -> np.ndarray:
        return np.exp(-np.outer(np.exp((encoded - cox.x_mean_) @ cox.coef_), h0))

    pattern_encoded = model.pattern.named_steps["encode"].encode(frame)
    pattern = model.pattern[-1]

    def survival_and_patterns() -> tuple[np.ndarray, np.ndarray]:
        return (cox.predict_survival(encoded, times, check_input=False),
                pattern.predict_cumulative_incidence(pattern_encoded, times, check_input=False))

    full = timed(lambda: model.predict(frame, horizons=HORIZONS))
    core = timed(lambda: cox.predict_survival(encoded, times))
    scope = timed(survival_and_patterns)
    limit = timed(numpy_limit)
    np.testing.assert_allclose(cox.predict_survival(encoded, times), numpy_limit(), rtol=1e-10)

    from sksurv.linear_model import CoxPHSurvivalAnalysis

    from cnslrisk.model import read_cohort, to_surv
    from cnslrisk.training.data import cohort_schema

    training = cohort_schema(load_config()).check(read_cohort(default_config_path().parent / "example_cohort.csv"),
                                                  allow_unknown=True)
    sk = CoxPHSurvivalAnalysis(ties="efron").fit(model.pipeline[:-1].transform(training[model.feature_columns]),
                                                 to_surv(training))
    np.testing.assert_allclose(sk.coef_, cox.coef_, rtol=1e-6)  # the same model, fitted by scikit-survival
    sk_rows = min(args.rows, 200_000)

    def sksurv_path() -> np.ndarray:
        return np.vstack([fn(times) for fn in sk.predict_survival_function(encoded[:sk_rows])])

    sk_time = timed(sksurv_path, repeats=1) * (args.rows / sk_rows)

    plain = tmp / "plain.py"
    params = {"coef": cox.coef_.tolist(), "mean": cox.x_mean_.tolist(), "h0": h0.tolist(),
              "columns": list(model.pipeline[0].get_feature_names_out()), "categorical": model.features["categorical"],
              "input": str(big), "output": str(tmp / "plain.parquet")}
    plain.write_text(PLAIN_SCRIPT.replace("PARAMS", repr(params)))
    cli = [sys.executable, "-m", "cnslrisk.cli", "score", "--model", model_uri, "--tracking-uri", uri]
    e2e_wall, e2e_mb = peak_rss_mb([*cli, "--input", str(big), "--out", str(tmp / "out.parquet")])
    plain_wall, plain_mb = peak_rss_mb([sys.executable, str(plain)])
    small_wall, small_mb = peak_rss_mb([*cli, "--input", str(small), "--out", str(tmp / "out_small.parquet")])

    n = args.rows
    print(f"rows: {n:,}; horizons {HORIZONS}; pattern causes {list(model.pattern[-1].causes_)}")
    print("in-memory predict                                   seconds      rows/s")
    rows = (("RiskModel.predict (all output columns)", full),
            ("survival at 3 horizons + 9 pattern incidences", scope), ("CoxPH.predict_survival (3 horizons)", core),
            ("(a) numpy limit S0(t)^exp(xb)", limit),
            (f"(b) scikit-survival predict_survival_function (x{n // sk_rows} of {sk_rows:,})", sk_time))
    for label, seconds in rows:
        print(f"  {label:50} {seconds:8.2f} {n / seconds:12,.0f}")
    print(f"  core / numpy limit: {core / limit:.2f}x; survival + patterns / numpy limit: {scope / limit:.1f}x; "
          f"full output / numpy limit: {full / limit:.1f}x")
    print("end to end (process start, model load, Parquet in and out)   wall s   peak MB")
    print(f"  cnslrisk score --input --out ({n:,} rows)                     {e2e_wall:7.1f} {e2e_mb:9.0f}")
    print(f"  plain numpy + pyarrow script                                 {plain_wall:7.1f} {plain_mb:9.0f}")
    print(f"  ratio: {e2e_wall / plain_wall:.2f}x")
    print(f"  cnslrisk score on 100,000 rows                               {small_wall:7.1f} {small_mb:9.0f}")


if __name__ == "__main__":
    main()
