"""A bootstrap ensemble kept with a model: a 95 % band for S(t|x) where no valid variance formula exists.

Penalised Cox estimates have no valid Wald variance and random survival forests none at all, so
their band comes from B refits of the same fitting procedure (tuning included) on bootstrap
resamples of the training cohort: at each time the band is the 2.5th and 97.5th percentile of the
members' predicted survival (the bootstrap percentile interval [1]_). The members are stored with the
model the same way the model itself is (plain parameters or checked forest files, never pickles).

References
----------
.. [1] Efron B, Tibshirani RJ. An Introduction to the Bootstrap. Chapman & Hall 1993, ch. 13.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["band_interval"]


def band_interval(members: list[Any], X: pd.DataFrame | Mapping[str, Any], times: np.ndarray, level: float = 0.95
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Percentile band of the members' survival at ``times``: ``(lower, upper)``, each (n_samples, n_times).

    ``X`` holds checked covariates (a DataFrame or a mapping of column to array); each member
    encodes them with its own encoder, fitted on its own resample.
    """
    stack = np.stack([member[-1].predict_survival(member.named_steps["encode"].encode(X), times, check_input=False)
                      for member in members])
    alpha = (1 - level) / 2
    lower, upper = np.quantile(stack, [alpha, 1 - alpha], axis=0)
    return lower, upper
