"""The bundled 60-patient example cohort: published counts exactly, published effects within their CIs."""

from __future__ import annotations

import math
from importlib import resources

import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter

from cnslrisk.data.synthetic import EXAMPLE_CRITERIA, parameters_sha256, write_example_cohort
from cnslrisk.model import check_cohort, read_cohort

PACKAGED = resources.files("cnslrisk.data").joinpath("example_cohort.csv")


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    with resources.as_file(PACKAGED) as path:
        return read_cohort(path)


@pytest.fixture(scope="module")
def example(raw) -> pd.DataFrame:
    return check_cohort(raw)


def test_marked_synthetic_with_seed_criteria_and_current_parameters(raw):
    provenance = raw.attrs["provenance"]
    assert provenance["source"] == "synthetic" and provenance["generator"] == "cnslrisk.synth"
    assert provenance["example"] is True and provenance["n"] == 60 and isinstance(provenance["seed"], int)
    assert provenance["criteria"] == EXAMPLE_CRITERIA
    assert provenance["parameters_sha256"] == parameters_sha256()


def test_published_counts_exactly(example):
    assert len(example) == 60 and example["patient_id"].tolist() == [f"SYN-{i:03d}" for i in range(1, 61)]
    response = example["best_response"].value_counts()
    assert (response["CR"], response["PR"], response["SD"] + response["PD"]) == (27, 9, 24)
    assert example["pattern"].value_counts().to_dict() == {"none": 24, "local": 14, "local_and_distant": 10,
                                                           "distant": 12}
    assert int(example["pfs1_event"].sum()) == 36


def test_cox_hazard_ratios_inside_published_confidence_intervals(example):
    # lifelines (Efron ties) as an independent check of the generator's own Breslow fit
    fit = CoxPHFitter().fit(example[["pfs1_months", "pfs1_event", "pce", "lmd"]].astype(float),
                            "pfs1_months", "pfs1_event")
    for name, (hr, lower, upper) in (("pce", (2.75, 1.08, 6.68)), ("lmd", (2.72, 1.20, 6.25))):
        assert lower < fit.hazard_ratios_[name] < upper, name
        # near the point estimate: within about half the published SE of log HR
        assert abs(fit.params_[name] - math.log(hr)) <= EXAMPLE_CRITERIA["cox_max_abs_log_hr_deviation"][name]


def test_kaplan_meier_median_is_four_months(example):
    median = KaplanMeierFitter().fit(example["pfs1_months"], example["pfs1_event"]).median_survival_time_
    assert 3.5 <= median <= 4.5


def test_post_progression_fields_empty_without_progression(example):
    censored = example[example["pattern"] == "none"]
    assert not censored["pfs1_event"].any()
    assert censored[["bcell_aplasia", "pfs2_months", "pfs2_event", "salvage"]].isna().all().all()


def test_regenerates_byte_for_byte(tmp_path):
    written = write_example_cohort(tmp_path / "example_cohort.csv")
    assert written.read_bytes() == PACKAGED.read_bytes()
