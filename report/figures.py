"""Figures of the cohort report, rendered on the Agg canvas and embedded as base64 PNG.

Kaplan-Meier curves (overall with the 95 % band, by pCE and LMD with the log-rank p-value, CNS-PFS2
by salvage class) share one time axis rule, :func:`time_axis`: round ticks in months, a tick at
each prediction horizon, and the axis cut where few patients remain at risk. The forest plots come
from :mod:`cnslrisk.training.plots`. Every p-value is printed by
:func:`~cnslrisk.training.plots.format_p`, as in the report's tables.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sksurv.nonparametric import kaplan_meier_estimator

from cnslrisk.model.contract import data_dictionary
from cnslrisk.training.config import load_config
from cnslrisk.training.plots import format_p, new_figure, numbers_at_risk, plot_forest

__all__ = ["AT_RISK_FRACTION", "HORIZONS", "TICK_STEPS", "time_axis", "to_base64_png", "plot_km_groups",
           "draw_figures", "report_figures"]

AT_RISK_FRACTION = 0.2
"""The time axis ends where fewer than this share of the plotted patients remain at risk (see :func:`time_axis`)."""

HORIZONS = load_config().validation.horizons
"""Prediction horizons (months) that get a tick and a numbers-at-risk column: the bundled config's."""

TICK_STEPS = (1, 2, 3, 6, 12, 24, 60, 120)
"""Tick spacings in months (the data dictionary's unit of CNS-PFS1 and CNS-PFS2); the smallest giving <= 8 intervals."""

_MAX_INTERVALS = 8
_SPLIT_TITLES = {"pce": "pCE", "lmd": "LMD"}


def time_axis(
    time: np.ndarray, horizons: Sequence[float] = HORIZONS, *, at_risk_fraction: float = AT_RISK_FRACTION
) -> tuple[float, list[float]]:
    """Where a Kaplan-Meier time axis ends and where its ticks go.

    Late in follow-up a curve rests on few patients and its steps are noise; drawn to the last
    follow-up, it also squeezes the early months that matter most into a sliver. The axis therefore
    ends at the last time at which at least ``ceil(at_risk_fraction * n)`` patients are still at risk,
    or at the last horizon if that is later, but never past the last follow-up; rounded up to a
    whole tick. Ticks are multiples of the smallest step in :data:`TICK_STEPS` giving at most eight
    intervals, plus every horizon within the axis.

    Parameters
    ----------
    time : ndarray of float, shape (n_samples,)
        Observed times (months) of every patient in the figure.
    horizons : sequence of float, default: :data:`HORIZONS`
        Times (months) that always get a tick when the axis reaches them.
    at_risk_fraction : float, default: :data:`AT_RISK_FRACTION`
        Share of the patients that must remain at risk within the axis.

    Returns
    -------
    limit : float
        Right end of the axis (the left end is 0).
    ticks : list of float
        Increasing tick positions, from 0 to ``limit``.

    References
    ----------
    .. [1] Pocock, S. J., Clayton, T. C. and Altman, D. G. (2002). Survival plots of time-to-event
       outcomes in clinical trials: good practice and pitfalls. Lancet, 359(9318), 1686-1689.
    """
    ordered = np.sort(np.asarray(time, dtype=float))
    enough = max(1, math.ceil(at_risk_fraction * ordered.size))
    end = min(max(float(ordered[-enough]), max(horizons, default=0.0)), float(ordered[-1]))
    step = next((s for s in TICK_STEPS if end <= _MAX_INTERVALS * s), TICK_STEPS[-1])
    limit = step * math.ceil(end / step)
    regular = [float(step * i) for i in range(limit // step + 1)]
    return float(limit), sorted(set(regular) | {float(h) for h in horizons if h <= limit})


def to_base64_png(fig: Figure, *, dpi: int = 110) -> str:
    """Encode a figure as base64 PNG text (no software metadata: identical figures give identical text)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def plot_km_groups(
    event: np.ndarray,
    time: np.ndarray,
    labels: Sequence[str] | np.ndarray,
    order: Sequence[str],
    *,
    title: str,
    names: Mapping[str, str] | None = None,
    band: bool = False,
    p_value: float | None = None,
    horizons: Sequence[float] = HORIZONS,
) -> Figure:
    """Kaplan-Meier curves of each group in ``order`` that is present, with censoring marks and numbers at risk.

    Parameters
    ----------
    event, time : ndarray, shape (n_samples,)
        Outcome (time in months).
    labels : array-like of str, shape (n_samples,)
        Group of each patient.
    order : sequence of str
        Groups to draw, top to bottom in the at-risk table.
    title : str
        Axes title.
    names : mapping of str to str, optional
        Display name of a group (default: the label itself).
    band : bool, default: False
        Shade the pointwise 95 % log(-log) band (for a single curve).
    p_value : float, optional
        Log-rank p-value, written as the legend's title (``log-rank p = 0.008``).
    horizons : sequence of float, default: :data:`HORIZONS`
        Passed to :func:`time_axis`.

    Returns
    -------
    fig : Figure
        Axes 0 holds one step curve per group (labelled ``<name> (n = <n>)``), axes 1 the numbers
        at risk at each tick of :func:`time_axis`; both span 0 to its limit (plus 3 % each side).
    """
    labels = np.asarray(labels).astype(str)
    names = dict(names or {})
    present = [g for g in order if (labels == g).any()]
    limit, ticks = time_axis(time, horizons)
    fig = new_figure(7.5, 4.2 + 0.25 * len(present))
    ax, table = fig.subplots(2, 1, height_ratios=[4, 0.6 + 0.3 * len(present)], sharex=True)
    for row, group in enumerate(present):
        m = labels == group
        t, s, ci = kaplan_meier_estimator(event[m], time[m], conf_type="log-log")
        name = names.get(group, group)
        line = ax.step(np.r_[0, t], np.r_[1, s], where="post", label=f"{name} (n = {m.sum()})")[0]
        censored = time[m][~event[m]]
        at = np.searchsorted(t, censored, side="right") - 1  # the curve's value at each censoring time
        ax.plot(censored, s[at], "|", color=line.get_color(), markersize=6)
        if band:
            ax.fill_between(np.r_[0, t], np.r_[1, ci[0]], np.r_[1, ci[1]], step="post", alpha=0.2,
                            color=line.get_color(), label="95 % CI")
        for tick, count in zip(ticks, numbers_at_risk(time[m], ticks), strict=True):
            table.text(tick, len(present) - 1 - row, str(count), ha="center", va="center", color=line.get_color(),
                       fontsize="small")  # three-digit counts fit between the 0-, 3- and 6-month ticks
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    pad = 0.03 * limit  # room for the at-risk counts at 0 and at the limit, which are centred on their tick
    ax.set(xlim=(-pad, limit + pad), ylim=(0, 1.02), ylabel="probability", title=title)
    legend_title = None if p_value is None else f"log-rank {format_p(p_value, prefix=True)}"
    ax.legend(loc="upper right", fontsize="small", title=legend_title, title_fontsize="small")
    unit = data_dictionary()["pfs1_months"].unit
    table.set(ylim=(-0.5, len(present) - 0.5), yticks=range(len(present)),
              yticklabels=[names.get(g, g) for g in present[::-1]], xlabel=f"time ({unit})", xticks=ticks)
    table.set_xticklabels([f"{t:g}" for t in ticks])
    table.set_title("numbers at risk", fontsize="small", loc="left")
    return fig


def _forest(model: Mapping[str, Any], title: str) -> Figure | None:
    terms = {k: v for k, v in model["terms"].items() if v["ci_lower"] is not None and v["ci_upper"] is not None}
    if not terms:
        return None
    return plot_forest(pd.DataFrame.from_dict(terms, orient="index")[["hr", "ci_lower", "ci_upper", "p"]], title=title)


def _pfs1_figures(df: pd.DataFrame, pfs1: Mapping[str, Any]) -> dict[str, Figure]:
    event, time = df["pfs1_event"].to_numpy(bool), df["pfs1_months"].to_numpy(float)
    figures = {"pfs1_overall": plot_km_groups(event, time, np.full(len(df), "all patients"), ["all patients"],
                                              title="CNS-PFS1 (Kaplan-Meier, 95 % CI)", band=True)}
    for split, short in _SPLIT_TITLES.items():
        known = df[split].notna().to_numpy()
        labels = df.loc[known, split].astype(bool).map({False: "false", True: "true"}).to_numpy()
        figures[f"pfs1_by_{split}"] = plot_km_groups(
            event[known], time[known], labels, ["false", "true"], title=f"CNS-PFS1 by {short}",
            names={"false": f"{short} no", "true": f"{short} yes"}, p_value=pfs1[f"by_{split}"]["logrank"]["p"])
    return figures


def draw_figures(df: pd.DataFrame, numbers: Mapping[str, Any]) -> dict[str, Figure]:
    """Every figure of the report, keyed by name.

    Parameters
    ----------
    df : pandas.DataFrame
        The checked cohort (curves are drawn from it).
    numbers : mapping
        Output of :func:`~cnslrisk.report.analysis.analyse` (log-rank p-values, Cox tables and
        which sections exist).

    Returns
    -------
    dict of str to Figure
        ``pfs1_overall``, ``pfs1_by_pce``, ``pfs1_by_lmd``, ``forest_univariable`` and
        ``forest_multivariable`` (each when it has a term with an interval), and, when the cohort
        has the fields, ``pfs2_overall`` and ``pfs2_by_salvage``.
    """
    figures: dict[str, Figure | None] = dict(_pfs1_figures(df, numbers["pfs1"]))
    cox = numbers["cox"]
    univariable = {"terms": {t: v for m in cox["univariable"].values() for t, v in m["terms"].items()}}
    figures["forest_univariable"] = _forest(univariable, "univariable Cox: hazard ratios (95 % CI)")
    figures["forest_multivariable"] = _forest(cox["multivariable"], "multivariable Cox: hazard ratios (95 % CI)")
    pfs2 = numbers["pfs2"]
    if pfs2["available"] and pfs2["overall"]["n"]:
        data = df[df["pfs2_months"].notna() & df["pfs2_event"].notna()]
        e2, t2 = data["pfs2_event"].to_numpy(bool), data["pfs2_months"].to_numpy(float)
        figures["pfs2_overall"] = plot_km_groups(e2, t2, np.full(len(data), "progressed patients"),
                                                 ["progressed patients"], title="CNS-PFS2 (Kaplan-Meier, 95 % CI)",
                                                 band=True)
        if pfs2["by_salvage"] is not None:
            labels = data["salvage"].fillna("missing").astype(str).to_numpy()
            order = list(pfs2["by_salvage"]["groups"])
            figures["pfs2_by_salvage"] = plot_km_groups(
                e2, t2, labels, order, title="CNS-PFS2 by salvage therapy class",
                names={g: g.replace("_", " ") for g in order}, p_value=pfs2["by_salvage"]["logrank"]["p"])
    return {name: fig for name, fig in figures.items() if fig is not None}


def report_figures(df: pd.DataFrame, numbers: Mapping[str, Any]) -> dict[str, str]:
    """Every figure of :func:`draw_figures` as base64 PNG text, keyed by name."""
    return {name: to_base64_png(fig) for name, fig in draw_figures(df, numbers).items()}
