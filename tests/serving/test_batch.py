"""Batch scoring of real files: formats, ids, atomicity, rejects, kill -9 and agreement with one-patient scoring."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from cnslrisk.data.synthetic import generate_cohort, write_synthetic_cohort
from cnslrisk.model import CohortValidationError, write_cohort
from cnslrisk.serving.batch import count_rows, score_file
from cnslrisk.serving.scoring import score_records


@pytest.fixture
def cohort():
    return generate_cohort(250, seed=11)


@pytest.mark.parametrize(("source", "target"), [("in.csv", "out.parquet"), ("in.parquet", "out.csv")])
def test_formats_ids_and_counts(registered, cohort, tmp_path, source, target):
    write_cohort(cohort, tmp_path / source)
    summary = score_file(registered.model, tmp_path / source, tmp_path / target, chunk_size=64)
    assert (summary.rows_in, summary.scored, summary.rejected) == (250, 250, 0)
    out = pd.read_parquet(tmp_path / target) if target.endswith("parquet") else pd.read_csv(tmp_path / target)
    assert out["patient_id"].tolist() == cohort["patient_id"].tolist()
    assert list(out.columns) == registered.model.predict_columns()
    assert not list(tmp_path.glob(".*.partial"))


def test_batch_row_equals_single_patient_output(registered, cohort, tmp_path):
    write_cohort(cohort, tmp_path / "in.csv")
    score_file(registered.model, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_size=100)
    batch = pd.read_parquet(tmp_path / "out.parquet").set_index("patient_id")
    for i in (0, 137, 249):
        record = cohort.iloc[i].to_dict()
        single = score_records(registered.model, [record])["predictions"][0]
        row = batch.loc[record["patient_id"]]
        for column in registered.model.predict_columns()[1:-1]:
            expected, got = single[column], row[column]
            if expected is None:
                assert np.isnan(got), column
            elif isinstance(expected, str):
                assert got == expected
            else:
                assert got == pytest.approx(expected, rel=1e-12, abs=1e-15), column


def test_invalid_rows_stop_the_run_and_leave_no_output(registered, cohort, tmp_path):
    bad = cohort.copy()
    bad = bad.astype({"age": object, "pce": object})
    bad.loc[5, "age"] = "old"
    bad.loc[200, "pce"] = "maybe"
    write_cohort(bad, tmp_path / "in.csv")
    with pytest.raises(CohortValidationError) as info:
        score_file(registered.model, tmp_path / "in.csv", tmp_path / "out.csv", chunk_size=64)
    messages = [p.message() for p in info.value.problems]
    assert messages == ["row 6 (patient SYN-006), field age: 'old' is not a number >= 18 and <= 100 (years)",
                        "row 201 (patient SYN-201), field pce: 'maybe' is not one of {true, false}"]
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.glob(".*.partial"))


def test_rejects_file_takes_invalid_rows_with_reasons(registered, cohort, tmp_path):
    bad = cohort.copy()
    bad.loc[[5, 70, 71], "age"] = -1.0
    write_cohort(bad, tmp_path / "in.parquet")
    summary = score_file(registered.model, tmp_path / "in.parquet", tmp_path / "out.csv",
                         rejects_path=tmp_path / "rejects.csv", chunk_size=64)
    assert (summary.rows_in, summary.scored, summary.rejected) == (250, 247, 3)
    rejects = pd.read_csv(tmp_path / "rejects.csv", dtype=str)
    assert rejects["row"].tolist() == ["6", "71", "72"]
    assert rejects["reasons"].str.contains("field age: '-1' is below the minimum 18").all()
    scored = pd.read_csv(tmp_path / "out.csv")
    assert set(scored["patient_id"]) | set(rejects["patient_id"]) == set(cohort["patient_id"])
    assert not set(scored["patient_id"]) & set(rejects["patient_id"])


def test_a_failed_background_write_stops_the_run_and_leaves_no_output(registered, cohort, tmp_path, monkeypatch):
    # chunks are written on a background thread: its failure (here a full disk on the third chunk, injected into
    # pyarrow's writer) must reach the caller and leave neither the output nor its partial file
    import pyarrow.parquet as pq

    write_cohort(cohort, tmp_path / "in.csv")
    calls = []
    real_write = pq.ParquetWriter.write_table

    def write_table(self, table, *args, **kwargs):
        calls.append(len(table))
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_write(self, table, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", write_table)
    with pytest.raises(OSError, match="No space left"):
        score_file(registered.model, tmp_path / "in.csv", tmp_path / "out.parquet", chunk_size=50)
    assert calls == [50, 50, 50]  # the run stopped at the failed chunk (written while the fourth was scored)
    assert not (tmp_path / "out.parquet").exists() and not list(tmp_path.glob(".*.partial"))


def test_file_level_problems(registered, cohort, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(CohortValidationError, match="the file is empty"):
        score_file(registered.model, tmp_path / "empty.csv", tmp_path / "out.csv")
    write_cohort(cohort.drop(columns=["lmd"]).assign(favourite_colour="red"), tmp_path / "cols.csv")
    with pytest.raises(CohortValidationError) as info:
        score_file(registered.model, tmp_path / "cols.csv", tmp_path / "out.csv")
    assert [p.message() for p in info.value.problems] == ["field lmd: required column is missing; expected one of "
                                                         "{true, false}"]
    assert not (tmp_path / "out.csv").exists()


def _registry_extract(cohort: pd.DataFrame) -> pd.DataFrame:
    """The cohort with 30 columns a registry carries and the model does not use (ids, dates, labs, codes)."""
    rng = np.random.default_rng(4)
    extras = {f"lab_{i:02d}": rng.normal(size=len(cohort)).round(2) for i in range(20)}
    extras.update({f"site_code_{i}": "A" for i in range(5)})
    extras.update({"admission_date": "2024-01-02", "discharge_date": "2024-02-03", "hospital": "X",
                   "study_arm": "none", "followup_visit": "3"})
    return cohort.assign(**extras)


def test_a_registry_extract_with_30_extra_columns_scores_and_lists_them(registered, cohort, tmp_path):
    extract = _registry_extract(cohort)
    write_cohort(extract, tmp_path / "in.csv")
    summary = score_file(registered.model, tmp_path / "in.csv", tmp_path / "out.csv", chunk_size=100)
    assert (summary.rows_in, summary.scored, summary.rejected) == (250, 250, 0)
    used = set(registered.model.input_schema.names)
    assert summary.ignored == tuple(c for c in extract.columns if c not in used)
    assert len(summary.ignored) == 30 + sum(c not in used for c in cohort.columns)
    # the training config's outcome columns and the dictionary's other fields are known; the registry's are not
    assert {"pfs1_months", "pfs1_event", "pattern", "sex"} <= set(summary.columns.recognised)
    assert not {"lab_00", "hospital"} & set(summary.columns.recognised)
    assert summary.columns.summary().startswith(f"ignored {len(summary.ignored)} column(s) the model does not use: ")
    write_cohort(cohort, tmp_path / "plain.csv")
    score_file(registered.model, tmp_path / "plain.csv", tmp_path / "plain_out.csv", chunk_size=100)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "out.csv"), pd.read_csv(tmp_path / "plain_out.csv"))


def test_strict_rejects_every_extra_column_by_name(registered, cohort, tmp_path):
    write_cohort(cohort.assign(site_code="A"), tmp_path / "in.csv")
    with pytest.raises(CohortValidationError) as info:
        score_file(registered.model, tmp_path / "in.csv", tmp_path / "out.csv", strict=True)
    fields = [p.field for p in info.value.problems]
    assert "site_code" in fields and "pfs1_months" in fields and "lmd" not in fields
    assert all("--strict refuses every column the model does not use" in p.expected for p in info.value.problems)
    assert not (tmp_path / "out.csv").exists() and not list(tmp_path.glob(".*.partial"))


@pytest.mark.parametrize(("typo", "meant"), [("LMD", "lmd"), ("ldm", "lmd"), ("prior_line", "prior_lines"),
                                             ("Cnsl-Type", "cnsl_type")])
def test_a_near_miss_of_an_input_name_is_an_error_naming_both(registered, cohort, tmp_path, typo, meant):
    write_cohort(cohort.rename(columns={meant: typo}), tmp_path / "in.csv")
    with pytest.raises(CohortValidationError) as info:
        score_file(registered.model, tmp_path / "in.csv", tmp_path / "out.csv")
    messages = [p.message() for p in info.value.problems]
    assert f"field {typo}: looks like the model input {meant!r}, which the file lacks: rename the column to " \
           f"{meant!r} (or remove it)" in messages
    assert not (tmp_path / "out.csv").exists()


def test_count_rows_matches_the_file(cohort, tmp_path):
    write_cohort(cohort, tmp_path / "in.csv", provenance={"source": "synthetic"})
    write_cohort(cohort, tmp_path / "in.parquet")
    assert count_rows(tmp_path / "in.csv") == count_rows(tmp_path / "in.parquet") == 250


def test_kill_9_then_rerun_scores_every_row_exactly_once(registered, tmp_path):
    source = write_synthetic_cohort(tmp_path / "big.parquet", 400_000, seed=3)
    out = tmp_path / "scored.parquet"
    command = [sys.executable, "-m", "cnslrisk.cli", "score", "--model", registered.model_uri,
               "--tracking-uri", registered.tracking_uri, "--input", str(source), "--out", str(out),
               "--chunk-size", "20000"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = tmp_path / f".{out.name}.partial"
    deadline = time.monotonic() + 120
    while not partial.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed; use a larger input"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert partial.exists() and not out.exists()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=300)
    ids = pd.read_parquet(out, columns=["patient_id"])["patient_id"]
    assert len(ids) == 400_000 and ids.is_unique and not partial.exists()


def test_no_band_leaves_only_the_band_columns_empty(registered, cohort, tmp_path):
    write_cohort(cohort, tmp_path / "in.parquet")
    score_file(registered.model, tmp_path / "in.parquet", tmp_path / "with.parquet")
    score_file(registered.model, tmp_path / "in.parquet", tmp_path / "without.parquet", band=False)
    with_band, without = pd.read_parquet(tmp_path / "with.parquet"), pd.read_parquet(tmp_path / "without.parquet")
    bands = [c for c in with_band.columns if c.endswith(("_lower", "_upper"))]
    assert with_band[bands].notna().all().all() and without[bands].isna().all().all()
    pd.testing.assert_frame_equal(with_band.drop(columns=bands), without.drop(columns=bands))
