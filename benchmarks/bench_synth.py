"""Benchmark: stream a registry-sized synthetic cohort to Parquet; print rows/s and peak RSS.

Run on demand (not a test)::

    python benchmarks/bench_synth.py --n 1000000 --out /tmp/registry.parquet

Peak RSS is the process maximum (Linux ``ru_maxrss``), so it includes the interpreter and the
imported libraries; the baseline after imports is printed too, to separate the generator's share.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="patients to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help=".parquet or .csv (default: a temporary Parquet file)")
    args = parser.parse_args()

    from cnslrisk.data.synthetic import CHUNK_SIZE, write_synthetic_cohort

    baseline = _peak_rss_mb()
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch) / "registry.parquet"
        start = time.perf_counter()
        write_synthetic_cohort(out, args.n, args.seed)
        seconds = time.perf_counter() - start
        size = out.stat().st_size / 1e6
    print(f"n = {args.n:,} (chunks of {CHUNK_SIZE:,}) -> {out.suffix}: {seconds:.2f} s, "
          f"{args.n / seconds:,.0f} rows/s, {size:.1f} MB file")
    print(f"peak RSS {_peak_rss_mb():.0f} MB (after imports {baseline:.0f} MB)")


if __name__ == "__main__":
    main()
