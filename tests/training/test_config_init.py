"""`cnslrisk config init`: column kinds with their evidence, the user's outcome and time unit, horizons, errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from cnslrisk.model import CohortValidationError
from cnslrisk.training import load_config
from cnslrisk.training.config_init import infer_column, nice_horizons, starter_config


@pytest.mark.parametrize(("values", "kind", "evidence"), [
    (["0", "1", "1", "0"], "binary", "two values, read as true/false: 0 (2), 1 (2)"),
    (["yes", "no", "no", "no"], "binary", "two values, read as true/false: no (3), yes (1)"),
    (["F", "M", "M", "F", "F"], "categorical", "2 labels: F (3), M (2)"),
    (["1", "2", "2", "3", "1"], "numeric", "numbers from 1 to 3, 3 distinct (codes 1, 2, 3: per unit; list it "
                                           "under categorical if they are labels)"),
    ([str(v / 3) for v in range(30)], "numeric", "numbers from 0 to 9.66667, 30 distinct"),
    (["a", "b", "c", "d"], None, "text with 4 distinct values (an identifier or free text?)"),
    (["x", "x", "x"], None, "one value only (x)"),
    (["1.5", "", "2.5", "NA"], None, "2 missing value(s); to use it, list it under [features] and set "
                                    "features.impute = \"median\""),
])
def test_column_kinds_come_with_their_evidence(values, kind, evidence):
    inferred = infer_column("c", pd.Series(values, dtype=object))
    assert (inferred.kind, inferred.evidence) == (kind, evidence)


def test_horizons_are_rounded_quartiles_within_follow_up():
    rng = np.random.default_rng(0)
    times = rng.exponential(800, 300)
    horizons, quartiles = nice_horizons(times, float(times.max()))
    assert quartiles == pytest.approx(np.quantile(times, [0.25, 0.5, 0.75]).tolist())
    assert all(float(f"{h:.2g}") == h for h in horizons) and horizons == sorted(horizons)
    assert all(abs(h - q) <= 0.05 * q for h, q in zip(horizons, quartiles, strict=True))
    assert nice_horizons(np.array([3.46, 3.47, 3.48, 9.0]), 10.0)[0] == [3.47, 3.48, 4.86]


def _cohort(tmp_path):
    rng = np.random.default_rng(1)
    n = 120
    frame = pd.DataFrame({
        "subject": [f"S{i:03d}" for i in range(n)],
        "weeks": rng.integers(1, 200, n),
        "status": rng.choice([0, 1, 2], n, p=[0.3, 0.4, 0.3]),
        "age": rng.integers(8, 90, n),
        "sex": rng.choice(["female", "male"], n),
        "arm": rng.choice(["A", "B", "C"], n),
        "smoker": rng.choice(["yes", "no"], n),
        "note": [f"free text {i}" for i in range(n)],
    })
    path = tmp_path / "trial.csv"
    frame.to_csv(path, index=False)
    return path, frame


def test_the_starter_config_states_its_evidence_and_loads_for_training(tmp_path):
    path, frame = _cohort(tmp_path)
    out = tmp_path / "configs" / "trial.toml"
    out.parent.mkdir()
    text = starter_config(path, time="weeks", cause="status", time_unit="weeks", out=out)
    assert out.read_text() == text
    config = load_config(out, training=True)
    assert config.data.path == path.resolve() and config.data.id == "subject"
    assert (config.data.cause, config.data.censored, config.data.time_unit) == ("status", "0", "weeks")
    assert config.features.binary == ("smoker",) and config.features.categorical == ("sex", "arm")
    assert config.features.numeric == ("age",)
    assert "#   note: text with 120 distinct values" in text
    assert 'censored = "0"  # the one value of the cause column that is a usual code for no event; check it' in text
    # age has the CNSL dictionary's name and children: the config gives it its own rule (no range from the data)
    assert config.fields["age"].type == "number" and config.fields["age"].min is None
    assert "# age has a CNSL data dictionary name, but" in text and "sex" not in config.fields  # female/male fit
    events = frame.loc[frame["status"] != 0, "weeks"]
    assert list(config.validation.horizons) == nice_horizons(events.to_numpy(float), frame["weeks"].max())[0]
    assert config.validation.folds == load_config().validation.folds and config.mlflow.registered_model == "trial"
    with pytest.raises(ValueError, match=r"--out .*trial.toml: the file exists"):
        starter_config(path, time="weeks", cause="status", time_unit="weeks", out=out)


@pytest.mark.parametrize(("options", "message"), [
    ({"time": "week", "event": "status"}, r"--time week: no such column; the cohort has subject, weeks"),
    ({"time": "weeks", "event": "status"}, r"--event status: values \['0', '1', '2'\] are not true/false \(or 1/0\); "
                                          r"for a coded status give --cause status --censored VALUE instead"),
    ({"time": "weeks", "cause": "arm"}, r"--cause arm: give --censored VALUE, the value meaning no event \(values: "
                                        r"A, B, C\)"),
    ({"time": "weeks", "cause": "status", "censored": "9"}, r"--censored 9: not a value of status \(0, 1, 2\)"),
    ({"time": "age", "event": "smoker", "cause": "status"}, r"give exactly one of --event COL"),
])
def test_outcomes_that_cannot_be_used_are_refused_saying_what_to_give(tmp_path, options, message):
    path, _ = _cohort(tmp_path)
    with pytest.raises((CohortValidationError, ValueError), match=message):
        starter_config(path, time_unit="weeks", **options)


def test_the_command_writes_the_file(tmp_path):
    path, _ = _cohort(tmp_path)
    out = tmp_path / "trial.toml"
    done = subprocess.run([sys.executable, "-m", "cnslrisk.cli", "config", "init", str(path), "--time", "weeks",
                           "--cause", "status", "--censored", "0", "--time-unit", "weeks", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert load_config(out, training=True).data.censored == "0"
    again = subprocess.run([sys.executable, "-m", "cnslrisk.cli", "config", "init", str(path), "--time", "weeks",
                            "--event", "status", "--time-unit", "weeks"], capture_output=True, text=True)
    assert again.returncode == 1 and "are not true/false" in again.stderr
