"""Where the resampling runs: joblib processes on this machine, or a Dask cluster (``[compute]``).

Every refit of a validation (the comparison's folds, the bootstrap resamples, the pattern model's
folds, the band's refits) is a work unit: a module-level function applied to a chunk of tasks that
carry only small keys (a fold number, a seed) and return figures and held-out predictions, never
the data. Both backends run the same units on the same tasks, and every seed is fixed before
dispatch, so the results are identical wherever they run:

- ``backend = "local"`` (default): joblib's loky processes, ``n_jobs`` of them;
- ``backend = "dask"``: the scheduler at ``compute.address`` (``tcp://`` or ``tls://``), or, without an
  address, a local cluster of ``n_jobs`` single-threaded worker processes. The cohort and the splits are
  scattered to every worker once per training run (one copy per worker, so the loss of a worker loses
  no data) and the tasks refer to them; a task lost with its worker is rerun by the scheduler elsewhere.

Inside every unit the BLAS and OpenMP thread pools are held to one thread (threadpoolctl), so a
figure cannot depend on how many threads a machine's linear algebra would have used.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from threadpoolctl import ThreadpoolController

from .config import ComputeConfig, ConfigError

__all__ = ["WorkUnit", "DaskRunner", "use_compute", "active_runner", "interleaved_chunks", "DASK_EXTRA"]

DASK_EXTRA = 'pip install "cnslrisk[dask]"'
_CHUNKS_PER_SLOT = 4  # small enough to balance uneven refits and to lose little with a worker
_active: contextvars.ContextVar[DaskRunner | None] = contextvars.ContextVar("cnslrisk_compute", default=None)
_pinned_pid: int | None = None


def interleaved_chunks(count: int, slots: int) -> list[list[int]]:
    """Task positions in ``min(count, 4 * slots)`` interleaved chunks (one chunk per task when ``slots`` is 1)."""
    n = count if slots <= 1 else min(count, _CHUNKS_PER_SLOT * slots)
    return [c for c in (list(range(i, count, n)) for i in range(n)) if c]


class WorkUnit:
    """``fn`` run with one BLAS/OpenMP thread: for the call in the training process, for good in a worker.

    A worker process may run units in several threads; threadpoolctl's limits are per process, so
    there the limit is set once and never lifted (lifting it at the end of one unit would lift it
    under another).

    Parameters
    ----------
    fn : callable
        ``fn(*shared, chunk)``, a picklable (module-level) function or partial of one.
    """

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.home = os.getpid()

    def __call__(self, *args: Any) -> Any:
        global _pinned_pid
        if os.getpid() == self.home:
            with _thread_pools().limit(limits=1):
                return self.fn(*args)
        if _pinned_pid != os.getpid():
            _thread_pools().limit(limits=1)
            _pinned_pid = os.getpid()
        return self.fn(*args)


@functools.cache
def _thread_pools() -> ThreadpoolController:
    """This process's thread pools, found once (a search reads the loaded libraries: about 10 ms)."""
    return ThreadpoolController()


class DaskRunner:
    """Runs work units on a Dask cluster through a client; the data they share is scattered once.

    Parameters
    ----------
    client : distributed.Client
    cluster : distributed.LocalCluster, optional
        Closed with the runner when the runner started it.
    """

    def __init__(self, client: Any, cluster: Any | None = None):
        self.client = client
        self.cluster = cluster
        self._scattered: dict[int, tuple[Any, Any]] = {}

    def _handle(self, obj: Any) -> Any:
        # keyed by identity and holding the object, so that an id is never reused while the handle lives
        if id(obj) not in self._scattered:
            future = self.client.scatter([obj], broadcast=True, hash=False)[0]
            self._scattered[id(obj)] = (obj, future)
        return self._scattered[id(obj)][1]

    def slots(self) -> int:
        """Worker threads of the cluster now (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def run(self, unit: WorkUnit, tasks: Sequence[Any], shared: Sequence[Any],
            progress: Callable[[int], Any] | None) -> list[tuple[list[int], list[Any]]]:
        """``unit(*shared, chunk)`` for every chunk: (task positions, results) per chunk."""
        from distributed import as_completed

        handles = [self._handle(obj) for obj in shared]
        chunks = interleaved_chunks(len(tasks), self.slots())
        futures = [self.client.submit(unit, *handles, [tasks[j] for j in chunk], pure=False) for chunk in chunks]
        size = {f.key: len(c) for f, c in zip(futures, chunks, strict=True)}
        for done in as_completed(futures):
            if progress is not None:
                progress(size[done.key])
        return [(chunk, out) for chunk, out in zip(chunks, self.client.gather(futures), strict=True)]

    def close(self) -> None:
        self._scattered.clear()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def active_runner() -> DaskRunner | None:
    """The Dask runner of the enclosing :func:`use_compute`, or None (local processes)."""
    return _active.get()


def _security(compute: ComputeConfig) -> Any:
    from distributed.security import Security

    files = {"compute.tls_ca_file": compute.tls_ca_file, "compute.tls_cert_file": compute.tls_cert_file,
             "compute.tls_key_file": compute.tls_key_file}
    missing = [key for key, value in files.items() if not value]
    if missing:
        raise ConfigError(f"compute.address {compute.address!r} is a tls:// address and needs {', '.join(missing)}")
    for key, value in files.items():
        if not Path(value).expanduser().is_file():
            raise ConfigError(f"{key}: {value!r} is not a file")
    ca, cert, key = (str(Path(v).expanduser()) for v in files.values())
    return Security(tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, require_encryption=True)


def _connect(compute: ComputeConfig, n_jobs: int) -> DaskRunner:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise ConfigError(f'compute.backend = "dask" needs Dask, which is not installed: {DASK_EXTRA}') from exc
    if compute.address is None:
        workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, silence_logs=logging.WARNING)
        return DaskRunner(Client(cluster), cluster)
    secure = compute.address.startswith("tls://")
    try:
        client = Client(compute.address, security=_security(compute) if secure else None, timeout="30s")
    except OSError as exc:
        raise ConfigError(f"compute.address: cannot reach the Dask scheduler at {compute.address!r} ({exc})") from exc
    return DaskRunner(client)


@contextlib.contextmanager
def use_compute(compute: ComputeConfig, n_jobs: int = 1) -> Iterator[DaskRunner | None]:
    """Run the work units of everything inside the block on the backend of ``compute``.

    ``backend = "local"`` changes nothing (joblib processes, ``n_jobs`` of them). ``"dask"`` connects
    to the scheduler at ``compute.address`` (a ``tls://`` address with the config's certificate
    files) or starts a local cluster of ``n_jobs`` workers, and closes what it opened on exit.

    Raises
    ------
    ConfigError
        When Dask is not installed (naming the extra to install), a TLS file is missing or the
        scheduler cannot be reached.
    """
    if compute.backend != "dask":
        yield None
        return
    runner = _connect(compute, n_jobs)
    token = _active.set(runner)
    try:
        yield runner
    finally:
        _active.reset(token)
        runner.close()
