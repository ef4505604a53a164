"""`[selection] recalibrate`: a chosen Cox model rescaled by its out-of-fold calibration slope, validated outside."""

from __future__ import annotations

import numpy as np
import pytest

from cnslrisk.data.synthetic import generate_cohort
from cnslrisk.model import read_cohort, write_cohort
from cnslrisk.model.predictor import CONSERVATIVE_BAND
from cnslrisk.registry import load_risk_model
from cnslrisk.training import train
from cnslrisk.training.card import render_markdown

# 80 patients and eight covariates (ten coefficients for about 50 events): an overfitted Cox model, whose
# out-of-fold calibration slope is well below 1. The bundled config with these keys changed; no pattern or
# post-response model (they do not take part)
EIGHT_COVARIATES = {"features.binary": ["pce", "lmd", "steroids", "ldh_elevated"],
                    "features.categorical": ["cnsl_type"], "features.numeric": ["age", "ecog", "prior_lines"]}
SMALL = {"n_jobs": 1, "validation.folds": 3, "validation.repeats": 2, "validation.bootstrap": 0,
         "models.rsf_trees": 20, "data.cause": None, "landmark.time": None, "landmark.response": None,
         "selection.recalibrate": True, **EIGHT_COVARIATES}


@pytest.fixture
def cohort(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path = tmp_path / "cohort.csv"
    write_cohort(generate_cohort(80, seed=4), path, provenance={"source": "synthetic"})
    return path


def _train(cohort, fit):
    return train(overrides={**SMALL, "data.path": str(cohort), "models.fit": fit,
                            "mlflow.tracking_uri": f"sqlite:///{cohort.parent / fit[0]}.db"})


def test_cox_is_rescaled_by_its_out_of_fold_slope_and_validated_in_the_outer_loop(cohort):
    result = _train(cohort, ["cox"])
    card = result.card
    section = card["selection"]["recalibration"]
    slope = card["candidates"]["cox"]["cv"]["calibration_slope"]["mean"]
    assert section["applied"] is True and section["slope"] == slope
    assert "band_check" not in card["model"]  # the Cox model's band is the delta method
    assert slope < 0.9  # the setting is overfitted, so the test exercises a real rescaling

    model, _ = load_risk_model(f"models:/{result.name}/{result.version}")
    fitted = {term: c["coef"] for term, c in card["coefficients"].items()}
    rescaled = dict(zip(model.pipeline[:-1].get_feature_names_out(), model.pipeline[-1].coef_, strict=True))
    assert set(rescaled) == set(fitted)
    for term, coef in rescaled.items():
        assert coef == pytest.approx(slope * fitted[term], rel=1e-12)
        assert section["coefficients"][term] == pytest.approx(coef, rel=1e-12)

    nested = card["selection"]["nested"]
    before = nested["without_recalibration"]
    assert nested["recalibrated_folds"]["count"] == 10  # every outer fold chose and rescaled its Cox model
    assert all(0 < s for s in nested["recalibrated_folds"]["slopes"])
    # a positive factor keeps every ranking: the held-out C cannot move, the calibration can
    assert nested["c_index"]["mean"] == pytest.approx(before["c_index"]["mean"], abs=1e-12)
    assert abs(nested["calibration_slope"]["mean"] - 1) < abs(before["calibration_slope"]["mean"] - 1)
    markdown = render_markdown(card)
    assert f"applied: coefficients x {slope:.3f}" in markdown and "Without the recalibration" in markdown


def test_a_forest_is_not_rescaled_and_the_card_says_why(cohort):
    result = _train(cohort, ["rsf"])
    card = result.card
    section = card["selection"]["recalibration"]
    assert section["applied"] is False and "coefficients" not in section
    assert section["reason"].startswith("not applied: a rsf model")
    assert card["selection"]["nested"]["recalibrated_folds"]["count"] == 0
    assert np.isfinite(card["selection"]["nested"]["without_recalibration"]["ibs"]["mean"])
    assert section["reason"] in render_markdown(card)
    # 20 trees: the card counts the training patients whose band needs the uncorrected variance, as scoring warns them
    check = card["model"]["band_check"]
    model, _ = load_risk_model(f"models:/{result.name}/{result.version}")
    checked, _ = model.check_frame(read_cohort(cohort))
    warned = model.predict(checked)["warnings"].str.contains(CONSERVATIVE_BAND, regex=False)
    assert check["conservative_share"] == pytest.approx(warned.mean(), abs=1e-12) and check["conservative_share"] > 0
    assert check["advice"] in card["limitations"]
