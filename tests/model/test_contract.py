"""The cohort contract: every kind of problem is found, named and located, all at once."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnslrisk.model import CohortValidationError, Schema, check_cohort, data_dictionary, read_cohort, write_cohort

INTERFACE_FIELDS = [
    "patient_id", "age", "sex", "ecog", "cnsl_type", "prior_lines", "car_product", "bridging", "steroids",
    "ldh_elevated", "pce", "lmd", "best_response", "pfs1_months", "pfs1_event", "pattern", "bcell_aplasia",
    "pfs2_months", "pfs2_event", "salvage",
]


def valid_rows() -> pd.DataFrame:
    rows = [
        ["P1", "65", "female", "1", "primary", "2", "axi-cel", "none", "true", "false", "true", "false", "CR",
         "5.2", "true", "distant", "true", "1.0", "true", "checkpoint_inhibitor"],
        ["P2", "54", "male", "0", "secondary", "1", "tisa-cel", "systemic", "false", "true", "false", "true", "PD",
         "1.1", "1", "local", "", "", "", ""],
        ["P3", "71", "female", "2", "primary", "3", "liso-cel", "combined", "no", "yes", "false", "false", "PR",
         "30", "false", "none", "", "", "", ""],
    ]
    return pd.DataFrame(rows, columns=INTERFACE_FIELDS)


def test_dictionary_has_exactly_the_interface_fields():
    schema = data_dictionary()
    assert schema.names == INTERFACE_FIELDS
    for field in schema.fields:
        assert field.description and field.role and field.type in {"string", "number", "integer", "category", "boolean"}


def test_valid_cohort_is_typed():
    df = check_cohort(valid_rows())
    assert df["pfs1_event"].dtype == bool and df["pfs1_event"].tolist() == [True, True, False]
    assert df["age"].dtype == np.float64 and df["ecog"].dtype == np.int64
    assert df["steroids"].tolist() == [True, False, False]
    assert str(df["bcell_aplasia"].dtype) == "boolean" and df["bcell_aplasia"].isna().sum() == 2


@pytest.mark.parametrize(
    ("column", "row", "value", "message"),
    [
        ("age", 1, "-5", r"row 2 \(patient P2\), field age: '-5' is below the minimum 18"),
        ("age", 1, "old", r"field age: 'old' is not a number >= 18 and <= 100 \(years\)"),
        ("ecog", 0, "7", r"row 1 \(patient P1\), field ecog: '7' is above the maximum 4"),
        ("prior_lines", 0, "1.5", r"field prior_lines: '1.5' is not a whole number"),
        ("sex", 2, "unknown", r"row 3 \(patient P3\), field sex: 'unknown' is not one of \{female, male\}"),
        ("lmd", 1, "maybe", r"field lmd: 'maybe' is not one of \{true, false\}"),
        ("pfs1_months", 2, "-3", r"field pfs1_months: '-3' must be greater than 0"),
        ("pfs1_months", 2, "0", r"field pfs1_months: '0' must be greater than 0"),
        ("pce", 0, "", r"row 1 \(patient P1\), field pce: missing value; expected one of \{true, false\}"),
        ("pfs1_months", 0, "", r"field pfs1_months: missing value: event without time"),
        ("patient_id", 2, "P1", r"row 3 \(patient P1\), field patient_id: 'P1' is a duplicate identifier"),
        ("pattern", 2, "local", r"field pattern: 'local' is given for a censored patient"),
        ("pattern", 1, "none", r"field pattern: 'none' means no event, but pfs1_event is true"),
        ("pfs2_months", 2, "3", r"row 3 \(patient P3\), field pfs2_months: '3' is given for a patient without CNS"),
    ],
)
def test_each_problem_is_named_and_located(column, row, value, message):
    df = valid_rows()
    df.loc[row, column] = value
    with pytest.raises(CohortValidationError, match=message) as info:
        check_cohort(df)
    assert len(info.value.problems) == 1


def test_all_problems_are_reported_at_once():
    df = valid_rows()
    df.loc[0, "age"] = "5"
    df.loc[1, "sex"] = "x"
    df.loc[2, "pfs1_months"] = "-1"
    df["colour"] = "red"
    df = df.drop(columns=["lmd"])
    with pytest.raises(CohortValidationError, match=r"^5 problem\(s\) in cohort") as info:
        check_cohort(df)
    fields = sorted(p.field for p in info.value.problems)
    assert fields == ["age", "colour", "lmd", "pfs1_months", "sex"]


def test_unknown_column_and_missing_column_messages():
    df = valid_rows().rename(columns={"lmd": "leptomeningeal"})
    with pytest.raises(CohortValidationError) as info:
        check_cohort(df)
    messages = [p.message() for p in info.value.problems]
    assert any(m.startswith("field leptomeningeal: unknown column; expected one of {patient_id, age") for m in messages)
    assert "field lmd: required column is missing; expected one of {true, false}" in messages


def test_empty_cohort_is_an_error():
    with pytest.raises(CohortValidationError, match="the cohort is empty"):
        check_cohort(valid_rows().iloc[:0])


def test_redacted_messages_leave_out_values_and_ids():
    df = valid_rows()
    df.loc[1, "age"] = "-5"
    with pytest.raises(CohortValidationError) as info:
        check_cohort(df)
    text = info.value.problems[0].message(redact=True)
    assert text == "row 2, field age: is below the minimum 18"
    assert "P2" not in text and "-5" not in text


def test_scoring_does_not_require_outcomes():
    df = valid_rows().drop(columns=["pfs1_months", "pfs1_event", "pattern", "best_response"])
    assert len(check_cohort(df, require_outcome=False)) == 3
    with pytest.raises(CohortValidationError, match="field pfs1_event: required column is missing"):
        check_cohort(df)


def test_config_schema_maps_other_names_and_kinds():
    df = pd.DataFrame({"id": ["a", "b"], "days": ["10", "400"], "status": ["1", "0"], "karno": ["60", "x"],
                       "celltype": ["squamous", "large"], "prior": ["true", "false"]})
    schema = Schema.for_columns(binary=["prior"], categorical=["celltype"], numeric=["karno"], id="id",
                                time="days", event="status", time_unit="days")
    with pytest.raises(CohortValidationError, match=r"row 2 \(patient b\), field karno: 'x' is not a number"):
        schema.check(df)
    df.loc[1, "karno"] = "70"
    out = schema.check(df)
    assert out["status"].tolist() == [True, False] and out["karno"].tolist() == [60.0, 70.0]


def test_parquet_typed_values_are_checked_like_text(tmp_path):
    df = check_cohort(valid_rows())
    path = write_cohort(df, tmp_path / "c.parquet", provenance={"source": "synthetic"})
    raw = read_cohort(path)
    assert raw.attrs["provenance"]["source"] == "synthetic"
    again = check_cohort(raw)
    pd.testing.assert_frame_equal(again, df)
    raw.loc[0, "age"] = 150.0
    with pytest.raises(CohortValidationError, match="field age: '150' is above the maximum 100"):
        check_cohort(raw)


def test_csv_round_trip_keeps_provenance_and_writes_true_false(tmp_path):
    df = check_cohort(valid_rows())
    path = write_cohort(df, tmp_path / "c.csv", provenance={"source": "synthetic", "seed": 3})
    text = path.read_text()
    first, header = text.splitlines()[:2]
    assert first.startswith("# cnslrisk-provenance: ") and json.loads(first.split(": ", 1)[1])["seed"] == 3
    assert header.startswith("patient_id,age")
    assert ",true," in text and ",True," not in text
    raw = read_cohort(path)
    assert raw.attrs["provenance"] == {"source": "synthetic", "seed": 3}
    assert len(raw.attrs["sha256"]) == 64
    pd.testing.assert_frame_equal(check_cohort(raw), df, check_dtype=False)


def test_unmarked_file_counts_as_real(tmp_path):
    path = tmp_path / "c.csv"
    valid_rows().to_csv(path, index=False)
    assert read_cohort(path).attrs["provenance"]["source"] == "real"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", "", "the file is empty"),
        ("c.txt", "a,b\n1,2\n", r"extension '.txt' is not supported; expected .csv or .parquet"),
        ("broken.parquet", "not parquet", "cannot be read"),
    ],
)
def test_unreadable_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(CohortValidationError, match=message):
        read_cohort(path)


def test_missing_file(tmp_path):
    with pytest.raises(CohortValidationError, match="no such file"):
        read_cohort(tmp_path / "absent.csv")


def test_numeric_codes_from_typed_columns():
    """Parquet and JSON give typed numbers: cause codes 0/1/2, 0/1 booleans and numeric ids still check right."""
    df = pd.DataFrame({"id": [101, 102, 103], "t": [3.0, 5.5, 7.0], "cause": [0, 1, 2], "flag": [1, 0, 1]})
    schema = Schema.for_columns(binary=["flag"], id="id", time="t", cause="cause", censored="0")
    out = schema.check(df)
    assert out["cause"].tolist() == ["0", "1", "2"] and out["flag"].tolist() == [True, False, True]
    assert out["id"].tolist() == ["101", "102", "103"]
    with pytest.raises(CohortValidationError, match=r"row 2 \(patient 102\), field flag: '7' is not one of"):
        schema.check(df.assign(flag=[1, 7, 0]))


# values a JSON body or a CSV cell may carry for any field: valid ones, spellings, wrong types, gaps
_ANY_VALUE = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 130), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["true", " false ", "yes", "0", "1.0", "NA", "", "maybe", "primary", "secondary", " axi-cel",
                     "CR", "local", "62", "4.5", "-1", "1e3", "P-001", "P-002"]),
)
_FIELDS = ["patient_id", "age", "sex", "ecog", "cnsl_type", "prior_lines", "steroids", "pce", "lmd", "pfs1_months",
           "pfs1_event", "pattern", "unknown_column"]


_BASE = {"patient_id": "P-001", "age": 62, "sex": "female", "ecog": 1, "cnsl_type": "primary", "prior_lines": 2,
         "car_product": "axi-cel", "bridging": "none", "steroids": True, "ldh_elevated": False, "pce": True,
         "lmd": False, "best_response": "CR", "pfs1_months": 4.5, "pfs1_event": True, "pattern": "distant"}


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.dictionaries(st.sampled_from(_FIELDS), _ANY_VALUE, min_size=1), st.booleans()),
                min_size=1, max_size=4),
       st.booleans())
def test_records_and_dataframe_are_checked_alike(changes, require_outcome):
    """check_records(records) raises the same problems, or returns the same values, as check(DataFrame(records)).

    Each record is a valid row with some fields replaced, or (second flag) only the replaced fields.
    """
    schema = data_dictionary()
    records = [{**({} if alone else _BASE), **change} for change, alone in changes]
    frame = pd.DataFrame.from_records(records)
    try:
        expected = schema.check(frame, require_outcome=require_outcome)
    except CohortValidationError as exc:
        with pytest.raises(CohortValidationError) as got:
            schema.check_records(records, require_outcome=require_outcome)
        assert [p.message() for p in got.value.problems] == [p.message() for p in exc.problems]
        return
    checked = schema.check_records(records, require_outcome=require_outcome)
    assert list(checked) == list(expected.columns)
    for name in expected.columns:
        pd.testing.assert_series_equal(pd.Series(checked[name], name=name), expected[name].reset_index(drop=True),
                                       check_dtype=name in schema.names)


_BOOLEAN_SPELLINGS = st.sampled_from([True, False, 1, 0, 1.0, "true", "False", " yes", "N", "1", "0.0"])
_VALID_CHANGES = st.fixed_dictionaries({}, optional={
    "age": st.one_of(st.integers(18, 100), st.floats(18, 100), st.sampled_from(["62", " 70.5 ", "1e2"])),
    "sex": st.sampled_from(["female", " male"]),
    "ecog": st.one_of(st.integers(0, 4), st.sampled_from([2.0, "3", " 1 "])),
    "cnsl_type": st.sampled_from(["primary", "secondary ", " primary"]),
    "prior_lines": st.one_of(st.integers(0, 20), st.sampled_from([4.0, "7"])),
    "steroids": _BOOLEAN_SPELLINGS, "pce": _BOOLEAN_SPELLINGS, "lmd": _BOOLEAN_SPELLINGS,
    "pfs1_months": st.one_of(st.floats(0.01, 240), st.integers(1, 240), st.sampled_from(["3.25", " 12 "])),
})


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(_VALID_CHANGES, min_size=1, max_size=4))
def test_valid_records_are_converted_like_a_dataframe(changes):
    """Valid records in every accepted spelling convert to the same values and dtypes both ways."""
    schema = data_dictionary()
    ids = ["P-0", " Q-1 ", 102, None]  # text, padded text, a JSON number, absent
    records = [{**_BASE, "patient_id": ids[i], **change} for i, change in enumerate(changes)]
    expected = schema.check(pd.DataFrame.from_records(records))
    checked = schema.check_records(records)
    assert list(checked) == list(expected.columns)
    for name in expected.columns:
        pd.testing.assert_series_equal(pd.Series(checked[name], name=name), expected[name].reset_index(drop=True))


@pytest.mark.parametrize("n", [3, 1000])  # below and above the size where text is normalised per distinct value
def test_text_columns_are_normalised_alike_at_any_size(n):
    frame = pd.DataFrame({"cnsl_type": np.resize([" primary", "secondary ", "NA", "primary"], n),
                          "pce": np.resize(["yes", "0", "TRUE", "n"], n)})
    schema = Schema.for_columns(binary=["pce"], categorical=["cnsl_type"])
    schema = replace(schema, fields=tuple(replace(f, required=False) for f in schema.fields))
    checked = schema.check(frame)
    assert checked["cnsl_type"].tolist() == list(np.resize(["primary", "secondary", None, "primary"], n))
    assert checked["pce"].tolist() == list(np.resize([True, False, True, False], n))
