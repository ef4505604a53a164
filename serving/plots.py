"""A patient's predicted CNS-PFS1 curve with its band, beside the training cohort's Kaplan–Meier curve."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_patient_curve"]


def plot_patient_curve(
    times: np.ndarray,
    survival: np.ndarray,
    lower: np.ndarray | None,
    upper: np.ndarray | None,
    *,
    training_km: dict[str, Sequence[float]],
    horizons: Sequence[float],
    time_unit: str = "months",
    title: str = "Predicted CNS-PFS1",
    notice: str = "",
) -> Figure:
    """Step curve of S(t|x) with its 95 % band, the training Kaplan–Meier curve and horizon markers.

    Returns
    -------
    matplotlib.figure.Figure
        Lines: the patient's curve (label ``patient``) and the training cohort (``training cohort (KM)``).
    """
    figure = Figure(figsize=(7, 4.5), dpi=110)
    figure.subplots_adjust(bottom=0.2 if notice else 0.12)
    axes = figure.add_subplot()
    # the curve is flat after the last event time: draw it on to the view's right edge
    right = 1.25 * max(float(times[-1]), max(horizons))

    def steps(values: np.ndarray) -> np.ndarray:
        return np.concatenate([[1.0], values, values[-1:]])

    t = np.concatenate([[0.0], times, [right]])
    axes.step(t, steps(survival), where="post", color="C0", lw=2, label="patient")
    if lower is not None and upper is not None:
        axes.fill_between(t, steps(lower), steps(upper), step="post", color="C0", alpha=0.2, label="95 % band")
    axes.step(np.concatenate([[0.0], training_km["time"]]), np.concatenate([[1.0], training_km["survival"]]),
              where="post", color="0.45", ls="--", label="training cohort (KM)")
    for h in horizons:
        axes.axvline(h, color="0.8", lw=0.8, zorder=0)
    axes.set(xlabel=f"time since infusion ({time_unit})", ylabel="CNS progression-free survival",
             ylim=(0, 1.02), xlim=(0, right), title=title)
    axes.legend(loc="upper right", frameon=False)
    if notice:
        figure.text(0.01, 0.02, notice, fontsize=9, color="firebrick", weight="bold")
    return figure
