"""Kept for models registered by cnslrisk 0.1.0: their stored entry script imports this path.

The pyfunc now lives in :mod:`cnslrisk.registry.pyfunc`.
"""

from cnslrisk.registry.pyfunc import CnslriskPyfunc

__all__ = ["CnslriskPyfunc"]
