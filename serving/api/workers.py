"""Several uvicorn worker processes, each accepting on its own ``SO_REUSEPORT`` socket.

uvicorn's own ``--workers`` shares one listening socket between the processes, and whichever worker
wakes first accepts every connection waiting: a client that opens its keep-alive connections in one
burst (a hospital system, a load balancer) can find them all on one worker while the other idles,
which doubles the latency it sees. Here each worker listens on a socket of its own bound to the same
port with ``SO_REUSEPORT``, and the kernel spreads new connections over the sockets by their
address hash. The sockets are bound by the parent, so a port already in use fails at once with a
clear error, before any model is loaded.

The parent only supervises: SIGINT or SIGTERM stops every worker (uvicorn finishes the requests in
flight); a worker that exits on its own stops the others and the parent exits non-zero, so a process
manager (systemd, Kubernetes) restarts the service whole instead of it running on with fewer workers.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
from multiprocessing.connection import wait
from types import FrameType

__all__ = ["FACTORY", "balanced_sockets_supported", "run_workers"]

FACTORY = "cnslrisk.serving.api.main:app_from_env"
_BACKLOG = 2048  # uvicorn's default


def balanced_sockets_supported() -> bool:
    """Whether this platform has ``SO_REUSEPORT`` (Linux, the BSDs, macOS; not Windows)."""
    return hasattr(socket, "SO_REUSEPORT")


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ValueError(f"option --port: cannot listen on {host}:{port} ({exc.strerror})") from None
    sock.listen(_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _serve_one(sock: socket.socket, log_level: str) -> None:  # runs in a worker process
    import uvicorn

    config = uvicorn.Config(FACTORY, factory=True, log_level=log_level)
    uvicorn.Server(config).run(sockets=[sock])


def run_workers(host: str, port: int, workers: int, log_level: str) -> int:
    """Serve :data:`FACTORY` (configured through the environment) from ``workers`` processes until stopped.

    Parameters
    ----------
    host, port : str, int
        Where every worker listens.
    workers : int
        Number of worker processes.
    log_level : str
        uvicorn's log level in each worker.

    Returns
    -------
    int
        0 after SIGINT/SIGTERM, 1 when a worker exited on its own.

    Raises
    ------
    ValueError
        When ``host:port`` cannot be bound.
    """
    sockets = []
    try:
        for _ in range(workers):
            sockets.append(_listening_socket(host, port))
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no state forked from the parent
        processes = [context.Process(target=_serve_one, args=(sock, log_level), name=f"cnslrisk-worker-{i}")
                     for i, sock in enumerate(sockets)]
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True
            for process in processes:
                if process.is_alive():
                    process.terminate()  # SIGTERM: uvicorn's graceful shutdown

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for process in processes:
                process.start()
            wait([process.sentinel for process in processes])  # the first to end, whatever the reason
            if not stopping:
                stop(signal.SIGTERM, None)
            for process in processes:
                process.join()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0 if stopping else 1
    finally:
        for sock in sockets:
            sock.close()
