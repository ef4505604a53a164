"""Reading and writing cohort files (CSV or Parquet) with their provenance.

A cohort file says whether it is synthetic: CSV files in leading ``#`` comment lines
(``# cnslrisk-provenance: {...json...}``), Parquet files in the schema metadata key
``cnslrisk-provenance``. A file that says nothing is treated as real patient data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .contract import CohortValidationError, Problem

__all__ = ["atomic_output", "partial_path", "read_cohort", "write_cohort", "file_sha256", "cohort_format",
           "PROVENANCE_KEY"]

PROVENANCE_KEY = "cnslrisk-provenance"
_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def cohort_format(path: str | os.PathLike[str]) -> str:
    """Return ``"csv"`` or ``"parquet"`` from the file extension, or raise a ValueError that lists both."""
    suffix = Path(path).suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"file {os.fspath(path)}: extension {suffix!r} is not supported; expected .csv or .parquet")
    return _FORMATS[suffix]


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _csv_comments(path: Path) -> list[str]:
    comments = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            comments.append(line[1:].strip())
    return comments


def _provenance_from_comments(comments: list[str]) -> dict[str, Any]:
    prefix = PROVENANCE_KEY + ":"
    for line in comments:
        if line.startswith(prefix):
            return json.loads(line[len(prefix):])
    return {}


def read_cohort(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a cohort file as raw values (CSV cells stay text, so the validator sees every spelling).

    Returns
    -------
    pandas.DataFrame
        ``attrs["provenance"]`` holds the file's provenance (``source`` is ``"synthetic"`` or
        ``"real"``), ``attrs["sha256"]`` the file's hash and ``attrs["path"]`` its path.

    Raises
    ------
    CohortValidationError
        When the file is missing, unreadable, of an unknown format or empty.
    """
    path = Path(path)
    try:
        kind = cohort_format(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        if kind == "csv":
            comments = _csv_comments(path)
            df = pd.read_csv(path, dtype=str, keep_default_na=False, skiprows=len(comments))
            provenance = _provenance_from_comments(comments)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
            meta = (table.schema.metadata or {}).get(PROVENANCE_KEY.encode())
            provenance = json.loads(meta) if meta else {}
            df = table.to_pandas()
    except pd.errors.EmptyDataError:
        problem = Problem(f"file {path}: the file is empty; expected a header and data rows")
        raise CohortValidationError([problem]) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise CohortValidationError([Problem(f"file {path}: cannot be read ({exc})")]) from None
    provenance.setdefault("source", "real")
    df.attrs.update(provenance=provenance, sha256=file_sha256(path), path=str(path))
    return df


def _with_text_booleans(df: pd.DataFrame) -> pd.DataFrame:
    out = df.copy()
    for name in out.columns:
        if pd.api.types.is_bool_dtype(out[name].dtype):
            out[name] = out[name].map({True: "true", False: "false"}).astype(object)
    return out


def partial_path(path: str | os.PathLike[str]) -> Path:
    """Where a file is written until it is complete: a hidden ``.NAME.partial`` beside it."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Give the partial path to write; rename it to ``path`` when the block ends normally, else delete it.

    A reader therefore never sees a half-written file under ``path``, and a failed or killed run
    leaves nothing that looks finished.
    """
    tmp = partial_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_cohort(
    df: pd.DataFrame, path: str | os.PathLike[str], *, provenance: Mapping[str, Any] | None = None
) -> Path:
    """Write a cohort atomically (a temporary file renamed into place), with its provenance.

    Booleans are written ``true``/``false`` in CSV.
    """
    path = Path(path)
    kind = cohort_format(path)
    with atomic_output(path) as tmp:
        if kind == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as handle:
                if provenance:
                    handle.write(f"# {PROVENANCE_KEY}: {json.dumps(dict(provenance), sort_keys=True)}\n")
                _with_text_booleans(df).to_csv(handle, index=False, lineterminator="\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            if provenance:
                meta = dict(table.schema.metadata or {})
                meta[PROVENANCE_KEY.encode()] = json.dumps(dict(provenance), sort_keys=True).encode()
                table = table.replace_schema_metadata(meta)
            pq.write_table(table, tmp)
    return path
