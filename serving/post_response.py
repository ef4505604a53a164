"""The post-response prediction as curves from the landmark on (drawn by the web page with ``curve=true``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from cnslrisk.model.landmark import PREFIX
from cnslrisk.model.outputs import horizon_label
from cnslrisk.model.predictor import RiskModel

__all__ = ["post_response_curves"]


def post_response_curves(model: RiskModel, checked: Mapping[str, Any], n_rows: int) -> list[dict[str, Any] | None]:
    """Each row's post-response CNS-PFS1 curve, band and pattern incidences from the landmark on.

    The landmark model's own columns (:meth:`~cnslrisk.model.landmark.LandmarkModel.predict_arrays`)
    evaluated at the landmark plus each residual event time of its cohort: the same numbers as the
    ``post_response_*`` columns, on a grid fine enough to draw. At the landmark itself survival is 1
    and every incidence 0 (the curve holds for a patient progression-free then).

    Parameters
    ----------
    model : RiskModel
        With a landmark model.
    checked : mapping of str to array
        Checked covariates, the response among them when given.
    n_rows : int

    Returns
    -------
    list of dict or None
        Per row ``time`` (from infusion), ``survival``, ``lower``, ``upper`` and ``incidence`` (cause →
        values); None for a row without a usable best response.
    """
    landmark = model.landmark
    residual = np.unique(np.asarray(landmark.time_grid, dtype=float))
    times = [float(t) for t in dict.fromkeys(float(horizon_label(landmark.time + r)) for r in residual)]
    labels = [horizon_label(t) for t in times]
    arrays = landmark.predict_arrays(checked, tuple(times), band=True)

    def stack(column: str, at_landmark: float) -> np.ndarray:
        columns = (arrays[PREFIX + column.format(label)] for label in labels)
        return np.column_stack([np.full(n_rows, at_landmark), *columns])

    survival, lower, upper = (stack(c, 1.0) for c in ("survival_{}", "survival_{}_lower", "survival_{}_upper"))
    incidence = {cause: stack(f"cif_{cause}_{{}}", 0.0) for cause in landmark.causes}
    curves: list[dict[str, Any] | None] = []
    for i in range(n_rows):
        if np.isnan(survival[i, 1:]).all():
            curves.append(None)
            continue
        curves.append({"time": [landmark.time, *times], "survival": survival[i].tolist(),
                       "lower": lower[i].tolist(), "upper": upper[i].tolist(),
                       "incidence": {cause: values[i].tolist() for cause, values in incidence.items()}})
    return curves
