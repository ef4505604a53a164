"""Figures of the cohort report: the Kaplan-Meier time axis (limit, ticks, numbers at risk) and p-value text.

Expected ticks and limits are derived by hand from the rule documented in ``time_axis`` (the
comments give the arithmetic); the figure tests read the drawn axes and texts back from matplotlib.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import check_cohort, read_cohort
from cnslrisk.report import analyse, render_html
from cnslrisk.report.figures import AT_RISK_FRACTION, HORIZONS, draw_figures, plot_km_groups, time_axis
from cnslrisk.training.plots import format_p, numbers_at_risk

EXAMPLE = Path(__file__).parents[2] / "data" / "example_cohort.csv"
KM_FIGURES = ("pfs1_overall", "pfs1_by_pce", "pfs1_by_lmd", "pfs2_overall", "pfs2_by_salvage")


@pytest.fixture(scope="module")
def example():
    """The bundled example: checked cohort, its numbers, its figures (as matplotlib objects) and its page."""
    raw = read_cohort(EXAMPLE)
    df = check_cohort(raw)
    numbers = analyse(df, provenance=raw.attrs["provenance"], sha256=raw.attrs["sha256"], path=EXAMPLE)
    figures = draw_figures(df, numbers)
    return df, numbers, figures, render_html(numbers, {})


def _texts(fig):
    """Every text drawn in a figure: axes texts and annotations, legend titles and entries."""
    out = []
    for ax in fig.axes:
        out += [t.get_text() for t in ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            out += [legend.get_title().get_text(), *(t.get_text() for t in legend.get_texts())]
    return out


def test_defaults_are_the_training_horizons_and_a_fifth_at_risk():
    assert tuple(HORIZONS) == (3.0, 6.0, 12.0) and AT_RISK_FRACTION == 0.2


def test_axis_ends_at_the_last_time_a_fifth_remains_at_risk_rounded_up():
    # 100 patients followed 1, 2, ..., 100 months: at least 20 are at risk up to month 81 (the 20th
    # largest time). 81 months need 12-month ticks (6-month ticks would give 14 intervals, more than 8),
    # so the axis ends at 84, with the horizons 3 and 6 added to the multiples of 12.
    limit, ticks = time_axis(np.arange(1.0, 101.0))
    assert limit == 84.0
    assert ticks == [0.0, 3.0, 6.0, 12.0, 24.0, 36.0, 48.0, 60.0, 72.0, 84.0]


def test_axis_reaches_the_last_horizon_when_patients_leave_early():
    # 45 patients leave by 2 months, 5 are followed for 60-80: the at-risk rule alone would stop at 2
    # months (the 10th largest time), but follow-up reaches the last horizon, so the axis runs to 12
    # months with 2-month ticks (12 / 2 = 6 intervals) and the 3-month horizon added.
    time = np.r_[np.linspace(0.5, 2.0, 45), np.linspace(60.0, 80.0, 5)]
    limit, ticks = time_axis(time)
    assert limit == 12.0
    assert ticks == [0.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 12.0]


def test_axis_never_passes_the_last_follow_up_by_more_than_a_tick():
    # Everyone followed at most 4.6 months: the axis stops at 5 (1-month ticks); the 6- and 12-month
    # horizons are beyond it and get no tick.
    limit, ticks = time_axis(np.linspace(0.2, 4.6, 30))
    assert limit == 5.0
    assert ticks == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_axis_rule_on_synthetic_cohorts(seed):
    time = generate_cohort(150, seed=seed)["pfs1_months"].to_numpy(float)
    limit, ticks = time_axis(time)
    enough = math.ceil(AT_RISK_FRACTION * time.size)
    step = ticks[-1] - ticks[-2]
    assert ticks[0] == 0.0 and ticks[-1] == limit and all(np.diff(ticks) > 0)
    assert set(HORIZONS) <= set(ticks) or limit < max(HORIZONS)
    assert all(t % step == 0 for t in ticks if t not in HORIZONS) and limit / step <= 8
    # the last whole step before the limit still has at least a fifth at risk (or is before the last horizon)
    assert numbers_at_risk(time, [limit - step])[0] >= enough or limit - step < max(HORIZONS)
    # past the limit, fewer than a fifth remain (or the limit is the last horizon)
    assert numbers_at_risk(time, [limit + 1e-9])[0] < enough or limit == max(HORIZONS)


def test_km_figures_use_the_axis_rule_and_show_numbers_at_risk_at_the_horizons(example):
    df, numbers, figures, _ = example
    time = df["pfs1_months"].to_numpy(float)
    limit, ticks = time_axis(time)
    assert limit < time.max() / 2  # the issue: the axis ran to the last follow-up (86.9 months)
    curves, table = figures["pfs1_by_pce"].axes
    left, right = curves.get_xlim()
    assert left < 0 < limit < right <= limit * 1.05
    assert [float(t) for t in table.get_xticks()] == ticks
    assert [t.get_text() for t in table.get_xticklabels()] == [f"{t:g}" for t in ticks]
    assert {"3", "6", "12"} <= {t.get_text() for t in table.get_xticklabels()}
    pce = df["pce"].to_numpy(bool)
    no_row = [t for t in table.texts if t.get_position()[1] == 1]  # top row: pCE no
    assert [t.get_position()[0] for t in no_row] == ticks
    assert [int(t.get_text()) for t in no_row] == numbers_at_risk(time[~pce], ticks)
    progressed = df["pfs2_months"].dropna().to_numpy(float)
    for name in KM_FIGURES:  # every curve's axis follows the rule on its own patients
        own = progressed if name.startswith("pfs2") else time
        assert figures[name].axes[0].get_xlim()[1] == pytest.approx(time_axis(own)[0] * 1.03)


def test_km_legends_carry_the_log_rank_p_value_as_the_tables_print_it(example):
    _, numbers, figures, page = example
    for name, section in [("pfs1_by_pce", numbers["pfs1"]["by_pce"]), ("pfs1_by_lmd", numbers["pfs1"]["by_lmd"]),
                          ("pfs2_by_salvage", numbers["pfs2"]["by_salvage"])]:
        title = figures[name].axes[0].get_legend().get_title().get_text()
        assert title == f"log-rank {format_p(section['logrank']['p'], prefix=True)}"
        assert title in page  # the same words under the table


def test_forest_plots_print_p_values_as_the_cox_table(example):
    _, numbers, figures, page = example
    multi, uni = numbers["cox"]["multivariable"]["terms"], numbers["cox"]["univariable"]
    rows = {m[0]: m[1:] for m in re.findall(r"<tr><td>(\w+)</td><td>[^<]*</td><td>([^<]*)</td><td>[^<]*</td>"
                                             r"<td>([^<]*)</td></tr>", page.replace("&lt;", "<"))}
    assert set(rows) == set(multi)

    def said(cell):  # the table's cell as a figure says it
        return f"p {cell}" if cell.startswith("<") else f"p = {cell}"

    assert _texts(figures["forest_multivariable"]) == [said(rows[term][1]) for term in multi]
    uni_terms = [term for model in uni.values() for term in model["terms"]]
    assert _texts(figures["forest_univariable"]) == [said(rows[term][0]) for term in uni_terms]
    for fig in figures.values():  # no figure prints more than three decimals or a bare float
        for text in _texts(fig):
            for p in re.findall(r"\bp [=<] ?([0-9.e-]+)", text):
                assert re.fullmatch(r"\d\.\d{3}", p), text


@pytest.mark.parametrize("p, plain, prefixed", [
    (0.00798, "0.008", "p = 0.008"),
    (0.0004, "< 0.001", "p < 0.001"),
    (0.00099996, "< 0.001", "p < 0.001"),
    (0.001, "0.001", "p = 0.001"),
    (0.04963, "0.050", "p = 0.050"),
    (1.0, "1.000", "p = 1.000"),
    (None, "–", "p not computed"),
    (float("nan"), "–", "p not computed"),
])
def test_p_value_format(p, plain, prefixed):
    assert format_p(p) == plain and format_p(p, prefix=True) == prefixed


def test_single_group_curve_has_a_band_and_no_p_value():
    time = np.linspace(0.5, 30.0, 40)
    event = np.arange(40) % 3 != 0
    fig = plot_km_groups(event, time, np.full(40, "all"), ["all"], title="t", band=True)
    assert fig.axes[0].get_legend().get_title().get_text() == ""
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["all (n = 40)", "95 % CI"]
    censored = [line for line in fig.axes[0].get_lines() if line.get_marker() == "|"]
    assert len(censored) == 1 and list(censored[0].get_xdata()) == list(time[~event])
