"""What ``cnslrisk score`` prints for a patient: the values scored, warnings first, the plain words, then the figures.

The sentences and reworded warnings are the ``plain_language`` field of the JSON output (the web page
shows the same); numbers are rounded and labelled by :mod:`cnslrisk.serving.labels`.
"""

from __future__ import annotations

from typing import Any

from ._app import console

__all__ = ["print_summary"]

_TYPES = {"cox": "Cox proportional hazards model", "coxnet": "penalised (elastic-net) Cox model",
          "rsf": "random survival forest"}


def _say(text: str, style: str = "") -> None:
    console.print(text, style=style or None, highlight=False, markup=False)


def _entered(model: Any, record: dict[str, Any]) -> str:
    from cnslrisk.serving.labels import field_label, value_text

    fields = model.input_schema.by_name()
    shown = [f"{field_label(fields[k])}: {value_text(fields[k], v)}" for k, v in record.items()
             if k in fields and fields[k].role != "identifier"]
    return "; ".join(shown)


def _read_first(pl: dict[str, Any]) -> list[str]:
    lines = [*pl["warnings"]]
    if pl["wide_bands"]:
        lines.append(pl["wide_bands"])
    post = pl["post_response"]
    if post and post["wide_bands"]:
        lines.append(post["wide_bands"])
    return lines + [s["text"] for s in pl["scope"] if s["ignores"]]


def _survival_table(row: dict[str, Any], horizons: list[float], unit: str, prefix: str = "") -> None:
    from rich.table import Table

    from cnslrisk.serving.labels import band_text, duration, percent

    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column("time from infusion")
    table.add_column("alive and free of CNS progression", justify="right")
    table.add_column("95 % band", justify="right")
    for h in horizons:
        key = f"{prefix}survival_{h:g}"
        if row.get(key) is not None:
            table.add_row(duration(h, unit), percent(row[key]), band_text(row[f"{key}_lower"], row[f"{key}_upper"]))
    console.print(table)


def _pattern_table(row: dict[str, Any], horizons: list[float], unit: str, labels: dict[str, str],
                   prefix: str = "") -> None:
    from rich.table import Table

    from cnslrisk.serving.labels import duration, percent

    causes = [c for c in labels if row.get(f"{prefix}cif_{c}_{horizons[-1]:g}") is not None]
    if not causes:
        return
    table = Table(show_header=True, box=None, pad_edge=False)
    table.add_column("time from infusion")
    for cause in causes:
        table.add_column(labels[cause], justify="right")
    for h in horizons:
        if row.get(f"{prefix}survival_{h:g}") is not None:
            table.add_row(duration(h, unit), *(percent(row[f"{prefix}cif_{c}_{h:g}"]) for c in causes))
    console.print(table)


def _contributions(model: Any, result: dict[str, Any], row: dict[str, Any], record: dict[str, Any]) -> None:
    import math

    from cnslrisk.serving.labels import field_label, value_text

    cox = result["provenance"]["model_type"] in ("cox", "coxnet")
    fields = model.input_schema.by_name()
    _say("What drives the risk score (" + ("each covariate's term in the log hazard ratio against an average "
         "training patient; they add up to the risk score)" if cox else "change in the forest's risk score when the "
         "covariate alone is set to its reference; one at a time, they do not add up") + ":")
    for name, value in sorted(row["contributions"].items(), key=lambda kv: -abs(kv[1])):
        spec = fields.get(name)
        effect = f"{value:+.2f}" + (f" (hazard x{math.exp(value):.1f})" if cox else "")
        label = field_label(spec) if spec is not None else name
        entered = value_text(spec, record.get(name)) if spec is not None else ""
        _say(f"  {label} {entered}: {effect}")


def _post_response(result: dict[str, Any], row: dict[str, Any], unit: str) -> None:
    post = row["plain_language"]["post_response"]
    if not post:
        return
    from cnslrisk.serving.labels import duration

    landmark = result["provenance"]["post_response"]
    _say(f"Post-response prediction, after the first response assessment ({duration(post['landmark_time'], unit)}):",
         "bold")
    _say(f"  {post['condition']} Refitted on {landmark['n']} such training patients ({landmark['events']} events; "
         f"out-of-fold C-index {landmark['validated_c_index'] or float('nan'):.2f}).")
    for entry in post["horizons"]:
        _say(f"  {entry['sentence']}")
    _survival_table(row, [e["horizon"] for e in post["horizons"]], unit, "post_response_")
    _pattern_table(row, [e["horizon"] for e in post["horizons"]], unit, row["plain_language"]["cause_labels"],
                   "post_response_")
    if post["likely_pattern"]:
        _say(f"  {post['likely_pattern']}")


def print_summary(model: Any, result: dict[str, Any], records: list[dict[str, Any]]) -> None:
    """Print each scored patient: entered values, warnings, the plain-language sentences, then the figures.

    Parameters
    ----------
    model : RiskModel
    result : dict
        :func:`~cnslrisk.serving.scoring.score_records`'s output for ``records``.
    records : list of dict
        The patients as given (their values are printed with the result they produced).
    """
    from cnslrisk.serving.labels import duration

    p, unit = result["provenance"], model.time_unit
    c_index = p["validated_c_index"]
    alias = f" ({p['model_alias']})" if p["model_alias"] else ""
    _say(f"Model {p['model_name']} version {p['model_version']}{alias}, {_TYPES.get(p['model_type'], p['model_type'])}"
         f"; trained on a {p['training_source']} cohort of "
         f"{p['training_n']} patients with {p['training_events']} events; out-of-fold C-index "
         + ("n/a" if c_index is None else f"{c_index:.2f}"))
    if p["not_for_clinical_use"]:
        _say(p["notice"], "bold red")
    for row, record in zip(result["predictions"], records, strict=True):
        pl = row["plain_language"]
        console.rule(f"patient {row.get('patient_id') or ''}".strip(), style="dim")
        _say(f"For: {_entered(model, record)}")
        lines = _read_first(pl)
        _say("Read first:" if lines else "Checks: every value lies within the training cohort's range.",
             "bold yellow" if lines else "")
        for line in lines:
            _say(f"  ! {line}", "yellow")
        _say("In plain words:", "bold")
        for entry in pl["horizons"]:
            _say(f"  {entry['sentence']}")
        headline = next(e for e in pl["horizons"] if e["horizon"] == pl["headline_horizon"])
        if headline["breakdown"]:
            _say(f"  At {headline['time']}, {headline['breakdown'][0].lower()}{headline['breakdown'][1:]}")
        _survival_table(row, result["horizons"], unit)
        _say(f"Median CNS-PFS1: {duration(row['median_time'], unit)} (the time by which half of patients like this "
             "would have had CNS progression or died)")
        score = (f"log hazard ratio {row['risk_score']:+.2f} against an average training patient"
                 if p["model_type"] in ("cox", "coxnet") else f"forest risk score {row['risk_score']:.2f}")
        _say(f"Risk group: {row['risk_group']} (thirds of the training cohort's risk scores); {score}")
        if pl["likely_pattern"]:
            scope = next((s["text"] for s in pl["scope"] if s["panel"] == "relapse-pattern"), "")
            _say(f"Relapse pattern, cumulative incidence from infusion. {scope}")
            _pattern_table(row, result["horizons"], unit, pl["cause_labels"])
            _say(f"  {pl['likely_pattern']}")
        _post_response(result, row, unit)
        _contributions(model, result, row, record)
