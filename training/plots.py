"""Figures of a training run: calibration, Kaplan-Meier curves by a binary covariate, hazard-ratio forest plot.

Every function returns a :class:`matplotlib.figure.Figure` built on the Agg canvas (no display,
nothing shown); save it with ``fig.savefig(path)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullLocator
from sksurv.nonparametric import kaplan_meier_estimator

__all__ = ["new_figure", "format_p", "plot_calibration", "plot_km_by", "plot_forest", "numbers_at_risk"]


def new_figure(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches on its own Agg canvas, with constrained layout.

    Built without pyplot, so nothing is displayed and no global figure list keeps it alive.
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def format_p(p: float | None, *, prefix: bool = False) -> str:
    """A p-value as tables and figures print it: three decimals, ``< 0.001`` below that.

    With ``prefix`` the text reads ``p = 0.008`` or ``p < 0.001``. A missing (None or NaN) value
    prints as ``–`` (``p not computed`` with ``prefix``).
    """
    if p is None or not np.isfinite(p):
        return "p not computed" if prefix else "–"
    text = "< 0.001" if p < 0.001 else f"{p:.3f}"
    if not prefix:
        return text
    return f"p {text}" if p < 0.001 else f"p = {text}"


def plot_calibration(table: pd.DataFrame, *, time_unit: str = "months") -> Figure:
    """Predicted against observed survival with 95 % CIs and the diagonal, one panel per horizon.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`~cnslrisk.training.calibration.calibration_table`; the ``all`` rows are
        shown in the panel title as calibration-in-the-large.
    time_unit : str, default: "months"
        Unit written in the panel titles.

    Returns
    -------
    fig : Figure
        One axes per horizon; each has one point per risk group (``Line2D`` labelled ``groups``).
    """
    horizons = list(dict.fromkeys(table["horizon"]))
    fig = new_figure(4.0 * len(horizons), 4.0)
    axes = fig.subplots(1, len(horizons), squeeze=False)[0]
    for ax, h in zip(axes, horizons, strict=True):
        part = table[table["horizon"] == h]
        groups = part[part["group"] != "all"]
        overall = part[part["group"] == "all"].iloc[0]
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1, label="ideal")
        err = np.vstack([groups["observed"] - groups["observed_lower"], groups["observed_upper"] - groups["observed"]])
        ax.errorbar(
            groups["predicted"], groups["observed"], yerr=np.nan_to_num(err), fmt="o", capsize=3, label="groups"
        )
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="predicted survival",
            ylabel="observed survival (Kaplan-Meier)",
            title=f"{h:g} {time_unit}: predicted {overall['predicted']:.2f}, observed {overall['observed']:.2f}",
        )
        ax.set_aspect("equal")
    return fig


def numbers_at_risk(time: np.ndarray, at: Sequence[float]) -> list[int]:
    """Patients still at risk (observed time >= t) at each time in ``at``."""
    return [int((time >= t).sum()) for t in at]


def plot_km_by(
    y: np.ndarray,
    covariate: Sequence[bool] | np.ndarray,
    name: str,
    *,
    time_unit: str = "months",
    ticks: Sequence[float] | None = None,
) -> Figure:
    """Kaplan-Meier curves for the two levels of a binary covariate, with numbers at risk.

    Parameters
    ----------
    y : structured array, shape = (n_samples,)
        Outcome (bool event, float time).
    covariate : array-like of bool, shape = (n_samples,)
        The binary covariate (e.g. pce, lmd).
    name : str
        Covariate name for the legend.
    time_unit : str, default: "months"
        Unit of the time axis.
    ticks : sequence of float, optional
        Times of the numbers-at-risk table; default six equally spaced times up to the last one.

    Returns
    -------
    fig : Figure
        Axes 0 holds one step curve per level (labelled ``<name> = no/yes``), axes 1 the table.
    """
    event, time = y[y.dtype.names[0]], y[y.dtype.names[1]]
    x = np.asarray(covariate, dtype=bool)
    ticks = np.linspace(0, time.max(), 6).round(1) if ticks is None else np.asarray(ticks, dtype=float)
    fig = new_figure(6.0, 5.0)
    ax, table = fig.subplots(2, 1, height_ratios=[4, 1], sharex=True)
    levels = [(False, "no"), (True, "yes")]
    for row, (level, text) in enumerate(levels):
        m = x == level
        if not m.any():
            continue
        t, s = kaplan_meier_estimator(event[m], time[m])
        line = ax.step(np.r_[0, t], np.r_[1, s], where="post", label=f"{name} = {text} (n = {m.sum()})")[0]
        for tick, count in zip(ticks, numbers_at_risk(time[m], ticks), strict=True):
            table.text(tick, row, str(count), ha="center", va="center", color=line.get_color())
    ax.set(ylim=(0, 1.02), ylabel="survival probability", title=f"Kaplan-Meier by {name}")
    ax.legend(loc="upper right")
    table.set(
        ylim=(-0.5, 1.5),
        yticks=[0, 1],
        yticklabels=[f"{name} = {t}" for _, t in levels],
        xlabel=f"time ({time_unit})",
        xticks=ticks,
    )
    table.set_title("numbers at risk", fontsize="small", loc="left")
    return fig


def plot_forest(coefficients: pd.DataFrame, *, title: str = "hazard ratios (95 % CI)") -> Figure:
    """Forest plot of hazard ratios with 95 % confidence intervals on a log axis.

    Parameters
    ----------
    coefficients : DataFrame
        Indexed by term, with columns ``hr``, ``ci_lower``, ``ci_upper`` and ``p``.
    title : str, optional
        Figure title.

    Returns
    -------
    fig : Figure
        One point per term (top to bottom in table order), a vertical line at HR = 1 and the p-value
        written at the right.
    """
    missing = {"hr", "ci_lower", "ci_upper", "p"} - set(coefficients.columns)
    if missing:
        raise ValueError(f"coefficients: missing column(s) {sorted(missing)}; need hr, ci_lower, ci_upper, p")
    k = len(coefficients)
    pos = np.arange(k)[::-1]
    fig = new_figure(6.0, 1.0 + 0.45 * k)
    ax = fig.subplots()
    hr = coefficients["hr"].to_numpy(float)
    err = np.vstack([hr - coefficients["ci_lower"].to_numpy(float), coefficients["ci_upper"].to_numpy(float) - hr])
    ax.errorbar(hr, pos, xerr=err, fmt="s", color="black", capsize=3)
    ax.axvline(1.0, color="grey", ls="--", lw=1)
    ax.set_xscale("log")
    low, high = ax.get_xlim()
    ticks = [t for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64) if low <= t <= high]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set(
        yticks=pos,
        yticklabels=[str(t) for t in coefficients.index],
        xlabel="hazard ratio",
        title=title,
        ylim=(-0.7, k - 0.3),
    )
    for y_pos, p in zip(pos, coefficients["p"], strict=True):
        ax.annotate(format_p(p, prefix=True), (1.02, y_pos), xycoords=("axes fraction", "data"), va="center",
                    fontsize="small")
    return fig
