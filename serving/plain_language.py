"""A prediction in plain language, as the PREDICT and MSKCC calculators give theirs: "of 100 patients like this".

:class:`PlainLanguage` turns one scored row into the ``plain_language`` field of ``cnslrisk score --json``
and of ``POST /v1/predict`` (the web page and the CLI summary show the same sentences):

- ``summary``: the sentence at the headline horizon (the middle one of the horizons: 6 of 3, 6, 12);
- ``horizons``: per horizon the sentence, the icon array's counts out of 100 (``per_100``: alive and
  free of CNS progression, then each relapse pattern), which add up to 100, and a plain statement when
  the 95 % band is too wide to guide a decision (``wide_band``, by :data:`WIDE_BAND`), and ``wide_bands``
  saying so for all such horizons in one sentence;
- ``likely_pattern``: the most likely relapse pattern with its rule (the highest cumulative incidence at the
  last horizon) and, where another pattern leads at an earlier horizon, which and when;
- ``warnings``: each applicability warning reworded to say what it means for the numbers;
- ``scope``: per panel (relapse-pattern, post-response) the covariates its figures use (their own, from
  the model card), the entered ones they ignore, and a sentence saying so;
- ``cause_labels``: each relapse pattern in words (``local_and_distant`` → "local and distant");
- ``post_response``: the same, for a patient still progression-free at the landmark with a known best
  response (None otherwise), with the condition under which it holds.

Counts out of 100: "alive and free of CNS progression" is the survival rounded to a whole percent (so the
sentence and the table agree); the rest is shared among the patterns in proportion to their incidences,
by largest remainders, so that the parts add up to 100. This is rounding for display only: it is done
only when the incidences add up to 1 - CNS-PFS1 within :data:`COHERENCE_TOLERANCE`; a model whose
pattern figures do not (versions trained before the two were reconciled) shows "CNS progression or
death" as one part instead.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any

from cnslrisk.model.contract import Field
from cnslrisk.model.outputs import horizon_label
from cnslrisk.model.predictor import RiskModel

from .labels import (
    band_text,
    cause_label,
    duration,
    field_label,
    join_words,
    level_label,
    number_text,
    percent,
    with_unit,
)

__all__ = ["WIDE_BAND", "COHERENCE_TOLERANCE", "FREE", "PlainLanguage", "per_hundred", "survival_sentence"]

WIDE_BAND = 0.40
"""A 95 % band wider than this (40 percentage points) is called too wide to guide a decision: it then spans
outlooks that would be managed differently (e.g. 9 % to 54 % alive and progression-free)."""
COHERENCE_TOLERANCE = 0.005
"""How far the pattern incidences may add up away from 1 - CNS-PFS1 and still be shown as parts of one whole."""
FREE = "free"
_FREE_LABEL = "alive and free of CNS progression"
_EVENT = "progressed"

_OUTSIDE = re.compile(r"^field (?P<name>\S+): (?P<value>\S+) is outside the training range "
                      r"\[(?P<lo>[^,]+), (?P<hi>[^\]]+)\] \(central 98% of training\)$")
_UNSEEN = re.compile(r"^field (?P<name>\S+): '(?P<value>.*)' was not seen in training "
                     r"\(scored as the reference '(?P<ref>.*)'\)$")
_IMPUTED = re.compile(r"^field (?P<name>\S+): missing, imputed as (?P<fill>.+)$")
_NO_RESPONSE = re.compile(r"^field (?P<name>\S+): '(?P<value>.*)' was not seen among the patients progression-free "
                          r"at the (?P<time>\S+) landmark \(levels .*\): no post-response prediction$")


@lru_cache(maxsize=256)
def _outcome_label(cause: str) -> str:
    return "died without CNS progression" if cause == "death" else f"CNS progression, {cause_label(cause)}"


def per_hundred(survival: float, incidences: dict[str, float | None]) -> list[dict[str, Any]]:
    """The icon array's parts out of 100 (see the module docstring); they add up to 100.

    Parameters
    ----------
    survival : float
        CNS-PFS1 at the horizon.
    incidences : dict of str to float
        Cumulative incidence of each pattern at the horizon (empty without a pattern model).

    Returns
    -------
    list of dict
        ``outcome`` (``"free"``, a pattern, or ``"progressed"``), ``label`` and ``count``.
    """
    free = min(100, max(0, math.floor(survival * 100 + 0.5)))
    parts = [{"outcome": FREE, "label": _FREE_LABEL, "count": free}]
    rest = 100 - free
    values = {c: v for c, v in incidences.items() if v is not None}
    total = sum(values.values())
    coherent = bool(values) and len(values) == len(incidences) and abs(total - (1 - survival)) <= COHERENCE_TOLERANCE
    if not coherent or total <= 0:
        return [*parts, {"outcome": _EVENT, "label": "CNS progression or death", "count": rest}]
    quotas = {c: v / total * rest for c, v in values.items()}
    counts = {c: math.floor(q) for c, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda c: -(quotas[c] - counts[c]))  # stable: ties in the patterns' order
    for cause in by_remainder[:rest - sum(counts.values())]:
        counts[cause] += 1
    return [*parts, *({"outcome": c, "label": _outcome_label(c), "count": counts[c]} for c in values)]


def survival_sentence(survival: float, when: str, *, who: str = "patients like this", still: bool = False) -> str:
    """ "Of 100 patients like this, about 43 would be alive and free of CNS progression at 6 months." """
    free = math.floor(survival * 100 + 0.5)
    about = "fewer than 1" if free < 1 else "more than 99" if free > 99 else f"about {free}"
    return f"Of 100 {who}, {about} would {'still ' if still else ''}be {_FREE_LABEL} at {when}."


def _breakdown(parts: list[dict[str, Any]]) -> str | None:
    """ "The other 57 would have had CNS progression or died (local 28, distant 22, local and distant 7)." """
    events = [p for p in parts if p["outcome"] != FREE]
    rest = sum(p["count"] for p in events)
    if rest == 0 or events[0]["outcome"] == _EVENT:
        return None
    split = ", ".join(f"{cause_label(p['outcome'])} {p['count']}" for p in events)
    return f"The other {rest} would have had CNS progression or died ({split})."


def _horizon_columns(prefix: str, label: str, causes: list[str]) -> dict[str, Any]:
    """The output columns one horizon of one panel is read from (``survival``, ``lower``, ``upper``, ``cif``)."""
    return {"survival": f"{prefix}survival_{label}", "lower": f"{prefix}survival_{label}_lower",
            "upper": f"{prefix}survival_{label}_upper", "cif": {c: f"{prefix}cif_{c}_{label}" for c in causes}}


class PlainLanguage:
    """The ``plain_language`` field of every prediction of ``model`` at ``horizons`` (see the module docstring).

    Parameters
    ----------
    model : RiskModel
    horizons : tuple of float
        The horizons of the prediction (from infusion, in the model's time unit).
    """

    def __init__(self, model: RiskModel, horizons: tuple[float, ...]):
        self.unit = model.time_unit
        self.horizons = tuple(horizons)
        self.fields: dict[str, Field] = model.input_schema.by_name()
        self.causes = list(model.pattern[-1].causes_) if model.pattern is not None else []
        self.landmark = model.landmark
        causes = dict.fromkeys([*self.causes, *(model.landmark.causes if model.landmark is not None else [])])
        self.cause_labels = {cause: cause_label(cause) for cause in causes}
        card = model.metadata.get("card", {})
        self.scope = self._scope(model, card)
        # what every row of these horizons reads: the words of each time, the output column names of each panel
        self._when = {h: duration(h, self.unit) for h in self.horizons}
        panels = {"": self.causes, "post_response_": self.landmark.causes if self.landmark is not None else []}
        self._columns = {prefix: {h: _horizon_columns(prefix, horizon_label(h), causes) for h in self.horizons}
                         for prefix, causes in panels.items()}

    def _label(self, name: str) -> str:
        spec = self.fields.get(name)
        return field_label(spec) if spec is not None else name.replace("_", " ")

    def _scope(self, model: RiskModel, card: dict[str, Any]) -> list[dict[str, Any]]:
        """Which covariates the pattern and post-response figures use (``uses``), which of the entered ones they
        ignore (``ignores``), and the sentence that says so (``text``), per ``panel``."""
        panels = []
        if model.pattern is not None and card.get("pattern_model", {}).get("features"):
            panels.append(("relapse-pattern", card["pattern_model"]["features"]))
        if model.landmark is not None and (card.get("post_response") or {}).get("features"):
            panels.append(("post-response", card["post_response"]["features"]))
        out = []
        for name, used in panels:
            ignored = [c for c in model.feature_columns if c not in used]
            words = join_words([self._label(c) for c in used])
            if ignored:
                text = (f"The {name} figures use only {words}; they ignore "
                        f"{join_words([self._label(c) for c in ignored])}, whatever was entered for them.")
            else:
                text = f"The {name} figures use {words}, as the CNS-PFS1 prediction does."
            out.append({"panel": name, "uses": list(used), "ignores": ignored, "text": text})
        return out

    def describe(self, row: dict[str, Any], response: Any = None) -> dict[str, Any]:
        """The plain-language field of one scored row (``response``: the patient's best response, if given)."""
        horizons = self._horizons(row, "", self.horizons, still=False)
        headline = self.horizons[len(self.horizons) // 2]
        summary = next((h["sentence"] for h in horizons if h["horizon"] == headline), None)
        return {"summary": summary, "headline_horizon": headline, "horizons": horizons,
                "wide_bands": self._wide_bands(horizons), "likely_pattern": self._likely(row, "", self.horizons),
                "warnings": [self.explain(w) for w in row.get("warnings", [])], "scope": self.scope,
                "cause_labels": self.cause_labels, "post_response": self._post_response(row, response)}

    def _horizons(self, row: dict[str, Any], prefix: str, horizons: tuple[float, ...], *,
                  still: bool, who: str = "patients like this") -> list[dict[str, Any]]:
        out = []
        columns = self._columns[prefix]
        for h in horizons:
            names = columns[h]
            survival = row.get(names["survival"])
            if survival is None:
                continue
            when = self._when[h]
            parts = per_hundred(survival, {c: row.get(name) for c, name in names["cif"].items()})
            lower, upper = row.get(names["lower"]), row.get(names["upper"])
            spread = band_text(lower, upper).replace(" – ", " to ")
            wide = None
            if lower is not None and upper is not None and upper - lower > WIDE_BAND:
                wide = (f"At {when} the 95 % band runs from {spread}: wider than {WIDE_BAND * 100:.0f} percentage "
                        f"points, too wide to guide a decision for this patient.")
            out.append({"horizon": h, "time": when, "sentence": survival_sentence(survival, when, who=who, still=still),
                        "breakdown": _breakdown(parts), "per_100": parts, "band": spread, "wide_band": wide})
        return out

    def _likely(self, row: dict[str, Any], prefix: str, horizons: tuple[float, ...]) -> str | None:
        """The most likely pattern with its rule (highest incidence at the last horizon) and earlier leaders."""
        likely = row.get(f"{prefix}likely_pattern")
        columns = self._columns[prefix]
        if likely is None or not horizons or not columns[horizons[0]]["cif"]:  # no pattern model in this panel
            return None

        def leader(h: float) -> tuple[str, float]:
            values = [(c, row.get(name)) for c, name in columns[h]["cif"].items()]
            return max(((c, v) for c, v in values if v is not None), key=lambda cv: cv[1], default=(likely, None))

        last = horizons[-1]
        text = (f"Most likely pattern, should CNS progression occur: {cause_label(likely)}, the pattern with the "
                f"highest cumulative incidence at {self._when[last]}, the last time shown "
                f"({percent(leader(last)[1])}).")
        earlier = [(h, *leader(h)) for h in horizons[:-1]]
        earlier = [(h, c, v) for h, c, v in earlier if c != likely]
        if earlier:
            return text + " Earlier another pattern leads: " + join_words(
                [f"{cause_label(c)} at {self._when[h]} ({percent(v)})" for h, c, v in earlier]) + "."
        return text + " It leads at every time shown."

    @staticmethod
    def _wide_bands(horizons: list[dict[str, Any]], lead: str = "The") -> str | None:
        """One sentence for every horizon whose band is too wide (None when none is)."""
        wide = [h for h in horizons if h["wide_band"]]
        if not wide:
            return None
        where = join_words([f"{h['time']} ({h['band']})" for h in wide])
        return (f"{lead} 95 % band is too wide to guide a decision for this patient at {where}: wider than "
                f"{WIDE_BAND * 100:.0f} percentage points.")

    def _post_response(self, row: dict[str, Any], response: Any) -> dict[str, Any] | None:
        if self.landmark is None or response is None:
            return None
        columns = self._columns["post_response_"]
        after = tuple(h for h in self.horizons if row.get(columns[h]["survival"]) is not None)
        if not after:
            return None
        at = duration(self.landmark.time, self.unit)
        level = level_label(self.fields.get(self.landmark.response), response)
        who = f"patients like this who are {_FREE_LABEL} {at} after infusion with a best response of {level}"
        horizons = self._horizons(row, "post_response_", after, still=True, who=who)
        return {"condition": (f"Holds only for a patient still {_FREE_LABEL} {at} after infusion whose best "
                              f"response ({level}) was assessed by then; times are from infusion."),
                "landmark_time": self.landmark.time, "summary": horizons[len(horizons) // 2]["sentence"],
                "wide_bands": self._wide_bands(horizons, f"After the first response assessment ({at}), the"),
                "horizons": horizons,
                "likely_pattern": self._likely(row, "post_response_", after)}

    def explain(self, warning: str) -> str:
        """One applicability warning in words that say what it means for the numbers (unknown ones verbatim)."""
        if match := _OUTSIDE.match(warning):
            spec = self.fields.get(match["name"]) or Field(name=match["name"], type="number")
            value, low, high = (number_text(float(match[k]), spec.type) for k in ("value", "lo", "hi"))
            return (f"{self._label(spec.name)}: {value} is outside the range of most training patients "
                    f"({low} to {with_unit(spec, high)}). The model extrapolates here, so the figures below may be "
                    f"further off than their 95 % bands show.")
        if match := _UNSEEN.match(warning):
            spec = self.fields.get(match["name"])
            value, ref = level_label(spec, match["value"]), level_label(spec, match["ref"])
            return (f"{self._label(match['name'])}: “{value}” did not occur in the training cohort. It was scored "
                    f"as “{ref}”, so the figures below hold for “{ref}”.")
        if match := _IMPUTED.match(warning):
            return self._imputed(match["name"], match["fill"])
        if match := _NO_RESPONSE.match(warning):
            value = level_label(self.fields.get(match["name"]), match["value"])
            return (f"{self._label(match['name'])}: {value} did not occur among the patients still progression-free "
                    f"at the landmark, so no post-response prediction is given.")
        return warning

    def _imputed(self, name: str, fill: str) -> str:
        spec = self.fields.get(name)
        value = fill.strip("'\"")
        if spec is not None and spec.type == "boolean":
            value, source = ("yes" if float(value) >= 0.5 else "no"), "the more frequent value in training"
        elif spec is not None and spec.type in ("number", "integer"):
            value, source = with_unit(spec, number_text(float(value), spec.type)), "the training median"
        else:
            value, source = level_label(spec, value), "the most frequent value in training"
        return (f"{self._label(name)}: unknown, so scored as “{value}” ({source}; the imputation declared when the "
                f"model was trained). The figures below hold for “{value}”, not for an average over the values it "
                f"could have.")
