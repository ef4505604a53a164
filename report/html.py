"""Render the report's numbers and figures as one self-contained HTML page (no external resources)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

__all__ = ["render_html"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1100px; margin: 1.5em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { border-bottom: 2px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; } thead th { background: #f0f0f0; }
td.sub { padding-left: 1.6em; } .note { color: #555; font-size: 0.9em; }
.banner { background: #b00020; color: #fff; font-weight: bold; font-size: 1.2em; padding: 0.7em 1em;
          border-radius: 4px; margin: 0.8em 0; }
.real { background: #e8f0fe; color: #123; } .absent { color: #777; font-style: italic; }
.caveat { background: #fff4e5; border-left: 4px solid #e69500; padding: 0.5em 1em; }
figure { margin: 0.5em 0 1em; display: inline-block; vertical-align: top; } img { max-width: 100%; }
table.kv td { text-align: left; } code { font-size: 0.85em; word-break: break-all; }
@media print {
  body { max-width: none; margin: 0; font-size: 10pt; }
  .banner { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; } table, figure { break-inside: avoid; } img { max-width: 16cm; }
}
"""

_GROUP_TITLES = {"overall": "overall", "pce=false": "pCE no", "pce=true": "pCE yes",
                 "lmd=false": "LMD no", "lmd=true": "LMD yes"}
_PATTERN_TITLES = {"none": "none (censored)", "local": "local", "local_and_distant": "local and distant",
                   "distant": "distant", "death": "death without CNS progression"}


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _p_is(p: float | None) -> str:
    """``p = 0.012`` or ``p < 0.001``."""
    text = _p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def _months(x: float | None) -> str:
    """Months to one decimal, or two below one month (so 0.04 does not print as 0.0)."""
    return _num(x, 2 if x is not None and x < 1 else 1)


def _n_pct(n: int, pct: float | None) -> str:
    return f"{n} ({_num(pct)} %)"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], css: str = "") -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table class=\"{css}\"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if isinstance(value, tuple):  # (text, css class)
        return f'<td class="{value[1]}">{escape(str(value[0]))}</td>'
    return f"<td>{escape(str(value))}</td>"


def _test(result: Mapping[str, Any]) -> str:
    return f"{_p_is(result['p'])} ({result['method']})"


def _median(km: Mapping[str, Any]) -> str:
    if km["median"] is None:
        return "not reached"
    upper = "NR" if km["median_upper"] is None else _months(km["median_upper"])
    return f"{_months(km['median'])} ({_months(km['median_lower'])}–{upper})"


def _figure(figures: Mapping[str, str], name: str, caption: str) -> str:
    if name not in figures:
        return ""
    return (f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{figures[name]}">'
            f"<figcaption class=\"note\">{escape(caption)}</figcaption></figure>")


def _absent(title: str) -> str:
    return f'<h2>{escape(title)}</h2><p class="absent">absent in this cohort (the fields are not in the file)</p>'


def _provenance(c: Mapping[str, Any], size: Mapping[str, Any]) -> str:
    banner = ('<div class="banner">SYNTHETIC — NOT REAL PATIENTS. Every number below describes simulated data.</div>'
              if c["synthetic"] else f'<div class="banner real">source: {escape(str(c["source"]))} cohort</div>')
    rows = [("source", c["source"]), ("file", c["file"] or "–"), ("sha256", c["sha256"] or "–"),
            ("patients", c["n"]), ("CNS-PFS1 events", c["events"])]
    rows += [(f"provenance: {k}", v if isinstance(v, (str, int, float)) else json.dumps(v, sort_keys=True))
             for k, v in c["provenance"].items() if k != "source"]
    epv = size.get("events_per_parameter")
    caveat = (f"{size['events']} events for {size.get('parameters') or '–'} parameter(s) in the multivariable Cox "
              f"model: {_num(epv)} events per parameter")
    if epv is not None:
        caveat += (f"; Riley et al.'s minimum sample size at {size['timepoint']:g} months is "
                   f"{size['riley_minimum_n']} patients (this cohort: {c['n']}, "
                   f"{'adequate' if size['adequate'] else 'NOT adequate'})")
        if epv < 10:
            caveat += "; fewer than 10 events per parameter: hazard ratios may be biased and unstable"
    return (banner + "<h2>Cohort and provenance</h2>" + _table(["item", "value"], rows, "kv")
            + f'<p class="caveat"><b>Sample size.</b> {escape(caveat)}. Small subgroups give wide intervals; '
              "p-values are not adjusted for multiple testing.</p>")


def _table1(t1: Mapping[str, Any]) -> str:
    groups = list(t1["groups"])
    header = ["characteristic", *[f"{_GROUP_TITLES[g]} (n = {t1['groups'][g]})" for g in groups]]
    rows: list[list[Any]] = []
    for name, by_group in t1["variables"].items():
        first = by_group["overall"]
        if first["type"] == "boolean":
            rows.append([f"{name}, n (%)", *[_n_pct(by_group[g]["n_true"], by_group[g]["pct_true"]) for g in groups]])
        elif first["type"] == "category":
            rows.append([f"{name}, n (%)", *[""] * len(groups)])
            for level in first["counts"]:
                rows.append([(level, "sub"), *[_n_pct(by_group[g]["counts"][level], by_group[g]["pct"][level])
                                               for g in groups]])
        else:
            rows.append([f"{name}, median (IQR)", *[f"{_num(by_group[g]['median'])} ({_num(by_group[g]['q1'])}–"
                                                   f"{_num(by_group[g]['q3'])})" for g in groups]])
        if any(by_group[g]["missing"] for g in groups):
            rows.append([("missing", "sub"), *[by_group[g]["missing"] for g in groups]])
    return "<h2>Table 1. Baseline characteristics</h2>" + _table(header, rows)


def _response(r: Mapping[str, Any], levels: Sequence[str]) -> str:
    if not r["available"]:
        return _absent("Response to CD19-CAR T cells")
    groups = list(r["groups"])
    header = ["best response", *[f"{_GROUP_TITLES[g]} (n = {r['groups'][g]['n']})" for g in groups]]
    rows = [[lvl, *[_n_pct(r["groups"][g]["counts"][lvl], r["groups"][g]["pct"][lvl]) for g in groups]]
            for lvl in levels]
    rows.append(["ORR (CR + PR)", *[_n_pct(r["groups"][g]["orr"], r["groups"][g]["orr_pct"]) for g in groups]])
    tests = "".join(f"<li>{split.upper()}: response {escape(_test(t['response']))}; ORR {escape(_test(t['orr']))}</li>"
                    for split, t in r["tests"].items())
    return "<h2>Response to CD19-CAR T cells</h2>" + _table(header, rows) + f"<ul class=\"note\">{tests}</ul>"


def _km_rows(section: Mapping[str, Any], titles: Mapping[str, str]) -> list[list[Any]]:
    return [[titles.get(g, g), km["n"], km["events"], _median(km)] for g, km in section["groups"].items()]


def _pfs1(s: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    rows = [["overall", s["overall"]["n"], s["overall"]["events"], _median(s["overall"])]]
    tests = []
    for split in ("pce", "lmd"):
        by = s[f"by_{split}"]
        rows += _km_rows(by, {"false": f"{split.upper()} no", "true": f"{split.upper()} yes"})
        tests.append(f"<li>by {split.upper()}: log-rank {_p_is(by['logrank']['p'])}</li>")
    return ("<h2>CNS-PFS1 (Kaplan–Meier)</h2>"
            + _table(["group", "n", "events", "median, months (95 % CI)"], rows)
            + f"<ul class=\"note\">{''.join(tests)}</ul>"
            + _figure(figures, "pfs1_overall", "CNS-PFS1, all patients, with 95 % log(-log) band")
            + _figure(figures, "pfs1_by_pce", "CNS-PFS1 by pCE")
            + _figure(figures, "pfs1_by_lmd", "CNS-PFS1 by LMD"))


def _pattern(p: Mapping[str, Any], levels: Sequence[str]) -> str:
    if not p["available"]:
        return _absent("Progression pattern")
    out = "<h2>Progression pattern</h2>" + _table(
        ["event at CNS-PFS1", "n"], [[_PATTERN_TITLES[k], v] for k, v in p["counts"].items()])
    if p["crosstab"] is None:
        return out + '<p class="absent">best response is absent in this cohort: no cross-table</p>'
    cols = list(next(iter(p["crosstab"].values())))
    rows = [[lvl, *[p["crosstab"][lvl][c] for c in cols]] for lvl in levels]
    cr = p["cr_distant"]
    return (out + f"<p>Pattern by best response ({p['n_progressed']} patients with CNS progression):</p>"
            + _table(["best response", *[_PATTERN_TITLES[c] for c in cols]], rows)
            + f"<p class=\"note\">pattern × response: {escape(_test(p['test']))}</p>"
            + _table(["", *cr["columns"]], [[r, *v] for r, v in zip(cr["rows"], cr["table"], strict=True)])
            + f"<p class=\"note\">CR vs not CR × distant only vs any local: {escape(_test(cr['test']))}. "
              "The study reports distant relapse after CR and local progression after refractory disease.</p>")


def _hr(term: Mapping[str, Any]) -> str:
    return f"{_num(term['hr'], 2)} ({_num(term['ci_lower'], 2)}–{_num(term['ci_upper'], 2)})"


def _cox(c: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    rows = []
    multi = c["multivariable"]
    for name, uni in c["univariable"].items():
        for term, u in uni["terms"].items():
            m = multi["terms"].get(term)
            rows.append([term, _hr(u), _p(u["p"]), "–" if m is None else _hr(m), "–" if m is None else _p(m["p"])])
        if uni["note"]:
            rows.append([(f"{name}: {uni['note']}", "sub"), "", "", "", ""])
    note = f" — {multi['note']}" if multi["note"] else ""
    return ("<h2>Cox regression for CNS-PFS1</h2>"
            + _table(["term", "univariable HR (95 % CI)", "p", "multivariable HR (95 % CI)", "p"], rows)
            + f"<p class=\"note\">Multivariable model: {', '.join(c['covariates'])}; n = {multi['n']}, "
              f"{multi['events']} events{escape(note)}. Efron ties, Wald intervals.</p>"
            + _figure(figures, "forest_univariable", "univariable hazard ratios")
            + _figure(figures, "forest_multivariable", "multivariable hazard ratios"))


def _post(b: Mapping[str, Any], s: Mapping[str, Any], figures: Mapping[str, str]) -> str:
    out = (_absent("CD19+ B-cell aplasia at progression") if not b["available"] else
           "<h2>CD19+ B-cell aplasia at progression</h2>"
           f"<p>{b['n_aplasia']} of {b['n_known']} patients with a recorded value ({_num(b['pct'])} %).</p>")
    if not s["available"]:
        return out + _absent("CNS-PFS2 after CD19-CAR failure")
    rows = [["overall", s["overall"]["n"], s["overall"]["events"], _median(s["overall"])]]
    test = ""
    if s["by_salvage"] is not None:
        rows += _km_rows(s["by_salvage"], {})
        test = f"<p class=\"note\">by salvage class: log-rank {_p_is(s['by_salvage']['logrank']['p'])}</p>"
    else:
        test = '<p class="absent">salvage therapy is absent in this cohort</p>'
    return (out + "<h2>CNS-PFS2 after CD19-CAR failure</h2>"
            + _table(["group", "n", "events", "median, months (95 % CI)"], rows) + test
            + _figure(figures, "pfs2_overall", "CNS-PFS2 from first progression")
            + _figure(figures, "pfs2_by_salvage", "CNS-PFS2 by salvage therapy class"))


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
    c = numbers["cohort"]
    levels = numbers["response_levels"]
    title = f"cnslrisk cohort report: {c['file'] or 'cohort'}"
    methods = ("<h2>Methods</h2><p class=\"note\">Percentages are of patients with a known value; medians with "
               "interquartile ranges. Kaplan–Meier medians are the first time the estimate is at or below 0.5; "
               "95 % CIs by Brookmeyer–Crowley from the log(-log) band (NR = not reached). Exact tests: Fisher for "
               "2 × 2 tables, Freeman–Halton (full enumeration, or a seeded Monte Carlo estimate when the tables "
               "are too many, as named) for larger ones. Log-rank tests compare all groups shown. Analysis "
               "reproduces Kaulen et al., J Hematol Oncol 2026;19:2 (doi:10.1186/s13045-025-01761-8).</p>")
    body = "".join([
        f"<h1>{escape(title)}</h1>",
        _provenance(c, numbers["cox"]["sample_size"]),
        _table1(numbers["table1"]),
        _response(numbers["response"], levels),
        _pfs1(numbers["pfs1"], figures),
        _pattern(numbers["pattern"], levels),
        _cox(numbers["cox"], figures),
        _post(numbers["bcell_aplasia"], numbers["pfs2"], figures),
        methods,
    ])
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>\n")
