"""Hypothesis strategies that draw payloads valid under an official OCPP JSON schema.

Covers the schema features the OCPP schemas use: objects with required/optional
properties, arrays with min/maxItems, strings with maxLength and date-time, integers
and numbers with bounds, booleans, enums and local $refs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import strategies as st

_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_DATES = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31), timezones=st.just(dt.timezone.utc)
).map(lambda d: d.replace(microsecond=(d.microsecond // 1000) * 1000))


def _fmt(d: dt.datetime) -> str:
    text = d.strftime("%Y-%m-%dT%H:%M:%S")
    if d.microsecond:
        text += f".{d.microsecond // 1000:03d}"
    return text + "Z"


def payloads(schema: dict[str, Any], node: dict[str, Any] | None = None, depth: int = 0) -> st.SearchStrategy[Any]:
    node = schema if node is None else node
    if "$ref" in node:
        name = node["$ref"].split("/")[-1]
        return payloads(schema, schema["definitions"][name], depth + 1)
    if "enum" in node:
        return st.sampled_from(node["enum"])
    kind = node.get("type")
    if kind is None:
        return st.one_of(st.integers(-5, 5), _TEXT)  # OCPP-J 4.1.5: no null for absent data
    if kind == "string":
        if node.get("format") == "date-time":
            return _DATES.map(_fmt)
        return st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=min(node.get("maxLength", 20), 20))
    if kind == "integer":
        return st.integers(int(node.get("minimum", -1000)), int(node.get("maximum", 100_000)))
    if kind == "number":
        low = node.get("minimum", -1e6)
        high = node.get("maximum", 1e6)
        return st.floats(low, high, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 1))
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        low = node.get("minItems", 0)
        high = node.get("maxItems", low + 2)
        return st.lists(payloads(schema, node["items"], depth + 1), min_size=low, max_size=min(high, low + 2))
    if kind == "object":
        properties = node.get("properties", {})
        required = set(node.get("required", []))
        fixed = {k: payloads(schema, v, depth + 1) for k, v in properties.items() if k in required}
        optional = {
            k: payloads(schema, v, depth + 1)
            for k, v in properties.items()
            if k not in required and k != "customData" and depth < 4
        }
        return st.fixed_dictionaries(fixed, optional=optional)
    raise ValueError(f"unsupported schema node {node}")
