"""A synthetic cohort calibrated to the published statistics of Kaulen et al. 2026 [1]_.

The study's patient data are not public. This generator draws cohorts whose response rates,
median CNS-PFS1, share and pattern of progressions, multivariable Cox hazard ratios of pCE and LMD,
B-cell aplasia at progression and median CNS-PFS2 reproduce the publication, with every parameter
read from ``data/synthetic_parameters.json`` (published, derived, assumed or solved, each with a note;
the mechanism is described in :mod:`cnslrisk.data._synthetic_calibration`).

Cohorts are drawn in chunks of :data:`CHUNK_SIZE` rows, chunk ``i`` from its own generator seeded by
``numpy.random.SeedSequence(seed).spawn(...)[i]``: the output depends only on (n, seed, chunk size),
never on the machine, and a registry-sized cohort streams to Parquet in bounded memory.

References
----------
.. [1] Kaulen LD, Karschnia P, Doubrovinskaia S, et al. Patterns, risk factors and management of
   CD19-directed chimeric antigen receptor T-cell therapy failure in CNS lymphoma. J Hematol Oncol
   2026;19:2. doi:10.1186/s13045-025-01761-8
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Callable, Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model.cohort_io import PROVENANCE_KEY, atomic_output, cohort_format, write_cohort
from cnslrisk.model.contract import data_dictionary

from . import _synthetic_calibration as cal

__all__ = [
    "CHUNK_SIZE",
    "EXAMPLE_CRITERIA",
    "generate_cohort",
    "iter_cohort",
    "write_synthetic_cohort",
    "make_example_cohort",
    "write_example_cohort",
    "load_parameters",
    "parameters_sha256",
    "synthetic_provenance",
    "solve_parameters",
]

CHUNK_SIZE = 100_000
_PARAMETERS_FILE = "synthetic_parameters.json"
_GENERATOR = "cnslrisk.synth"

#: What the bundled 60-patient example must show; the first seed (0, 1, 2, ...) whose draw meets all of it is used.
EXAMPLE_CRITERIA: dict[str, Any] = {
    "n": 60,
    "best_response": {"CR": 27, "PR": 9, "SD": 10, "PD": 14},
    "pattern": {"none": 24, "local": 14, "local_and_distant": 10, "distant": 12},
    "cox_hr_within_published_ci": {"pce": [1.08, 6.68], "lmd": [1.20, 6.25]},
    "cox_max_abs_log_hr_deviation": {"pce": 0.25, "lmd": 0.25},
    "km_median_pfs1_months": [3.5, 4.5],
    "km_median_convention": "both the first time S <= 0.5 and the first time S < 0.5 lie in the range",
}
_Sampler = Callable[[np.ndarray, np.random.Generator], np.ndarray]


@lru_cache(maxsize=1)
def _parameters_text() -> str:
    return resources.files("cnslrisk.data").joinpath(_PARAMETERS_FILE).read_text("utf-8")


def load_parameters() -> dict[str, Any]:
    """The stored generator parameters: ``parameters`` (value, provenance, note) and the solving ``method``."""
    return json.loads(_parameters_text())


def parameters_sha256() -> str:
    """SHA-256 of the stored parameter file, recorded in every synthetic cohort's provenance."""
    return hashlib.sha256(_parameters_text().encode("utf-8")).hexdigest()


def solve_parameters(n: int = 200_000, seed: int = 2026, *, write: bool = False) -> dict[str, Any]:
    """Re-solve the generator's parameters (see :func:`cnslrisk.data._synthetic_calibration.solve_parameters`).

    Parameters
    ----------
    n, seed : int
        Size and seed of the common-random-numbers sample.
    write : bool, default=False
        Whether to overwrite the packaged ``synthetic_parameters.json`` with the result.

    Returns
    -------
    dict
        The parameter document.
    """
    doc = cal.solve_parameters(n, seed)
    if write:
        target = resources.files("cnslrisk.data").joinpath(_PARAMETERS_FILE)
        Path(os.fspath(target)).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        _parameters_text.cache_clear()
    return doc


def _values() -> dict[str, Any]:
    return {name: entry["value"] for name, entry in load_parameters()["parameters"].items()}


def _draw_categorical(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return cal.categorical(prob, rng.random(prob.shape[0]))


def _levels(rng: np.random.Generator, probabilities: dict[Any, float], n: int) -> np.ndarray:
    names = np.array(list(probabilities), dtype=object)
    cumulative = np.cumsum(list(probabilities.values()))
    return names[np.minimum(np.searchsorted(cumulative, rng.random(n), side="right"), names.size - 1)]


def _months(x: np.ndarray) -> np.ndarray:
    """Months rounded to 0.01 (about 7 hours), at least 0.01 so every time is positive."""
    return np.maximum(np.round(x, 2), 0.01)


def _patients(v: dict[str, Any], rng: np.random.Generator, n: int, response_sampler: _Sampler) -> dict[str, Any]:
    """Baseline covariates, best response and CNS-PFS1 for ``n`` patients (everything before the pattern)."""
    age_mean, age_sd = v["age"]
    c: dict[str, Any] = {
        "age": np.clip(np.round(rng.normal(age_mean, age_sd, n), 1), 18.0, 90.0),
        "sex": np.where(rng.random(n) < v["male_probability"], "male", "female").astype(object),
        "ecog": _levels(rng, dict(enumerate(v["ecog_probabilities"])), n).astype(np.int64),
        "cnsl_type": np.where(rng.random(n) < v["secondary_probability"], "secondary", "primary").astype(object),
        "prior_lines": np.minimum(1 + rng.poisson(v["prior_lines_mean"], n), 20).astype(np.int64),
        "car_product": _levels(rng, v["car_product_probabilities"], n),
        "bridging": _levels(rng, v["bridging_probabilities"], n),
        "steroids": rng.random(n) < v["steroids_probability"],
        "ldh_elevated": rng.random(n) < v["ldh_elevated_probability"],
        "pce": rng.random(n) < v["pce_prevalence"],
        "lmd": rng.random(n) < v["lmd_prevalence"],
    }
    pce, lmd = c["pce"].astype(float), c["lmd"].astype(float)
    prob = cal.response_probabilities(v, pce, lmd)
    split = v["pd_fraction_of_refractory"]
    response = response_sampler(np.column_stack([prob[:, :2], prob[:, 2] * (1 - split), prob[:, 2] * split]), rng)
    t1 = cal.progression_times(v, response, pce, lmd, rng.standard_exponential(n))
    admin, censor = cal.censoring_times(v, rng.random(n), rng.standard_exponential(n))
    event = t1 < censor
    c.update(
        best_response=np.array(cal.RESPONSES, dtype=object)[response],
        pfs1_months=_months(np.where(event, t1, censor)),
        pfs1_event=event,
        _response=response,
        _follow_up_after=np.where(event, admin - t1, 0.0),
    )
    return c


def _progression(v: dict[str, Any], rng: np.random.Generator, c: dict[str, Any], pattern_sampler: _Sampler) -> None:
    """Add pattern and post-progression fields; they stay empty (pattern ``none``) without a progression."""
    event = c["pfs1_event"]
    n, k = event.size, int(event.sum())
    pattern = np.full(n, "none", dtype=object)
    prob = cal.pattern_probabilities(v, c["_response"][event], c["lmd"][event].astype(float))
    pattern[event] = np.array(cal.PATTERNS, dtype=object)[pattern_sampler(prob, rng)]
    t2 = rng.standard_exponential(k) * v["median_pfs2_months"] / math.log(2.0)
    follow_up = c["_follow_up_after"][event]
    aplasia, second = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    aplasia[event] = rng.random(k) < v["bcell_aplasia_probability"]
    second[event] = t2 < follow_up
    c.update(pattern=pattern, bcell_aplasia=pd.arrays.BooleanArray(aplasia, ~event),
             pfs2_event=pd.arrays.BooleanArray(second, ~event), salvage=np.full(n, None, dtype=object),
             pfs2_months=np.full(n, np.nan))
    c["pfs2_months"][event] = _months(np.minimum(t2, follow_up))
    c["salvage"][event] = _levels(rng, v["salvage_probabilities"], k)


def _frame(c: dict[str, Any], first_number: int, width: int) -> pd.DataFrame:
    n = c["pfs1_event"].size
    c["patient_id"] = np.array([f"SYN-{i:0{width}d}" for i in range(first_number, first_number + n)], dtype=object)
    return pd.DataFrame({name: c[name] for name in data_dictionary().names})


def _check_positive_int(value: Any, name: str, owner: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"parameter {name} of {owner} must be an int in [1, inf); got {value!r}")


def iter_cohort(n: int, seed: int = 0, chunk_size: int = CHUNK_SIZE) -> Iterator[pd.DataFrame]:
    """Yield a synthetic cohort of ``n`` patients in chunks of ``chunk_size`` rows.

    Parameters
    ----------
    n : int
        Number of patients.
    seed : int, default=0
        Seed; chunk ``i`` is drawn from ``SeedSequence(seed).spawn(n_chunks)[i]``.
    chunk_size : int, default=CHUNK_SIZE
        Rows per chunk; part of the draw's identity (another chunk size gives another cohort).

    Returns
    -------
    iterator of pandas.DataFrame
        Chunks with canonical columns in data-dictionary order, typed: numbers float64, integers
        int64, booleans bool (post-progression booleans nullable ``boolean``), categories object.

    Raises
    ------
    ValueError
        When ``n`` or ``chunk_size`` is not a positive int or ``seed`` is negative (checked at the call).
    """
    _check_positive_int(n, "n", "iter_cohort")
    _check_positive_int(chunk_size, "chunk_size", "iter_cohort")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"parameter seed of iter_cohort must be an int in [0, inf); got {seed!r}")
    return _chunks(_values(), n, seed, chunk_size)


def _chunks(v: dict[str, Any], n: int, seed: int, chunk_size: int) -> Iterator[pd.DataFrame]:
    width = max(3, len(str(n)))
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(math.ceil(n / chunk_size))):
        rng = np.random.default_rng(child)
        size = min(chunk_size, n - i * chunk_size)
        c = _patients(v, rng, size, _draw_categorical)
        _progression(v, rng, c, _draw_categorical)
        yield _frame(c, i * chunk_size + 1, width)


def generate_cohort(n: int, seed: int = 0, chunk_size: int = CHUNK_SIZE) -> pd.DataFrame:
    """Draw a synthetic cohort of ``n`` patients in memory (the chunks of :func:`iter_cohort`, concatenated).

    Returns
    -------
    pandas.DataFrame
        One row per patient, canonical columns; ``attrs["provenance"]`` marks it synthetic.
    """
    df = pd.concat(list(iter_cohort(n, seed, chunk_size)), ignore_index=True)
    df.attrs["provenance"] = synthetic_provenance(n, seed)
    return df


def synthetic_provenance(n: int, seed: int, **extra: Any) -> dict[str, Any]:
    """The provenance written into a synthetic cohort file (source, generator, seed, n, parameter hash, extras)."""
    return {"source": "synthetic", "generator": _GENERATOR, "seed": int(seed), "n": int(n),
            "parameters_sha256": parameters_sha256(), **extra}


def _arrow_schema() -> Any:
    import pyarrow as pa

    kinds = {"string": pa.string(), "category": pa.string(), "number": pa.float64(), "integer": pa.int64(),
             "boolean": pa.bool_()}
    return pa.schema([pa.field(f.name, kinds[f.type]) for f in data_dictionary().fields])


def write_synthetic_cohort(path: str | os.PathLike[str], n: int, seed: int = 0, chunk_size: int = CHUNK_SIZE) -> Path:
    """Write a synthetic cohort to CSV or Parquet (by extension), atomically, with its provenance.

    CSV goes through :func:`cnslrisk.model.cohort_io.write_cohort` (a ``#`` provenance header).
    Parquet is streamed chunk by chunk (one row group each) to a temporary file that is renamed into
    place, with the provenance in the schema metadata, so memory stays bounded for any ``n``.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    if cohort_format(path) == "csv":
        return write_cohort(generate_cohort(n, seed, chunk_size), path, provenance=synthetic_provenance(n, seed))
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema().with_metadata({PROVENANCE_KEY: json.dumps(synthetic_provenance(n, seed), sort_keys=True)})
    with atomic_output(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for chunk in iter_cohort(n, seed, chunk_size):
            writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
    return path


def _exact_sampler(counts: list[int]) -> _Sampler:
    """Assign exactly ``counts[j]`` rows to category ``j``, favouring rows by their model probabilities.

    Successive sampling without replacement: category ``j`` takes its rows from those still free, each
    weighted by ``p_j / (p_j + ... + p_last)``. An approximation to conditioning the multinomial draw on
    its counts that keeps the direction and rough size of every covariate association.
    """

    def sample(prob: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        labels = np.full(prob.shape[0], len(counts) - 1)
        free = np.arange(prob.shape[0])
        for j, count in enumerate(counts[:-1]):
            weight = prob[free, j] / prob[free, j:].sum(axis=1)
            pick = rng.choice(free, size=count, replace=False, p=weight / weight.sum())
            labels[pick] = j
            free = np.setdiff1d(free, pick)
        return labels

    return sample


def _meets_criteria(df: pd.DataFrame) -> bool:
    crit = EXAMPLE_CRITERIA
    coef, _ = cal.cox_fit(df["pfs1_months"].to_numpy(), df["pfs1_event"].to_numpy(),
                          df[["pce", "lmd"]].to_numpy(dtype=float))
    for j, name in enumerate(("pce", "lmd")):
        lower, upper = crit["cox_hr_within_published_ci"][name]
        published = cal.PUBLISHED[f"hr_{name}"]["value"][0]
        if not (lower < math.exp(coef[j]) < upper
                and abs(coef[j] - math.log(published)) <= crit["cox_max_abs_log_hr_deviation"][name]):
            return False
    low, high = crit["km_median_pfs1_months"]
    time, event = df["pfs1_months"].to_numpy(), df["pfs1_event"].to_numpy()
    return all(low <= cal.km_median(time, event, strict=strict) <= high for strict in (False, True))


def make_example_cohort(max_seeds: int = 100_000) -> pd.DataFrame:
    """The bundled 60-patient example: published counts exactly, published effects as a 60-patient study shows them.

    For seeds 0, 1, 2, ...: response is drawn with exactly 27 CR, 9 PR, 10 SD, 14 PD (exact-count
    sampling from the model's probabilities; the published 24 SD/PD split by the assumed PD share),
    CNS-PFS1 from the model; a draw with exactly 36
    progressions gets exactly 14 local, 10 local-and-distant and 12 distant patterns; it is accepted
    when its own Cox fit (pCE + LMD) and Kaplan-Meier median meet :data:`EXAMPLE_CRITERIA`.

    Returns
    -------
    pandas.DataFrame
        ``attrs["provenance"]`` records the accepted seed and the criteria.

    Raises
    ------
    RuntimeError
        When no seed below ``max_seeds`` meets the criteria.
    """
    v = _values()
    crit = EXAMPLE_CRITERIA
    response, pattern = crit["best_response"], crit["pattern"]
    response_counts = [response[r] for r in cal.RESPONSES]
    pattern_counts = [pattern[p] for p in cal.PATTERNS]
    for seed in itertools.islice(itertools.count(), max_seeds):
        rng = np.random.default_rng(seed)
        c = _patients(v, rng, crit["n"], _exact_sampler(response_counts))
        if int(c["pfs1_event"].sum()) != sum(pattern_counts):
            continue
        _progression(v, rng, c, _exact_sampler(pattern_counts))
        df = _frame(c, 1, 3)
        if _meets_criteria(df):
            search = "first seed from 0 meeting the criteria"
            df.attrs["provenance"] = synthetic_provenance(crit["n"], seed, example=True, seed_search=search,
                                                          criteria=crit)
            return df
    raise RuntimeError(f"make_example_cohort: no seed below {max_seeds} meets the example criteria")


def write_example_cohort(path: str | os.PathLike[str]) -> Path:
    """Write :func:`make_example_cohort` with its provenance header (CSV) or metadata (Parquet)."""
    df = make_example_cohort()
    return write_cohort(df, path, provenance=df.attrs["provenance"])
