"""The layering rule, as import-linter contracts ([tool.importlinter] in pyproject.toml), is part of the test run.

import-linter runs in a child process, as `lint-imports` would: its command configures logging for the whole
process and puts the working directory on sys.path, neither of which belongs in the test session.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INDIRECT = "allow_indirect_imports = true"


def lint_imports(directory: Path) -> subprocess.CompletedProcess[str]:
    """Check the contracts of ``directory``/pyproject.toml; no cache, so a stale graph cannot hide a new import."""
    command = "from importlinter.cli import lint_imports_command; lint_imports_command()"
    return subprocess.run([sys.executable, "-c", command, "--no-cache"], cwd=directory, capture_output=True,
                          text=True, timeout=120)


def test_import_contracts_are_kept():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_broken_contract_fails_and_names_the_chain(tmp_path):
    # the same contracts with indirect mlflow imports forbidden: the 0.1.0 shim serving.pyfunc re-exports
    # registry.pyfunc, which imports mlflow, so the graph must see that chain across the namespace's folders
    text = (ROOT / "pyproject.toml").read_text()
    assert text.count(INDIRECT) == 1
    (tmp_path / "pyproject.toml").write_text(text.replace(INDIRECT, "allow_indirect_imports = false"))
    result = lint_imports(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "only the registry imports mlflow BROKEN" in result.stdout
    assert "cnslrisk.serving.pyfunc -> cnslrisk.registry.pyfunc" in result.stdout
