"""Models registered by cnslrisk 0.1.0 keep loading and give the same scores.

``tests/data/legacy_model_0.1.0`` is a model logged by 0.1.0 (bundled example cohort, Cox, pattern and
post-response models) with the scores its pyfunc gave for the example cohort then. Its stored entry
script imports ``cnslrisk.serving.pyfunc``, the path 0.1.0 logged.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from pandas.testing import assert_frame_equal

from cnslrisk.model import read_cohort
from cnslrisk.registry import load_risk_model

DATA = Path(__file__).resolve().parents[1] / "data"
LEGACY = DATA / "legacy_model_0.1.0"
EXPECTED = DATA / "legacy_model_0.1.0_example_scores.parquet"
COHORT = Path(__file__).resolve().parents[2] / "data" / "example_cohort.csv"


def test_the_stored_entry_script_imports_the_0_1_0_path():
    assert "from cnslrisk.serving.pyfunc import CnslriskPyfunc" in (LEGACY / "pyfunc_entry.py").read_text()


def test_a_0_1_0_model_scores_as_it_did_through_mlflow_pyfunc():
    scored = mlflow.pyfunc.load_model(str(LEGACY)).predict(read_cohort(COHORT))
    assert_frame_equal(scored.reset_index(drop=True), pd.read_parquet(EXPECTED), check_exact=True)


def test_a_0_1_0_model_scores_as_it_did_through_the_loader():
    model, info = load_risk_model(str(LEGACY))
    scored = model.predict(model.input_schema.check(read_cohort(COHORT), require_outcome=False, allow_unknown=True))
    assert info == {"model_uri": str(LEGACY)}
    assert_frame_equal(scored.reset_index(drop=True), pd.read_parquet(EXPECTED), check_exact=True)
