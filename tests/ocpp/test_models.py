"""Generated models against the official schemas: any schema-valid payload survives
model -> wire unchanged, and what the models put on the wire passes the schema."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft6Validator

from pnc_bridge.ocpp import _codegen, v21, v201
from pnc_bridge.ocpp._model import format_datetime, parse_datetime
from tests.ocpp.schema_strategies import payloads

_MODULES = {"v201": v201, "v21": v21}
_SCHEMAS = {
    (module, p.stem): json.loads(p.read_bytes().decode("utf-8-sig"))
    for module in _MODULES
    for p in sorted(_codegen.schema_dir(module).glob("*.json"))
}


@pytest.mark.parametrize("module,name", sorted(_SCHEMAS), ids=lambda v: v)
def test_schema_valid_payloads_round_trip(module: str, name: str) -> None:
    schema = _SCHEMAS[(module, name)]
    model = getattr(_MODULES[module], name)
    validator = Draft6Validator(schema)

    @settings(max_examples=15 if module == "v201" else 8, deadline=None, suppress_health_check=list(HealthCheck))
    @given(payloads(schema))
    def check(payload: dict) -> None:
        assert validator.is_valid(payload)
        wire = model.model_validate(payload).to_payload()
        assert wire == payload
        validator.validate(wire)

    check()


@given(st.datetimes(timezones=st.just(timezone.utc)))
def test_datetimes_go_out_as_rfc3339_utc_with_at_most_milliseconds(value: datetime) -> None:
    text = format_datetime(value)
    assert text.endswith("Z")
    fraction = text[19:-1]
    assert fraction == "" or (fraction.startswith(".") and len(fraction) == 4)
    back = parse_datetime(text)
    assert abs(back - value) < timedelta(milliseconds=1)


def test_datetime_without_offset_is_taken_as_utc() -> None:
    assert parse_datetime("2024-05-01T10:00:00") == datetime(2024, 5, 1, 10, tzinfo=timezone.utc)
    assert format_datetime(parse_datetime("2024-05-01T12:00:00+02:00")) == "2024-05-01T10:00:00Z"


def test_unknown_properties_are_refused_except_in_custom_data() -> None:
    with pytest.raises(ValueError):
        v201.HeartbeatRequest.model_validate({"foo": 1})
    request = v201.HeartbeatRequest.model_validate({"customData": {"vendorId": "com.example", "meter": 5}})
    assert request.to_payload() == {"customData": {"vendorId": "com.example", "meter": 5}}
