"""A cohort file's provenance (``# cnslrisk-provenance`` header or Parquet metadata) in plain language.

The provenance is free-form JSON. Keys the project writes (the simulator's, the bundled example's
selection criteria) get a sentence each; any other key is shown with its name in words and its
value written out (yes/no, lists, ranges), never as raw JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProvenanceLine", "describe_provenance", "plain_value"]

_TERMS = {"pce": "pCE", "lmd": "LMD", "none": "none (censored)", "local_and_distant": "local and distant"}
_GENERATORS = {"cnslrisk.synth": "the cnslrisk cohort simulator (cnslrisk synth)"}
_LABELS = {
    "generator": "simulated by",
    "seed": "random seed",
    "n": "patients simulated",
    "parameters_sha256": "simulation parameters (SHA-256 of the stored parameter file)",
    "example": "the example cohort bundled with cnslrisk",
    "seed_search": "how the seed was chosen",
}
_ORDER = ("CR", "PR", "SD", "PD", "none", "local", "local_and_distant", "distant", "death", "pce", "lmd")


@dataclass(frozen=True)
class ProvenanceLine:
    """One line of the provenance table: a label, its value in words, and sub-items (criteria)."""

    label: str
    text: str
    items: tuple[str, ...] = field(default=())


def _term(key: str) -> str:
    return _TERMS.get(key, key.replace("_", " "))


def plain_value(value: Any) -> str:
    """A JSON value in words: yes/no for booleans, ``a, b`` for lists, ``key value; ...`` for objects."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "not stated"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return ", ".join(plain_value(v) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{_term(str(k))} {plain_value(v)}" for k, v in _ordered(value))
    return str(value)


def _ordered(mapping: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Known levels in clinical order (CR before PD), others after them in the file's order."""
    return _in_order(mapping, list(_ORDER))


def _counts(v: Mapping[str, Any]) -> str:
    return ", ".join(f"{_term(k)} {plain_value(n)}" for k, n in _ordered(v))


def _ranges(v: Mapping[str, Any]) -> str:
    return ", ".join(f"{_term(k)} {lo:g}–{hi:g}" for k, (lo, hi) in _ordered(v))


_CRITERIA: dict[str, Callable[[Any], str]] = {
    "n": lambda v: f"exactly {v} patients",
    "best_response": lambda v: f"best response exactly {_counts(v)}",
    "pattern": lambda v: f"event at CNS-PFS1 exactly {_counts(v)}",
    "cox_hr_within_published_ci": lambda v: f"Cox hazard ratios (pCE + LMD model) inside the published 95 % CIs: "
                                            f"{_ranges(v)}",
    "cox_max_abs_log_hr_deviation": lambda v: "each log hazard ratio at most this far from the published one: "
                                              f"{_counts(v)}",
    "km_median_pfs1_months": lambda v: f"Kaplan–Meier median CNS-PFS1 from {v[0]:g} to {v[1]:g} months",
    "km_median_convention": lambda v: f"median convention: {v}",
}


def _in_order(mapping: Mapping[str, Any], known: list[str]) -> list[tuple[str, Any]]:
    """The project's own keys in ``known``'s order, then any other key in the file's order."""
    rank = {k: i for i, k in enumerate(known)}
    return sorted(mapping.items(), key=lambda kv: rank.get(kv[0], len(rank)))


def _criterion(key: str, value: Any) -> str:
    try:
        return _CRITERIA[key](value)
    except (KeyError, TypeError, ValueError, IndexError):  # an unknown or differently shaped criterion
        return f"{_term(key)}: {plain_value(value)}"


def describe_provenance(provenance: Mapping[str, Any]) -> list[ProvenanceLine]:
    """The provenance, less its ``source`` (shown on its own), as labelled lines in words.

    Parameters
    ----------
    provenance : mapping
        As read from the cohort file (``attrs["provenance"]`` of :func:`cnslrisk.model.read_cohort`).

    Returns
    -------
    list of ProvenanceLine
        The simulator's keys first (generator, seed, n, parameter hash, example, seed search,
        criteria), then any other in the file's order; ``criteria`` becomes one line whose items
        are its criteria.
    """
    lines = []
    for key, value in _in_order(provenance, [*_LABELS, "criteria"]):
        if key == "source":
            continue
        if key == "criteria" and isinstance(value, Mapping):
            items = tuple(_criterion(k, v) for k, v in _in_order(value, list(_CRITERIA)))
            lines.append(ProvenanceLine("criteria the simulated cohort was chosen to meet", "", items))
            continue
        text = _GENERATORS[value] if key == "generator" and value in _GENERATORS else plain_value(value)
        lines.append(ProvenanceLine(_LABELS.get(key, _term(key)), text))
    return lines
