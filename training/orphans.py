"""Worker processes that never outlive the training process.

joblib's loky workers keep computing when the process that started them dies without shutting them
down (killed by the kernel for lack of memory, ``kill -9``): they are re-parented and nothing tells
them. :class:`ExitWithParent` wraps the function a worker runs; on its first call in a worker it
starts a daemon thread that ends the worker (``os._exit``) as soon as its parent is no longer the
training process that created the wrapper, checked every 0.2 s. ``os.getppid`` changes when the
parent dies, whatever the signal, and cannot be fooled by a reused process id.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ExitWithParent"]

_POLL_SECONDS = 0.2
_watched_parent: int | None = None


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_POLL_SECONDS)
    os._exit(1)


class ExitWithParent:
    """``fn`` wrapped so that a worker process running it exits when the creating process dies.

    Parameters
    ----------
    fn : callable
        What the worker runs; called with the wrapper's arguments.
    """

    def __init__(self, fn: Callable[..., Any]):
        self.fn = fn
        self.parent = os.getpid()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        global _watched_parent
        # in the training process itself (n_jobs=1, or threads) there is nothing to watch
        if _watched_parent != self.parent and os.getpid() != self.parent and os.getppid() == self.parent:
            _watched_parent = self.parent
            threading.Thread(target=_watch, args=(self.parent,), daemon=True, name="cnslrisk-exit-with-parent").start()
        return self.fn(*args, **kwargs)
