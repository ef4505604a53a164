"""The browser test's run / skip / fail decision (tests/serving/chromium_gate.py)."""

from __future__ import annotations

import pytest
from chromium_gate import decide, find_chromium


@pytest.mark.parametrize("env", [{}, {"CI": "true"}, {"CI": "false"}])
def test_a_present_browser_runs_whatever_the_environment(env):
    assert decide(env, "/opt/chromium") == ("run", "chromium at /opt/chromium", "/opt/chromium")


@pytest.mark.parametrize("env", [{}, {"CI": ""}, {"CI": "false"}, {"CI": "0"}, {"PATH": "/usr/bin"}])
def test_a_missing_browser_is_skipped_with_its_reason_outside_ci(env):
    action, reason, executable = decide(env, None)
    assert action == "skip" and executable is None
    assert reason.startswith("chromium not found (not on PATH, not at /usr/bin/chromium): install Debian's")


@pytest.mark.parametrize("value", ["true", "TRUE", "1", "yes", " true\n"])
def test_a_missing_browser_fails_under_ci(value):
    action, reason, executable = decide({"CI": value}, None)
    assert action == "fail" and executable is None
    assert reason.startswith("chromium not found") and reason.endswith("so a missing browser fails")


def test_find_chromium_on_path_then_debian_then_none(tmp_path):
    bin_dir, empty = tmp_path / "bin", tmp_path / "empty"
    bin_dir.mkdir()
    empty.mkdir()
    chromium = bin_dir / "chromium"
    chromium.write_text("#!/bin/sh\n")
    debian = tmp_path / "usr-bin-chromium"
    assert find_chromium(str(empty), str(debian)) is None  # neither
    chromium.chmod(0o644)
    debian.write_text("#!/bin/sh\n")
    debian.chmod(0o644)
    assert find_chromium(str(bin_dir), str(debian)) is None  # files, but not executable
    debian.chmod(0o755)
    assert find_chromium(str(empty), str(debian)) == str(debian)
    chromium.chmod(0o755)
    assert find_chromium(str(bin_dir), str(debian)) == str(chromium)  # PATH first
