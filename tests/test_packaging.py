"""A published package's files agree: LICENSE, CITATION.cff and CHANGELOG.md follow pyproject.toml."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
STUDY_DOI = "10.1186/s13045-025-01761-8"


def test_license_file_is_the_licence_pyproject_declares():
    assert PROJECT["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) ") and "the cnslrisk authors" in text.splitlines()[2]


def test_citation_cites_this_version_and_the_study():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0" and citation["type"] == "software"
    assert citation["version"] == PROJECT["version"] and citation["license"] == "MIT"
    assert [reference["doi"] for reference in citation["references"]] == [STUDY_DOI]


def test_changelog_has_unreleased_and_this_version():
    headings = [line for line in (ROOT / "CHANGELOG.md").read_text().splitlines() if line.startswith("## ")]
    assert headings[0] == "## [Unreleased]"
    assert any(h.startswith(f"## [{PROJECT['version']}] - ") for h in headings)
