"""Batch scoring of cohort files: chunked, bounded in memory, atomic, with optional rejects.

The output (and the rejects file) is written to a hidden ``.NAME.partial`` beside the target and
renamed into place only when every input row has been handled: a killed run leaves no file that
looks complete, and a rerun starts again from the first row, so each input row ends up in the
output (or the rejects) exactly once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cnslrisk.model import CohortValidationError, Problem
from cnslrisk.model.cohort_io import cohort_format, partial_path
from cnslrisk.model.inputs import InputColumns, sort_columns
from cnslrisk.model.predictor import RiskModel

__all__ = ["BatchSummary", "score_file", "count_rows", "DEFAULT_CHUNK_SIZE"]

DEFAULT_CHUNK_SIZE = 100_000


@dataclass(frozen=True)
class BatchSummary:
    """Row counts of a batch run (``rows_in == scored + rejected`` always) and the columns it ignored."""

    rows_in: int
    scored: int
    rejected: int
    out: Path
    rejects: Path | None
    columns: InputColumns | None = None

    @property
    def ignored(self) -> tuple[str, ...]:
        """The input columns that are not model inputs, in file order (see :class:`InputColumns`)."""
        return self.columns.ignored if self.columns is not None else ()


def _csv_comment_lines(path: Path) -> int:
    count = 0
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.startswith("#"):
                break
            count += 1
    return count


def count_rows(path: str | os.PathLike[str]) -> int:
    """Data rows in a CSV (lines after the header and ``#`` comments) or Parquet file (from its metadata)."""
    path = Path(path)
    if cohort_format(path) == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as handle:
        lines = sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
        handle.seek(max(handle.tell() - 1, 0))
        unterminated = handle.read(1) not in (b"\n", b"")
    return max(lines + unterminated - 1 - _csv_comment_lines(path), 0)


def _chunks(path: Path, chunk_size: int) -> Iterator[pd.DataFrame]:
    try:
        if cohort_format(path) == "parquet":
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
                yield batch.to_pandas()
        else:
            reader = pd.read_csv(path, dtype=str, keep_default_na=False, chunksize=chunk_size,
                                 skiprows=_csv_comment_lines(path))
            yield from reader
    except pd.errors.EmptyDataError:
        problem = Problem(f"file {path}: the file is empty; expected a header and data rows")
        raise CohortValidationError([problem]) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, CohortValidationError):
            raise
        raise CohortValidationError([Problem(f"file {path}: cannot be read ({exc})")]) from None


class _AtomicWriter:
    """Appends DataFrames to ``.NAME.partial``; ``commit`` renames it to NAME, ``discard`` deletes it.

    Each chunk is written on a background thread while the caller scores the next one (Parquet
    encoding and file I/O release the GIL); at most one write is in flight, so memory stays bounded
    by two chunks, and a failed write is raised by the next ``write`` or by ``commit``.
    """

    def __init__(self, path: Path):
        self.path = path
        self.kind = cohort_format(path)
        self.tmp = partial_path(path)
        self._parquet: Any = None
        self._started = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cnslrisk-writer")
        self._pending: Future[None] | None = None
        self.tmp.unlink(missing_ok=True)  # a killed earlier run: start again from the first row

    def write(self, frame: pd.DataFrame) -> None:
        self._wait()
        self._pending = self._pool.submit(self._append, frame)

    def _wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def _append(self, frame: pd.DataFrame) -> None:
        if self.kind == "csv":
            frame.to_csv(self.tmp, mode="a" if self._started else "w", header=not self._started, index=False,
                         lineterminator="\n")
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.tmp, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        self._started = True

    def commit(self, empty_columns: list[str]) -> None:
        self._wait()
        if not self._started:
            self._append(pd.DataFrame(columns=empty_columns))
        self._pool.shutdown()
        if self._parquet is not None:
            self._parquet.close()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        try:
            self._wait()
        except Exception:  # the run is already failing: its own error is the one to report
            pass
        self._pool.shutdown()
        if self._parquet is not None:
            self._parquet.close()
        self.tmp.unlink(missing_ok=True)


def _offset(problems: list[Problem], start: int) -> list[Problem]:
    return [p if p.row is None else replace(p, row=p.row + start) for p in problems]


def _text_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows as text, so one rejects file holds any mix of bad values."""
    return frame.astype(object).where(frame.notna(), None).astype(str).replace("None", "")


def score_file(
    model: RiskModel,
    input_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    rejects_path: str | os.PathLike[str] | None = None,
    horizons: tuple[float, ...] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    strict: bool = False,
    band: bool = True,
    progress: Callable[[int], None] | None = None,
) -> BatchSummary:
    """Score every row of a CSV or Parquet file into another (formats by extension).

    Parameters
    ----------
    model : RiskModel
    input_path, out_path : path-like
        Input cohort and output file; the id column is carried through first.
    rejects_path : path-like, optional
        Without it, any invalid row stops the run before the output exists and every problem is
        raised at once. With it, valid rows are scored and each invalid row goes to this file with
        its 1-based ``row`` number and ``reasons``.
    horizons : tuple of float, optional
        Override the model's horizons.
    chunk_size : int, default=100000
        Rows per chunk; memory is bounded by the chunk, not the file.
    strict : bool, default=False
        Refuse every column that is not a model input. By default such columns are ignored (not
        read into the output) and listed in the summary; a column whose name is a near-miss of a
        missing input's is refused either way (:func:`~cnslrisk.model.inputs.sort_columns`).
    band : bool, default=True
        Compute the 95 % band (False: ``_lower``/``_upper`` left empty, for speed with forest models).
    progress : callable, optional
        Called with the number of rows handled after each chunk.

    Raises
    ------
    CohortValidationError
        For unreadable or empty input, missing columns, a near-miss column name (or, with ``strict``,
        any extra column) and (without ``rejects_path``) invalid rows; no output file is left behind.
    """
    input_path, out_path = Path(input_path), Path(out_path)
    schema = model.input_schema
    out = _AtomicWriter(out_path)
    rejects = _AtomicWriter(Path(rejects_path)) if rejects_path else None
    problems: list[Problem] = []
    rows_in = scored = rejected = 0
    output_columns: list[str] = []
    columns: InputColumns | None = None
    try:
        for chunk in _chunks(input_path, chunk_size):
            start, rows_in = rows_in, rows_in + len(chunk)
            chunk.index = pd.RangeIndex(start, rows_in)
            if columns is None:  # the header: which columns are the model's inputs, which are ignored
                columns = sort_columns(schema.names, schema.passthrough, [str(c) for c in chunk.columns],
                                       strict=strict)
            inputs = chunk[list(columns.used)]
            try:
                checked = schema.check(inputs, require_outcome=False)
                bad_rows: dict[int, list[str]] = {}
            except CohortValidationError as exc:
                found = _offset(exc.problems, start)
                if any(p.row is None for p in found):  # a whole-file problem: no row can be scored
                    raise CohortValidationError([p for p in found if p.row is None]) from None
                bad_rows = {}
                for p in found:
                    bad_rows.setdefault(p.row, []).append(p.message())
                if rejects is None:
                    problems.extend(found)
                    continue
                keep = ~np.isin(np.arange(start + 1, rows_in + 1), list(bad_rows))
                checked = schema.check(inputs[keep], require_outcome=False)
            if bad_rows and rejects is not None:
                positions = np.asarray(sorted(bad_rows)) - 1 - start
                rejected_rows = _text_frame(chunk.iloc[positions]).assign(
                    row=sorted(bad_rows), reasons=["; ".join(bad_rows[r]) for r in sorted(bad_rows)])
                rejects.write(rejected_rows)
                rejected += len(rejected_rows)
            if not problems and len(checked):
                predicted = model.predict(checked, horizons=horizons, band=band)
                output_columns = list(predicted.columns)
                out.write(predicted)
                scored += len(predicted)
            if progress is not None:
                progress(len(chunk))
        if rows_in == 0:
            raise CohortValidationError([Problem(f"file {input_path}: no data rows; expected at least one")])
        if problems:
            raise CohortValidationError(problems)
        out.commit(output_columns or list(model.predict_columns(horizons)))
        if rejects is not None:
            rejects.commit([*(c for c in schema.names), "row", "reasons"])
    except BaseException:
        out.discard()
        if rejects is not None:
            rejects.discard()
        raise
    return BatchSummary(rows_in=rows_in, scored=scored, rejected=rejected, out=out_path,
                        rejects=Path(rejects_path) if rejects_path else None, columns=columns)
