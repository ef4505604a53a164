"""Plain, JSON-safe values for everything the project writes out (cards, reports, API responses)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["json_safe", "horizon_label"]


def horizon_label(h: float) -> str:
    """Write a horizon as the config does (6.0 → ``"6"``, 0.5 → ``"0.5"``), for names like ``survival_6``."""
    return f"{float(h):g}"


def json_safe(value: Any) -> Any:
    """Numpy scalars to Python, NaN and infinities to None (strict JSON), recursively through dicts and lists."""
    kind = type(value)
    if kind is float:  # the common case first: an API response is mostly Python floats
        return value if math.isfinite(value) else None
    if kind is str or kind is bool or kind is int or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value
