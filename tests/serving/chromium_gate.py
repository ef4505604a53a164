"""Whether the browser test runs, is skipped or fails, from the environment and where Chromium is.

Chromium present: run. Absent: skip with the reason (a fresh machine need not have a browser), except under
CI (``CI=true``), where ``.ci/run`` installs Debian's chromium, so its absence is a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import NamedTuple

import pytest

__all__ = ["DEBIAN_CHROMIUM", "Decision", "decide", "find_chromium", "require_chromium"]

DEBIAN_CHROMIUM = "/usr/bin/chromium"


class Decision(NamedTuple):
    """``action`` is ``run``, ``skip`` or ``fail``; ``executable`` is the browser to run (None unless ``run``)."""

    action: str
    reason: str
    executable: str | None


def find_chromium(path: str | None = None, debian: str = DEBIAN_CHROMIUM) -> str | None:
    """``chromium`` on ``path`` (default PATH), else Debian's executable when there, else None."""
    return shutil.which("chromium", path=path) or (debian if os.access(debian, os.X_OK) else None)


def decide(env: Mapping[str, str], executable: str | None) -> Decision:
    """Run with ``executable``; without one, skip, or fail when ``env`` says CI (``CI`` is true, 1 or yes)."""
    if executable is not None:
        return Decision("run", f"chromium at {executable}", executable)
    reason = (f"chromium not found (not on PATH, not at {DEBIAN_CHROMIUM}): "
              "install Debian's chromium package to run the browser test")
    if env.get("CI", "").strip().lower() in {"true", "1", "yes"}:
        return Decision("fail", f"{reason}; CI is set, and .ci/run installs it, so a missing browser fails", None)
    return Decision("skip", reason, None)


def require_chromium() -> str:
    """The Chromium executable to drive, or skip / fail the calling test as :func:`decide` says."""
    decision = decide(os.environ, find_chromium())
    if decision.action == "skip":
        pytest.skip(decision.reason)
    if decision.action == "fail":
        pytest.fail(decision.reason, pytrace=False)
    return decision.executable
