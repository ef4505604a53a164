"""What a scorer derives from a fitted object alone, kept while the object lives (bounded per object).

One API request costs less than deriving these constants again (the pattern split's arrays per grid and
horizons, a model's plain-language wording per set of horizons), so they are derived once per object and
key. An object refitted in place shows it by a new ``token`` (the array or dict it was derived from), which
drops what was kept. Objects are held weakly, by identity (a :class:`RiskModel` is not hashable).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

__all__ = ["derived_once"]

T = TypeVar("T")
_PER_OBJECT = 32  # keys such as horizons are chosen by callers: bounded
_HELD: dict[int, tuple[weakref.ref, Any, dict[Hashable, Any]]] = {}


def derived_once(owner: Any, token: Any, key: Hashable, derive: Callable[[], T]) -> T:
    """``derive()``, computed once per ``owner``, ``token`` and ``key`` while ``owner`` lives.

    Parameters
    ----------
    owner : object
        The fitted object the value is derived from (held weakly).
    token : object
        What the value is derived from, compared by identity: another one drops what was kept.
    key : hashable
        The caller's arguments besides ``owner`` (with a name for what is derived, so that two uses on
        one object do not meet).
    derive : callable
        Computes the value.
    """
    ident = id(owner)
    held = _HELD.get(ident)
    if held is None or held[0]() is not owner or held[1] is not token:
        held = _HELD[ident] = (weakref.ref(owner, lambda _, ident=ident: _HELD.pop(ident, None)), token, {})
    values = held[2]
    if key not in values:
        if len(values) >= _PER_OBJECT:
            del values[next(iter(values))]
        values[key] = derive()
    return values[key]
