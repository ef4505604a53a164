"""Figures of the cohort report, rendered on the Agg canvas and embedded as base64 PNG.

Kaplan-Meier curves by pCE and by LMD and the forest plots reuse :mod:`cnslrisk.training.plots`;
this module adds the curves of one or several groups (overall CNS-PFS1 with its 95 % band,
CNS-PFS2 by salvage class) with a numbers-at-risk table.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from cnslrisk.training.plots import new_figure, numbers_at_risk, plot_forest, plot_km_by

__all__ = ["to_base64_png", "plot_km_groups", "report_figures"]


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
    time_unit: str = "months",
    band: bool = False,
) -> Figure:
    """Kaplan-Meier curves of each group in ``order`` that is present, with numbers at risk.

    Parameters
    ----------
    event, time : ndarray, shape (n_samples,)
        Outcome.
    labels : array-like of str, shape (n_samples,)
        Group of each patient.
    order : sequence of str
        Groups to draw, top to bottom in the at-risk table.
    title : str
        Axes title.
    time_unit : str, default: "months"
        Unit of the time axis.
    band : bool, default: False
        Shade the pointwise 95 % log(-log) band (for a single curve).

    Returns
    -------
    fig : Figure
        Axes 0 holds one step curve per group, axes 1 the numbers at risk at six equally spaced times.
    """
    labels = np.asarray(labels).astype(str)
    present = [g for g in order if (labels == g).any()]
    ticks = np.linspace(0, float(time.max()), 6).round(1)
    fig = new_figure(7.0, 4.2 + 0.25 * len(present))
    ax, table = fig.subplots(2, 1, height_ratios=[4, 0.6 + 0.3 * len(present)], sharex=True)
    for row, group in enumerate(present):
        m = labels == group
        t, s, ci = kaplan_meier_estimator(event[m], time[m], conf_type="log-log")
        line = ax.step(np.r_[0, t], np.r_[1, s], where="post", label=f"{group} (n = {m.sum()})")[0]
        if band:
            ax.fill_between(np.r_[0, t], np.r_[1, ci[0]], np.r_[1, ci[1]], step="post", alpha=0.2,
                            color=line.get_color(), label="95 % CI")
        for tick, count in zip(ticks, numbers_at_risk(time[m], ticks), strict=True):
            table.text(tick, len(present) - 1 - row, str(count), ha="center", va="center", color=line.get_color())
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(ylim=(0, 1.02), ylabel="probability", title=title)
    ax.legend(loc="upper right", fontsize="small")
    table.set(ylim=(-0.5, len(present) - 0.5), yticks=range(len(present)), yticklabels=present[::-1],
              xlabel=f"time ({time_unit})", xticks=ticks)
    table.set_title("numbers at risk", fontsize="small", loc="left")
    return fig


def _forest(model: Mapping[str, Any], title: str) -> Figure | None:
    terms = {k: v for k, v in model["terms"].items() if v["ci_lower"] is not None and v["ci_upper"] is not None}
    if not terms:
        return None
    return plot_forest(pd.DataFrame.from_dict(terms, orient="index")[["hr", "ci_lower", "ci_upper", "p"]], title=title)


def report_figures(df: pd.DataFrame, numbers: Mapping[str, Any]) -> dict[str, str]:
    """Every figure of the report as base64 PNG, keyed by name.

    Parameters
    ----------
    df : pandas.DataFrame
        The checked cohort (curves are drawn from it).
    numbers : mapping
        Output of :func:`~cnslrisk.report.analysis.analyse` (for the Cox tables and which
        sections exist).

    Returns
    -------
    dict of str to str
        ``pfs1_overall``, ``pfs1_by_pce``, ``pfs1_by_lmd``, ``forest_univariable``,
        ``forest_multivariable`` and, when the cohort has the fields, ``pfs2_overall`` and
        ``pfs2_by_salvage``.
    """
    event, time = df["pfs1_event"].to_numpy(bool), df["pfs1_months"].to_numpy(float)
    y = Surv.from_arrays(event=event, time=time)
    figures = {"pfs1_overall": plot_km_groups(event, time, np.full(len(df), "all patients"), ["all patients"],
                                              title="CNS-PFS1 (Kaplan-Meier, 95 % CI)", band=True)}
    for split in ("pce", "lmd"):
        known = df[split].notna().to_numpy()
        figures[f"pfs1_by_{split}"] = plot_km_by(y[known], df.loc[known, split].astype(bool).to_numpy(), split)
    cox = numbers["cox"]
    univariable = {"terms": {t: v for m in cox["univariable"].values() for t, v in m["terms"].items()}}
    figures["forest_univariable"] = _forest(univariable, "univariable Cox: hazard ratios (95 % CI)")
    figures["forest_multivariable"] = _forest(cox["multivariable"], "multivariable Cox: hazard ratios (95 % CI)")
    if numbers["pfs2"]["available"] and numbers["pfs2"]["overall"]["n"]:
        data = df[df["pfs2_months"].notna() & df["pfs2_event"].notna()]
        e2, t2 = data["pfs2_event"].to_numpy(bool), data["pfs2_months"].to_numpy(float)
        figures["pfs2_overall"] = plot_km_groups(e2, t2, np.full(len(data), "progressed patients"),
                                                 ["progressed patients"], title="CNS-PFS2 (Kaplan-Meier, 95 % CI)",
                                                 band=True)
        if numbers["pfs2"]["by_salvage"] is not None:
            labels = data["salvage"].fillna("missing").astype(str).to_numpy()
            figures["pfs2_by_salvage"] = plot_km_groups(e2, t2, labels, list(numbers["pfs2"]["by_salvage"]["groups"]),
                                                        title="CNS-PFS2 by salvage therapy class")
    return {name: to_base64_png(fig) for name, fig in figures.items() if fig is not None}
