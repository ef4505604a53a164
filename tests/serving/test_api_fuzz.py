"""Property-based tests of the API: schemathesis drives the REAL server from its own OpenAPI schema, and
hypothesis checks that the published request schema and the contract's validator agree value by value."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from test_api import PATIENT, serve_subprocess

from cnslrisk.model import CohortValidationError
from cnslrisk.serving.api.schemas import patient_model
from cnslrisk.serving.scoring import check_input


@pytest.fixture(scope="module")
def api_schema(registered, tmp_path_factory):
    log_path = tmp_path_factory.mktemp("fuzz") / "server.log"
    with serve_subprocess(registered, log_path) as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


# Bounded: at most 60 generated cases per operation (4 operations), each with a 10-second timeout; the
# whole module takes about 15 s here. Every response must be < 500 and every 4xx must name what is wrong.
@schema.parametrize()
@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.generate],
          suppress_health_check=list(HealthCheck))
def test_api_from_its_openapi_schema(case):
    response = case.call(timeout=10)
    assert response.status_code < 500, response.text
    if response.status_code == 405:  # a method the operation does not have: nothing field-related to name
        assert response.json()["detail"][0]["msg"] == "method not allowed"
    elif 400 <= response.status_code < 500:
        detail = response.json()["detail"]
        assert detail, "a 4xx without any detail"
        for item in detail:
            assert item["msg"].startswith(("field ", "body")), item
            named = [p for p in item["loc"] if p not in ("body", "query", "header")]
            assert item["msg"].startswith("body") or named, item


@pytest.fixture(scope="module")
def contract(registered):
    schema_ = registered.model.input_schema
    return registered.model, schema_, patient_model(schema_)


def _values(field):
    """Values of the field's own JSON type, dense around its bounds and levels."""
    if field.type == "boolean":
        return st.booleans()
    if field.type == "category":
        return st.sampled_from(field.levels) | st.text(max_size=12).filter(lambda s: s == s.strip())
    low = -1e3 if field.min is None else field.min
    high = 1e3 if field.max is None else field.max
    if field.type == "integer":
        return st.integers(int(low) - 3, int(high) + 3)
    edges = [low, high, math.nextafter(low, -math.inf), math.nextafter(high, math.inf), low - 1, high + 1]
    return st.sampled_from(edges) | st.floats(low - 50, high + 50, allow_nan=False, allow_infinity=False)


@st.composite
def one_changed(draw, fields):
    field = draw(st.sampled_from(fields))
    return field.name, draw(_values(field))


def _pydantic_accepts(patient_cls, record) -> bool:
    try:
        patient_cls.model_validate(record)
    except ValidationError:
        return False
    return True


def _validator_accepts(model, record) -> bool:
    try:
        check_input(model, pd.DataFrame.from_records([record]), redact=True)
    except CohortValidationError:
        return False
    return True


def test_request_schema_and_validator_agree(contract):
    model, schema_, patient_cls = contract
    fields = [f for f in schema_.fields if f.name in model.feature_columns]

    @given(one_changed(fields))
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    def agree(change):
        name, value = change
        record = {**PATIENT, name: value}
        assert _pydantic_accepts(patient_cls, record) == _validator_accepts(model, record), change

    agree()


def test_validator_parses_numbers_exactly(contract):
    # pandas.to_numeric on text rounds 100.00000000000001 to 100.0; the validator must not read JSON numbers as text
    model, _, patient_cls = contract
    record = {**PATIENT, "age": math.nextafter(100.0, math.inf)}  # one ulp above the dictionary's maximum
    assert not _pydantic_accepts(patient_cls, record)
    assert not _validator_accepts(model, record)
