"""The real `cnslrisk score` command: one patient, bad input, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PATIENT = {"patient_id": "P-1", "age": 61, "ecog": 1, "cnsl_type": "primary", "prior_lines": 2,
           "steroids": False, "ldh_elevated": True, "pce": True, "lmd": False}


def run(registered, *args):
    """The CLI in this process (typer's runner): the same code path as the console script, minus start-up."""
    from typer.testing import CliRunner

    from cnslrisk.cli import app

    result = CliRunner().invoke(app, ["score", "--model", registered.model_uri, "--tracking-uri",
                                      registered.tracking_uri, *args])
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_the_console_script_runs(registered):
    command = [sys.executable, "-m", "cnslrisk.cli", "score", "--model", registered.model_uri,
               "--tracking-uri", registered.tracking_uri, "--patient", json.dumps(PATIENT), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["predictions"][0]["patient_id"] == "P-1"


def test_one_patient_json_matches_the_library(registered):
    from cnslrisk.serving.scoring import score_records

    done = run(registered, "--patient", json.dumps(PATIENT), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    expected = score_records(registered.model, [PATIENT])
    assert result["predictions"][0]["survival_6"] == pytest.approx(expected["predictions"][0]["survival_6"])
    assert result["provenance"]["training_source"] == "synthetic" and result["provenance"]["not_for_clinical_use"]
    assert result["provenance"]["model_alias"] == "champion"


def words(text: str) -> str:
    """The printed text with its line breaks undone (the console wraps at its width)."""
    return " ".join(text.split())


def test_summary_horizons_and_plot(registered, tmp_path):
    from cnslrisk.serving.scoring import score_records

    done = run(registered, "--patient", json.dumps(PATIENT), "--horizons", "1,24", "--plot", str(tmp_path / "c.png"))
    assert done.returncode == 0, done.stderr
    text = words(done.stdout)
    assert "NOT FOR CLINICAL USE" in text and "Median CNS-PFS1:" in text
    assert "1 month " in text and "24 months " in text and "1 months" not in text
    plain = score_records(registered.model, [PATIENT], horizons=(1.0, 24.0))["predictions"][0]["plain_language"]
    for entry in plain["horizons"]:  # the JSON's plain-language sentences, before the table of numbers
        assert entry["sentence"] in text
        assert text.index(entry["sentence"]) < text.index("time from infusion")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_summary_prints_warnings_before_the_numbers(registered):
    from cnslrisk.serving.scoring import score_records

    patient = {**PATIENT, "age": 99}  # outside the training range
    done = run(registered, "--patient", json.dumps(patient))
    assert done.returncode == 0, done.stderr
    text = words(done.stdout)
    plain = score_records(registered.model, [patient])["predictions"][0]["plain_language"]
    assert plain["warnings"], "age 99 must be flagged"
    for warning in plain["warnings"]:
        assert warning in text and text.index(warning) < text.index("In plain words:") < text.index("time from")
    assert text.index("Read first:") < text.index("In plain words:")


def test_summary_labels_the_post_response_prediction_only_when_a_response_is_given(registered):
    from cnslrisk.serving.scoring import score_records

    without = run(registered, "--patient", json.dumps(PATIENT))
    assert without.returncode == 0, without.stderr
    assert "Post-response prediction" not in without.stdout
    given = run(registered, "--patient", json.dumps({**PATIENT, "best_response": "PD"}))
    assert given.returncode == 0, given.stderr
    text = words(given.stdout)
    landmark = registered.model.landmark
    assert f"Post-response prediction, after the first response assessment ({landmark.time:g} month" in text
    assert f"Holds only for a patient still alive and free of CNS progression {landmark.time:g} month" in text
    post = score_records(registered.model, [{**PATIENT, "best_response": "PD"}])["predictions"][0]
    for entry in post["plain_language"]["post_response"]["horizons"]:
        assert entry["sentence"] in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--patient", '{"age": 61,'], "--patient: malformed JSON at line 1 column 12"),
        (["--patient", "[]"], "expected a JSON object (one patient) or a non-empty list"),
        (["--patient", json.dumps({**PATIENT, "age": 150})],
         "row 1 (patient P-1), field age: '150' is above the maximum 100"),
        (["--patient", json.dumps({k: v for k, v in PATIENT.items() if k != "lmd"})],
         "field lmd: required column is missing"),
        (["--patient", json.dumps({**PATIENT, "lmdd": True})], "field lmdd: unknown column"),
        (["--patient", json.dumps({**PATIENT, "best_response": "complete"})],
         "field best_response: 'complete' is not one of {CR, PR, SD, PD}"),
        (["--patient", json.dumps(PATIENT), "--horizons", "6,3"], "horizons must be positive and increasing"),
        ([], "give exactly one of --patient, --patient-file or --input FILE --out FILE"),
    ],
)
def test_bad_input_exits_1_with_a_clear_message(registered, args, message):
    done = run(registered, *args)
    assert done.returncode == 1
    assert message in " ".join(done.stderr.split()), done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_model_is_a_clear_error(registered):
    done = run(registered, "--patient", json.dumps(PATIENT), "--model", "models:/no-such-model@champion")
    assert done.returncode == 1 and "model models:/no-such-model@champion: cannot be found" in done.stderr
