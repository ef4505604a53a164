"""The model card (TRIPOD+AI items) as JSON and Markdown, built from a training run's results."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cnslrisk.model.outputs import json_safe

if TYPE_CHECKING:
    from cnslrisk.model.predictor import RiskModel

    from .comparison import Comparison
    from .config import TrainingConfig
    from .data import TrainingData
    from .fit import Candidate
    from .selection import Selection

__all__ = ["intended_use", "render_markdown", "build_card", "card_files", "coefficients_dict", "NOT_FOR_CLINICAL_USE"]

NOT_FOR_CLINICAL_USE = "NOT FOR CLINICAL USE"


def intended_use(source: str) -> str:
    """The intended-use statement; a model trained on synthetic data says it is not for clinical use."""
    base = (
        "Research tool: estimates CNS progression-free survival (CNS-PFS1) after CD19-directed CAR T-cell "
        "therapy for CNS lymphoma, and the relapse pattern, from covariates known at infusion."
    )
    if source == "synthetic":
        return (
            f"{NOT_FOR_CLINICAL_USE}: trained on a SYNTHETIC cohort generated to mimic the published statistics "
            f"of Kaulen et al. 2026; it demonstrates the method and must not inform any clinical decision. {base}"
        )
    return (
        f"{base} Not validated for clinical decisions outside the population and period of its training cohort; "
        "not for clinical use without external validation."
    )


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "undefined"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _interval(figure: dict[str, Any]) -> str:
    if not figure:
        return "—"
    return f"{_fmt(figure.get('mean'))} ({_fmt(figure.get('ci_lower'))} to {_fmt(figure.get('ci_upper'))})"


def render_markdown(card: dict[str, Any]) -> str:
    """Render a model card dict (the JSON form) as Markdown."""
    model, data = card["model"], card["training_data"]
    lines = [
        f"# Model card: {model.get('name', 'cnslrisk')} version {model.get('version', '?')} ({model['type']})",
        "",
    ]
    if data["source"] == "synthetic":
        lines += [f"> **{NOT_FOR_CLINICAL_USE}** — trained on synthetic data.", ""]
    lines += ["## Intended use", "", card["intended_use"], "", "## Training data", ""]
    lines += [f"- {key}: {_fmt(data.get(key))}" for key in ("source", "n", "events", "time_unit", "sha256")]
    lines += ["", "## Predictors and coding", ""]
    lines += [f"- `{p['name']}` ({p['kind']}): {p['coding']}" for p in card.get("predictors", [])]
    lines += ["", f"Missing data: {card.get('missing_data', 'not stated')}", ""]
    lines += ["## Model", "", f"Type: {model['type']}; hyperparameters: {model.get('hyperparameters', {})}", ""]
    if model.get("band_check"):
        lines += [f"95 % band: {model['interval_method']}. Band check: {model['band_check']['advice']}.", ""]
    coefficients = card.get("coefficients") or {}
    if coefficients:
        lines += ["| term | coef | HR | 95% CI | p |", "|---|---|---|---|---|"]
        for term, c in coefficients.items():
            ci = f"{_fmt(c.get('ci_lower'), 2)}–{_fmt(c.get('ci_upper'), 2)}"
            lines.append(f"| {term} | {_fmt(c['coef'])} | {_fmt(c['hr'], 2)} | {ci} | {_fmt(c.get('p'))} |")
        lines.append("")
    validation = card.get("validation", {})
    boot = validation.get("bootstrap", {})
    if boot:
        lines += ["## Cox-type model: Harrell bootstrap optimism correction (as R rms validate)", "",
                  f"Resamples: {boot.get('resamples')}", "", "| metric | apparent | optimism | corrected |",
                  "|---|---|---|---|"]
        for metric in boot.get("apparent", {}):
            lines.append(f"| {metric} | {_fmt(boot['apparent'][metric])} | {_fmt(boot['optimism'].get(metric))} | "
                         f"{_fmt(boot['corrected'].get(metric))} |")
        lines.append("")
    selection = card.get("selection")
    if isinstance(selection, dict):
        lines += ["## How this model was chosen", "", selection.get("in_words", ""), "",
                  f"Rule: {selection['rule']}.", "", f"Decision: {selection['reason']}.", ""]
        lines += [f"- {note}" for note in selection.get("notes", [])]
        nested = selection.get("nested")
        if nested:
            lines += ["", f"The whole selection, validated ({nested['design']}): Harrell C "
                          f"{_interval(nested['c_index'])}, integrated Brier {_interval(nested['ibs'])}, calibration "
                          f"slope {_interval(nested['calibration_slope'])}; chosen per outer fold: {nested['chosen']}."]
            before = nested.get("without_recalibration")
            if before:
                lines += ["", "Without the recalibration, the same outer folds: Harrell C "
                              f"{_interval(before['c_index'])}, integrated Brier {_interval(before['ibs'])}, "
                              f"calibration slope {_interval(before['calibration_slope'])}."]
        recalibration = selection.get("recalibration")
        if recalibration:
            done = (f"applied: coefficients x {_fmt(recalibration['slope'])}, the out-of-fold calibration slope"
                    if recalibration["applied"] else recalibration["reason"])
            lines += ["", f"Out-of-fold recalibration ({recalibration['method']}): {done}."]
        lines += ["", "## Out-of-fold comparison (same splits for every model; 95 % corrected CI)", "",
                  "| model | Harrell C | integrated Brier | calibration slope |", "|---|---|---|---|"]
        for kind, entry in card.get("candidates", {}).items():
            cells = [_interval(entry.get("cv", {}).get(m, {})) for m in ("c_index", "ibs", "calibration_slope")]
            lines.append(f"| {kind}{' (chosen)' if kind == selection['chosen'] else ''} | " + " | ".join(cells) + " |")
        lines.append("")
    size = card.get("sample_size", {})
    if size:
        lines += ["", "## Sample size", "",
                  f"Events per candidate parameter: {_fmt(size.get('events_per_parameter'), 1)}; "
                  f"Riley minimum n: {size.get('riley_minimum_n')}; adequate: {size.get('adequate')}"]
        if size.get("warning"):
            lines += ["", f"**Warning:** {size['warning']}"]
    pattern = card.get("pattern_validation")
    if pattern:
        model_text = card.get("pattern_model", {})
        lines += ["", "## Relapse pattern model", "", f"{model_text.get('type', '')}; covariates "
                  f"{model_text.get('features', [])}; events per pattern {pattern['uncertainty']['events']}.", "",
                  "| pattern | horizon | concordance (Wolbers, CV) |", "|---|---|---|"]
        lines += [f"| {c['cause']} | {c['horizon']:g} | {_fmt(c['mean'])} |" for c in pattern["concordance"]]
        if pattern["uncertainty"].get("statement"):
            lines += ["", f"**Uncertainty:** {pattern['uncertainty']['statement']}"]
    history = card.get("validation_history") or []
    if history:
        lines += ["", "## Validated on (external evaluations)", "", "| date | cohort sha256 | n | events | C |",
                  "|---|---|---|---|---|"]
        for h in history:
            lines.append(f"| {h.get('date', '')} | {str(h.get('sha256', ''))[:12]} | {h.get('n', '')} | "
                         f"{h.get('events', '')} | {_fmt(h.get('c_index'))} |")
    limitations = card.get("limitations", [])
    if limitations:
        lines += ["", "## Limitations", ""] + [f"- {item}" for item in limitations]
    return "\n".join(lines) + "\n"


def coefficients_dict(table: pd.DataFrame | None, model: Any) -> dict[str, dict[str, float]]:
    """Coefficients keyed by term (interface names): coef, hr, and for Cox se, ci_lower, ci_upper, p."""
    if table is not None:
        return {
            term: {"coef": row["coef"], "se": row["se(coef)"], "hr": row["exp(coef)"],
                   "ci_lower": row["exp(coef) lower 95%"], "ci_upper": row["exp(coef) upper 95%"], "p": row["p"]}
            for term, row in table.iterrows()
        }
    estimator = model.named_steps["model"]
    if not hasattr(estimator, "coef_"):
        return {}
    names = model.named_steps["encode"].get_feature_names_out()
    return {term: {"coef": float(c), "hr": float(np.exp(c))} for term, c in zip(names, estimator.coef_, strict=True)}


def _predictors(config: TrainingConfig, model: RiskModel) -> list[dict[str, str]]:
    encoder = model.pipeline.named_steps["encode"]
    out = [{"name": n, "kind": "binary", "coding": "1 = true, 0 = false"} for n in config.features.binary]
    for name in config.features.categorical:
        levels = list(encoder.levels_[name])
        out.append({"name": name, "kind": "categorical",
                    "coding": f"reference {levels[0]!r}; indicators for {levels[1:]}" if levels else "no levels"})
    scaled = model.kind == "coxnet"
    out += [{"name": n, "kind": "numeric", "coding": "standardised (training mean/sd)" if scaled else "per unit"}
            for n in config.features.numeric]
    return out


CV_DEFINITION = (
    "every kind refitted on the same repeated stratified K-fold splits; mean: pooled out-of-fold predictions of "
    "each repeat averaged over repeats (Brier, IBS, calibration), or the mean over folds (Harrell's and Uno's C, "
    "AUC); ci: corrected repeated-CV t interval from the per-fold values (Bouckaert & Frank 2004)")
SELECTION_IN_WORDS = (
    "The model kept is the one whose predicted survival was closest to what happened (lowest integrated Brier "
    "score) when each patient was predicted by a model that had not seen them, among the models whose predictions "
    "were neither too extreme nor too timid; a more complex model must be clearly better to be preferred. It is "
    "used by default only if it predicts better than giving every patient the average survival curve.")


def build_card(
    chosen: Candidate,
    candidates: dict[str, Candidate],
    comparison: Comparison,
    selection: Selection,
    config: TrainingConfig,
    data: TrainingData,
    model: RiskModel,
    *,
    sample_size: dict[str, Any],
    calibration: dict[str, Any],
    extras: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the model card (keys of the public interface, plus TRIPOD+AI items)."""
    source = data.provenance["source"]
    estimator = chosen.pipeline.named_steps["model"]
    hyper = {k: v for k, v in estimator.get_params(deep=False).items() if isinstance(v, (int, float, str, type(None)))}
    for attribute in ("alpha_", "best_params_"):
        if hasattr(estimator, attribute):
            hyper[f"chosen {attribute.rstrip('_')}"] = getattr(estimator, attribute)
    limitations = [
        f"Developed on {data.n} patients with {data.events} events; estimates are imprecise (see sample_size).",
        "Predictions are valid only for patients like the training cohort (see each prediction's warnings).",
        "Hazard ratios are associations, not causal effects.",
    ]
    if source == "synthetic":
        limitations.insert(0, "The training cohort is SYNTHETIC: figures describe the generator, not real patients.")
    card = {
        "model": {"name": config.mlflow.registered_model, "version": None, "type": chosen.kind,
                  "hyperparameters": hyper, "time_unit": config.data.time_unit,
                  "horizons": list(config.validation.horizons),
                  "interval_method": model.interval_method},
        "training_data": {k: data.provenance.get(k) for k in ("source", "n", "events", "sha256", "time_unit")}
        | {"follow_up_max": data.provenance.get("follow_up_max")},
        "intended_use": intended_use(source),
        "predictors": _predictors(config, model),
        "missing_data": ("imputed inside the pipeline (numeric: training median; categorical: most frequent level); "
                         "imputed values are flagged in each prediction's warnings") if config.features.impute
        else "complete cases required: missing covariates are refused with an error naming the field and row",
        "coefficients": coefficients_dict(extras.get("coefficient_table") if extras else None, chosen.pipeline),
        "validation": {
            "cv": comparison.table(chosen.kind),
            "cv_definition": CV_DEFINITION,
            "cv_design": {"folds": comparison.folds, "repeats": comparison.repeats,
                          "reference_time": comparison.reference_time},
            "calibration": calibration,
        },
        "sample_size": sample_size,
        "candidates": {kind: {"cv": comparison.table(kind)} for kind in comparison.kinds},
        "selection": {**selection.to_dict(), "in_words": SELECTION_IN_WORDS},
        "limitations": limitations,
    }
    if chosen.optimism is not None:
        card["validation"]["bootstrap"] = chosen.optimism.to_dict()
    for kind, candidate in candidates.items():
        card["candidates"][kind]["seconds"] = candidate.seconds
        if candidate.optimism is not None:
            card["candidates"][kind]["bootstrap"] = candidate.optimism.to_dict()
    if not selection.beats_null:
        limitations.insert(0, "The chosen model does NOT beat the Kaplan-Meier null model out of fold: it carries "
                              "no demonstrated prognostic signal and is not made champion.")
    if extras:
        card.update({k: v for k, v in extras.items() if k != "coefficient_table"})
    return json_safe(card)


def card_files(card: dict[str, Any]) -> dict[str, str]:
    """The card as the two files logged beside the model."""
    return {"model_card.json": json.dumps(card, indent=2), "model_card.md": render_markdown(card)}
