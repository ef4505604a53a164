"""Workers of a killed training process exit too: a real process killed with SIGKILL, its workers read in /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")

TRAINING = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from cnslrisk.training.crossval import run_chunked

    folder = Path(sys.argv[1])

    def busy(chunk):
        (folder / f"worker-{os.getpid()}").write_text(str(os.getppid()))
        end = time.monotonic() + 120  # far longer than the test: only the watchdog can end it
        while time.monotonic() < end:
            sum(range(10_000))
        return chunk

    run_chunked(busy, list(range(4)), 2, None)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in state  # a zombie has exited; only its exit status is left for its new parent


def test_workers_exit_when_the_training_process_is_killed(tmp_path):
    training = subprocess.Popen([sys.executable, "-c", TRAINING, str(tmp_path)])
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("worker-*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = {int(p.name.split("-")[1]): int(p.read_text()) for p in tmp_path.glob("worker-*")}
        assert len(workers) == 2, "the two workers did not start"
        assert set(workers.values()) == {training.pid}  # they are the training process's own children
        assert all(_alive(pid) for pid in workers)
    finally:
        os.kill(training.pid, signal.SIGKILL)
        training.wait()
    deadline = time.monotonic() + 10  # the watchdog polls every 0.2 s
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in workers if _alive(pid)]
    for pid in left:  # do not leave them running if the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived the killed training process"
