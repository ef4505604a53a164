"""The README's promises: its first command runs as written, and CI runs exactly its test command."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("## Quick start (fresh machine, Python 3.11)")
    return [line.strip() for line in lines[start:start + 12] if line.startswith("    ")]


def test_readme_opens_with_two_commands():
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].startswith("python3 -m pip install -e . && cnslrisk ")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci


def test_readme_main_job_runs_as_written(tmp_path):
    """The first command after its install step, verbatim, in an empty folder holding only the bundled data."""
    import os
    import subprocess
    import sysconfig

    install, *steps = readme_commands()[0].split(" && ")
    assert install == "python3 -m pip install -e ." and steps
    (tmp_path / "data").symlink_to(ROOT / "data")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = os.pathsep.join([sysconfig.get_path("scripts"), env.get("PATH", "")])  # the installed `cnslrisk`
    done = subprocess.run(" && ".join(steps), shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "mlflow.db").is_file()
    assert (tmp_path / "cnslrisk-output" / "report" / "report.html").is_file()
    assert "report.html" in done.stdout  # it ends by saying where the report is, as the README promises
