"""Render the report's numbers and figures as one self-contained HTML page, from Jinja2 templates.

The templates (package data in ``templates/``: one per section, ``macros.html.j2`` for the shared
pieces, ``report.css`` inlined) autoescape every value, so a field name or provenance text from
the cohort file cannot inject markup. Numbers are formatted by the filters defined here; p-values
by :func:`~cnslrisk.training.plots.format_p`, as in the figures.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from cnslrisk.training.plots import format_p

from .exact import N_RESAMPLES
from .figures import AT_RISK_FRACTION, HORIZONS
from .provenance import describe_provenance

__all__ = ["render_html"]

_GROUP_TITLES = {"overall": "overall", "pce=false": "pCE no", "pce=true": "pCE yes",
                 "lmd=false": "LMD no", "lmd=true": "LMD yes"}
_SPLIT_TITLES = {"pce": "pCE", "lmd": "LMD"}
_PATTERN_TITLES = {"none": "none (censored)", "local": "local", "local_and_distant": "local and distant",
                   "distant": "distant", "death": "death without CNS progression"}


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _months(x: float | None) -> str:
    """Months to one decimal, or two below one month (so 0.04 does not print as 0.0)."""
    return _num(x, 2 if x is not None and x < 1 else 1)


def _n_pct(n: int, pct: float | None) -> str:
    return f"{n} ({_num(pct)} %)"


def _median_iqr(summary: Mapping[str, Any]) -> str:
    return f"{_num(summary['median'])} ({_num(summary['q1'])}–{_num(summary['q3'])})"


def _median(km: Mapping[str, Any]) -> str:
    if km["median"] is None:
        return "not reached"
    upper = "NR" if km["median_upper"] is None else _months(km["median_upper"])
    return f"{_months(km['median'])} ({_months(km['median_lower'])}–{upper})"


def _hr(term: Mapping[str, Any]) -> str:
    return f"{_num(term['hr'], 2)} ({_num(term['ci_lower'], 2)}–{_num(term['ci_upper'], 2)})"


def _test(result: Mapping[str, Any]) -> str:
    return f"{format_p(result['p'], prefix=True)} ({result['method']})"


@cache
def _environment() -> Environment:
    env = Environment(loader=PackageLoader("cnslrisk.report", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(num=_num, months=_months, n_pct=_n_pct, median_iqr=_median_iqr, median=_median, hr=_hr,
                       test=_test, p=format_p, p_is=lambda p: format_p(p, prefix=True))
    # globals, not render variables: the macros (imported without context) read them too
    env.globals.update(group_titles=_GROUP_TITLES, split_titles=_SPLIT_TITLES, pattern_titles=_PATTERN_TITLES)
    return env


def render_html(numbers: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    """The report as one HTML document: inline CSS, figures as data URIs, no scripts or links.

    Parameters
    ----------
    numbers : mapping
        Output of :func:`~cnslrisk.report.analysis.analyse`.
    figures : mapping of str to str
        Output of :func:`~cnslrisk.report.figures.report_figures`.

    Returns
    -------
    str
        The page; it shows aggregates only, never a patient row or identifier.
    """
    cohort = numbers["cohort"]
    return _environment().get_template("report.html.j2").render(
        title=f"cnslrisk cohort report: {cohort['file'] or 'cohort'}",
        numbers=numbers,
        figures=figures,
        provenance=describe_provenance(cohort["provenance"]),
        exact_resamples=f"{N_RESAMPLES:,}".replace(",", " "),
        exact_se=f"{0.5 / N_RESAMPLES ** 0.5:.4f}",
        horizons=", ".join(f"{h:g}" for h in HORIZONS),
        at_risk_pct=f"{100 * AT_RISK_FRACTION:g}",
    )
