"""The cohort's provenance in words on the report page: no raw JSON, no Python booleans, markup escaped."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import read_cohort, write_cohort
from cnslrisk.report import report
from cnslrisk.report.provenance import ProvenanceLine, describe_provenance, plain_value

EXAMPLE = Path(__file__).parents[2] / "data" / "example_cohort.csv"


def _provenance_table(page: str) -> str:
    return re.search(r"<h2>Cohort and provenance</h2>\s*<table.*?</table>", page, re.S).group(0)


def test_example_provenance_reads_as_sentences():
    provenance = read_cohort(EXAMPLE).attrs["provenance"]
    lines = {line.label: line for line in describe_provenance(provenance)}
    assert lines["simulated by"].text == "the cnslrisk cohort simulator (cnslrisk synth)"
    assert lines["random seed"].text == str(provenance["seed"])
    assert lines["the example cohort bundled with cnslrisk"].text == "yes"
    criteria = lines["criteria the simulated cohort was chosen to meet"].items
    counts = provenance["criteria"]["best_response"]
    assert criteria[0] == f"exactly {provenance['criteria']['n']} patients"
    assert criteria[1] == "best response exactly " + ", ".join(f"{r} {counts[r]}" for r in ("CR", "PR", "SD", "PD"))
    low, high = provenance["criteria"]["cox_hr_within_published_ci"]["pce"]
    assert f"pCE {low:g}–{high:g}" in criteria[3]
    assert "source" not in lines  # shown on its own line of the page


def test_page_shows_no_json_and_no_python_booleans(tmp_path):
    page = report(EXAMPLE, tmp_path).read_text()
    table = _provenance_table(page)
    assert not re.search(r"[{}\[\]]|&quot;|\bTrue\b|\bFalse\b|\bNone\b", table)
    assert "<tr><td>the example cohort bundled with cnslrisk</td><td>yes</td></tr>" in table
    assert "<li>Kaplan–Meier median CNS-PFS1 from 3.5 to 4.5 months</li>" in table


@pytest.mark.parametrize("value, text", [
    (True, "yes"), (False, "no"), (None, "not stated"), (2.50, "2.5"), ([1, 2, 3], "1, 2, 3"),
    ({"lmd": 0.3, "pce": True, "site_b": [1, 2]}, "pCE yes; LMD 0.3; site b 1, 2"),
])
def test_plain_values(value, text):
    assert plain_value(value) == text


def test_unknown_keys_are_named_in_words():
    lines = describe_provenance({"source": "real", "irb_approved": True, "sites": ["A", "B"]})
    assert lines == [ProvenanceLine("irb approved", "yes"), ProvenanceLine("sites", "A, B")]


def test_markup_in_the_file_is_escaped(tmp_path):
    evil = "<script>alert(1)</script>"
    path = write_cohort(generate_cohort(40, seed=4), tmp_path / "c.csv", provenance={"source": "real", "site": evil})
    page = report(path, tmp_path / "out").read_text()
    assert "<script" not in page
    assert "<tr><td>site</td><td>&lt;script&gt;alert(1)&lt;/script&gt;</td></tr>" in page
