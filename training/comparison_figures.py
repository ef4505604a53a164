"""Figures of the out-of-fold comparison: every candidate's paired difference from the null model and the chosen one."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from .plots import new_figure

__all__ = ["plot_paired_differences"]

_PANELS = (("c_index", "Harrell's C (higher is better)"), ("ibs", "integrated Brier score (lower is better)"),
           ("calibration_slope", "calibration slope (1 is ideal)"))


def plot_paired_differences(paired: Mapping[str, Mapping[str, Mapping[str, float]]]) -> Figure:
    """Paired out-of-fold differences with their corrected 95 % intervals, one panel per metric.

    Parameters
    ----------
    paired : mapping
        ``"<kind>_vs_<kind>"`` -> metric -> ``{mean, ci_lower, ci_upper}`` (the card's ``selection.paired``).

    Returns
    -------
    fig : Figure
        One row per comparison (top to bottom in the mapping's order); a vertical line at 0.
    """
    names = list(paired)
    fig = new_figure(4.0 * len(_PANELS), 1.2 + 0.4 * len(names))
    axes = fig.subplots(1, len(_PANELS), sharey=True)
    rows = np.arange(len(names))[::-1]
    for ax, (metric, title) in zip(axes, _PANELS, strict=True):
        figures = [paired[name].get(metric, {}) for name in names]
        mean = np.array([f.get("mean", np.nan) for f in figures], dtype=float)
        low = np.array([f.get("ci_lower", np.nan) for f in figures], dtype=float)
        high = np.array([f.get("ci_upper", np.nan) for f in figures], dtype=float)
        ax.errorbar(mean, rows, xerr=np.nan_to_num(np.vstack([mean - low, high - mean])), fmt="o", capsize=3)
        ax.axvline(0.0, color="grey", ls="--", lw=1)
        ax.set(title=f"difference in {title}", xlabel="difference (95 % corrected CI)")
    axes[0].set(yticks=rows, yticklabels=[name.replace("_vs_", " vs ") for name in names])
    return fig
