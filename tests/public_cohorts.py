"""Public survival cohorts of other diseases, written to CSV as a modeller would receive them.

None of them ships with cnslrisk: each is taken from scikit-survival's or lifelines' bundled data at
test time and written as is (categories as their labels, booleans as True/False). The same files feed
``tests/data/public_cohort_references.R``, which produced the R reference numbers in tests/data:

    python3 tests/public_cohorts.py /tmp/cohorts && Rscript tests/data/public_cohort_references.R /tmp/cohorts

- ``bmt``: bone-marrow transplantation (scikit-survival ``load_bmt``; Scrucca et al. 2007): 35 patients,
  competing risks (1 relapse, 2 transplant-related death, 0 censored), disease type ``dis``.
- ``cgvhd``: chronic graft-versus-host disease (``load_cgvhd``; Pintilie 2006): 100 patients, three
  competing events, two of them with 5 events each: the cause-specific likelihood is monotone.
- ``kidney``: kidney transplantation (lifelines ``load_kidney_transplant``): 863 patients, times in days
  with 607 distinct values, ``age`` from 1 year (the CNSL dictionary wants 18 to 100).
- ``flchain``: serum free light chains (``load_flchain``; Dispenzieri et al. 2012): 7,874 people, days,
  ``age`` up to 101 and ``sex`` coded F/M (the CNSL dictionary wants 18 to 100 and female/male).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

__all__ = ["COHORTS", "write_public_cohort"]

# how `cnslrisk config init` is told the outcome of each (the time unit is the source's)
COHORTS = {
    "bmt": {"time": "ftime", "cause": "status", "censored": "0", "time_unit": "months"},
    "cgvhd": {"time": "ftime", "cause": "status", "censored": "0", "time_unit": "years"},
    "kidney": {"time": "time", "event": "death", "time_unit": "days"},
    "flchain": {"time": "futime", "event": "death", "time_unit": "days"},
}


def _frame(name: str) -> pd.DataFrame:
    if name == "kidney":
        from lifelines.datasets import load_kidney_transplant

        return load_kidney_transplant()
    from sksurv import datasets

    X, y = getattr(datasets, f"load_{name}")()
    X = X.astype({c: str for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)})
    return X.assign(**{field: y[field] for field in y.dtype.names})


def write_public_cohort(name: str, folder: str | Path) -> Path:
    """Write cohort ``name`` (a key of :data:`COHORTS`) to ``folder/name.csv`` and return the path."""
    path = Path(folder) / f"{name}.csv"
    _frame(name).to_csv(path, index=False)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    for cohort in COHORTS:
        print(write_public_cohort(cohort, target))
