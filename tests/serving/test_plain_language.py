"""Labels, rounding and the plain-language field (serving/labels.py, serving/plain_language.py) on real models:
the registered Cox model of the shared fixture and a Cox model fitted here with the declared imputation."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from pydantic import ValidationError

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import CohortValidationError
from cnslrisk.model.contract import data_dictionary, to_surv
from cnslrisk.model.pipeline import make_pipeline
from cnslrisk.model.predictor import RiskModel
from cnslrisk.serving.api.schemas import patient_model
from cnslrisk.serving.labels import band_text, cause_label, duration, field_label, level_label, percent, value_text
from cnslrisk.serving.plain_language import WIDE_BAND, PlainLanguage, per_hundred, survival_sentence
from cnslrisk.serving.scoring import score_records

PATIENT = {"patient_id": "P-1", "age": 61, "ecog": 1, "cnsl_type": "primary", "prior_lines": 2,
           "steroids": False, "ldh_elevated": True, "pce": True, "lmd": False}


@pytest.mark.parametrize(("p", "text"), [(0.4349, "43 %"), (0.4351, "44 %"), (0.004, "<1 %"), (0.005, "1 %"),
                                         (0.994, "99 %"), (0.996, ">99 %"), (None, "n/a"), (float("nan"), "n/a")])
def test_percent_is_whole(p, text):
    assert percent(p) == text


@pytest.mark.parametrize(("value", "unit", "text"), [
    (1.0, "months", "1 month"), (0.96, "months", "1 month"), (1.52, "months", "1.5 months"),
    (3.46, "months", "3.5 months"), (12.0, "months", "12 months"), (1.0, "days", "1 day"),
    (None, "months", "not reached")])
def test_duration_has_one_decimal_at_most_and_a_singular_for_one(value, unit, text):
    assert duration(value, unit) == text


def test_band_text():
    assert band_text(0.0886, 0.5437) == "9 % – 54 %" and band_text(None, None) == "n/a"


def test_every_dictionary_field_has_a_clinical_label():
    for spec in data_dictionary().fields:
        label = field_label(spec)
        assert label and "_" not in label and label != spec.name, spec.name
    pattern = data_dictionary()["pattern"]
    assert level_label(pattern, "local_and_distant") == "local and distant"
    assert cause_label("death") == "death without CNS progression"
    pce = data_dictionary()["pce"]
    assert value_text(pce, True) == "yes" and value_text(pce, False) == "no" and value_text(pce, None) == "unknown"
    assert value_text(data_dictionary()["age"], 71.54) == "71.5 years"
    assert value_text(data_dictionary()["ecog"], 2) == "2"  # the label names the unit (ECOG grade) already


def test_icon_array_counts_add_up_to_100_and_agree_with_the_percentage():
    rng = np.random.default_rng(7)
    for _ in range(2000):
        survival = rng.uniform()
        shares = rng.dirichlet(np.ones(rng.integers(1, 5)))
        incidences = {f"c{k}": (1 - survival) * s for k, s in enumerate(shares)}
        parts = per_hundred(survival, incidences)
        assert sum(p["count"] for p in parts) == 100
        assert parts[0]["count"] == math.floor(survival * 100 + 0.5)  # as the sentence and the table say
        rest = 100 - parts[0]["count"]
        for part in parts[1:]:  # largest remainders: each part within one patient of its exact share
            assert abs(part["count"] - incidences[part["outcome"]] / (1 - survival) * rest) < 1


def test_incoherent_pattern_figures_are_not_split():
    parts = per_hundred(0.43, {"local": 0.5, "distant": 0.3})  # adds up to 0.8, not 0.57
    assert [(p["outcome"], p["count"]) for p in parts] == [("free", 43), ("progressed", 57)]


def test_sentence_wording():
    assert survival_sentence(0.4311, "6 months") == (
        "Of 100 patients like this, about 43 would be alive and free of CNS progression at 6 months.")
    assert "fewer than 1 would" in survival_sentence(0.003, "12 months")
    assert "more than 99 would" in survival_sentence(0.999, "3 months")


def test_scored_patient_carries_the_plain_language(registered):
    model = registered.model
    row = score_records(model, [PATIENT])["predictions"][0]
    plain = row["plain_language"]
    assert plain["headline_horizon"] == model.horizons[len(model.horizons) // 2]
    for entry in plain["horizons"]:
        label = f"{entry['horizon']:g}"
        survival, lower, upper = (row[f"survival_{label}{s}"] for s in ("", "_lower", "_upper"))
        assert f"about {percent(survival).split()[0]} would be alive" in entry["sentence"]
        assert sum(p["count"] for p in entry["per_100"]) == 100
        assert entry["per_100"][0]["count"] == int(percent(survival).split()[0])
        assert (entry["wide_band"] is not None) == (upper - lower > WIDE_BAND)
        assert entry["time"] == duration(entry["horizon"], "months")
    assert plain["summary"] in [e["sentence"] for e in plain["horizons"]]
    assert plain["post_response"] is None  # no best response given
    assert plain["likely_pattern"].startswith(f"Most likely pattern, should CNS progression occur: "
                                              f"{cause_label(row['likely_pattern'])},")


def test_post_response_plain_language_states_its_condition(registered):
    model = registered.model
    row = score_records(model, [{**PATIENT, "best_response": "CR"}], curve=True)["predictions"][0]
    post = row["plain_language"]["post_response"]
    assert post["condition"].startswith(
        f"Holds only for a patient still alive and free of CNS progression {duration(model.landmark.time, 'months')} "
        "after infusion")
    for entry in post["horizons"]:
        assert "would still be alive and free of CNS progression" in entry["sentence"]
        assert sum(p["count"] for p in entry["per_100"]) == 100
    curve = row["post_response_curve"]  # drawn from the landmark: 100 % and no pattern yet
    assert curve["time"][0] == model.landmark.time and curve["survival"][0] == 1.0
    assert all(values[0] == 0.0 for values in curve["incidence"].values())
    for entry in post["horizons"]:  # the drawn curve passes through the tabulated figures
        at = max(i for i, t in enumerate(curve["time"]) if t <= entry["horizon"])
        assert curve["survival"][at] == pytest.approx(row[f"post_response_survival_{entry['horizon']:g}"], abs=1e-12)


def test_scope_names_what_the_pattern_panels_ignore(registered):
    model = registered.model
    card = model.metadata["card"]
    assert all(not s["ignores"] for s in PlainLanguage(model, model.horizons).scope)  # fixture: every covariate
    narrowed = {**card, "pattern_model": {**card["pattern_model"], "features": ["pce", "lmd"]}}
    words = PlainLanguage(dataclasses.replace(model, metadata={**model.metadata, "card": narrowed}), model.horizons)
    pattern = next(s for s in words.scope if s["panel"] == "relapse-pattern")
    schema = model.input_schema
    assert pattern["ignores"] == [c for c in model.feature_columns if c not in ("pce", "lmd")]
    ignored = [field_label(schema[c]) for c in pattern["ignores"]]
    assert pattern["text"] == (f"The relapse-pattern figures use only {field_label(schema['pce'])} and "
                               f"{field_label(schema['lmd'])}; they ignore {', '.join(ignored[:-1])} and "
                               f"{ignored[-1]}, whatever was entered for them.")


def test_every_kind_of_warning_is_reworded(registered, imputing_model):
    model = registered.model
    encoder = model.pipeline.named_steps["encode"]
    columns = {c: np.asarray([PATIENT[c]], dtype=object) for c in model.feature_columns}
    warnings = [
        encoder.applicability({**columns, "age": np.asarray([99.0])})[0],
        model.landmark.applicability({"best_response": np.asarray(["XX"], dtype=object)})[0],
        *imputing_model.applicability({"pce": np.asarray([None], dtype=object), "lmd": np.asarray([False]),
                                       "age": np.asarray([np.nan]),
                                       "cnsl_type": np.asarray(["secondary"], dtype=object)})[0].split("; "),
    ]
    assert len(warnings) == 5 and all(warnings)
    words = PlainLanguage(model, model.horizons)
    imputed = PlainLanguage(imputing_model, imputing_model.horizons)
    explained = [words.explain(w) for w in warnings[:2]] + [imputed.explain(w) for w in warnings[2:]]
    for raw, text in zip(warnings, explained, strict=True):
        assert text != raw and not text.startswith("field "), raw
    assert explained[0].startswith("Age: 99 is outside the range of most training patients")
    assert "figures below may be further off than their 95 % bands show" in explained[0]
    assert "no post-response prediction is given" in explained[1]
    assert any("unknown, so scored as “no”" in t for t in explained) and any("training median" in t for t in explained)
    assert any("“secondary” did not occur in the training cohort" in t for t in explained)


@pytest.fixture(scope="module")
def imputing_model():
    """A Cox model with the declared imputation, fitted on primary CNSL only (secondary is unseen)."""
    cohort = generate_cohort(300, seed=11)
    cohort = cohort[cohort["cnsl_type"] == "primary"].reset_index(drop=True)
    features = {"binary": ["pce", "lmd"], "categorical": ["cnsl_type"], "numeric": ["age"], "id": None}
    pipeline = make_pipeline("cox", binary=features["binary"], categorical=features["categorical"],
                             numeric=features["numeric"], impute="median")
    y = to_surv(cohort)
    pipeline.fit(cohort[["pce", "lmd", "cnsl_type", "age"]], y)
    events = np.unique(y["time"][y["event"]])
    return RiskModel(kind="cox", pipeline=pipeline, features=features, horizons=(3.0, 6.0, 12.0), time_unit="months",
                     time_grid=events, risk_cutpoints=(-0.2, 0.2),
                     training_km={"time": events.tolist(), "survival": np.linspace(1, 0.2, events.size).tolist()})


def test_unknown_is_scored_only_by_a_model_trained_to_impute(registered, imputing_model):
    unknown = {"pce": None, "lmd": False, "cnsl_type": "primary", "age": 60}
    row = score_records(imputing_model, [unknown])["predictions"][0]
    assert any(w.startswith("field pce: missing, imputed as") for w in row["warnings"])
    assert any("unknown, so scored as" in w for w in row["plain_language"]["warnings"])
    with pytest.raises(CohortValidationError, match="field cnsl_type: required column is missing"):
        score_records(imputing_model, [{k: v for k, v in unknown.items() if k != "cnsl_type"}])  # said explicitly
    with pytest.raises(CohortValidationError, match=r"field pce: missing value; expected one of \{true, false\}; "
                                                    r"this model was trained without imputation \(features.impute\)"):
        score_records(registered.model, [{**PATIENT, "pce": None}])
    # the API's request model lets null through to the validator (one wording for every entry point), not a gap
    patient = patient_model(registered.model.input_schema)
    assert patient.model_validate({**PATIENT, "pce": None}).pce is None
    with pytest.raises(ValidationError, match="pce"):
        patient.model_validate({k: v for k, v in PATIENT.items() if k != "pce"})


def test_the_api_documents_the_field():
    from cnslrisk.serving.api.schemas import PredictResponse

    described = PredictResponse.model_fields["predictions"].description
    assert "plain_language" in described and "Of 100 patients like this" in described
