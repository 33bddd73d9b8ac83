"""The one place where OCPP 2.0.1 and OCPP 2.1 payloads are mapped onto each other.

Rules of this module:

- The station builds every payload in one *station form*: the OCPP 2.1 shape, which is a
  superset of 2.0.1 for every message the station sends (same names, more fields, more
  enum values). ``to_version`` turns a station-form payload into the form of the version
  the connection speaks; for 2.1 that is the payload itself.
- Down to 2.0.1 the mapping is driven by the official 2.0.1 JSON schema of the message,
  walked along with the payload:

  * a property the 2.0.1 object does not have moves, under its 2.1 name, into that
    object's ``customData`` with ``vendorId`` = ``V2X_VENDOR_ID`` (every 2.0.1 object
    type has ``customData``), so nothing the EV said is lost and a CSMS maps it one to one;
  * an enum value 2.0.1 does not know becomes the value of ``ENUM_DOWN`` (``DC_BPT`` ->
    ``DC``); the 2.1 value is kept in ``customData`` under the property's name;
  * a number where 2.0.1 wants an integer is rounded down;
  * a field 2.0.1 requires and 2.1 does not (``ChargingSchedulePeriodType.limit``) is
    filled by ``REQUIRED_DOWN`` (the 2.0.1 convention: a negative limit is discharge).

- ``lift`` is the inverse for what a 2.0.1 CSMS sends: our vendor's ``customData``
  entries that are properties of the 2.1 object move back into the object, so a 2.0.1
  CSMS can set ``dischargeLimit`` / ``setpoint`` / ``operationMode`` the same way.
- Pure functions over JSON values; schemas are read once from the pinned ``ocpp``
  package through ``_protocol`` (never copied). ``VersionMismatch`` is raised for a
  payload that cannot be expressed in the target version (a ``Dynamic`` profile on 2.0.1).
"""

from __future__ import annotations

import copy
import json
import math
from functools import lru_cache
from importlib import resources
from typing import Any, Callable

from pnc_bridge.ocpp._protocol import OcppVersion

__all__ = ["V2X_VENDOR_ID", "ENUM_DOWN", "VersionMismatch", "to_version", "lift", "schema"]

#: ``customData.vendorId`` of everything this station adds to OCPP 2.0.1 payloads
#: (documented in docs/ocpp.md, "V2X on OCPP 2.0.1").
V2X_VENDOR_ID = "org.pnc-bridge.v2x"

#: 2.1 enum values -> the nearest 2.0.1 value, per enum type. A value not listed here
#: and not known to 2.0.1 raises ``VersionMismatch``.
ENUM_DOWN: dict[str, dict[str, str]] = {
    "EnergyTransferModeEnumType": {
        # BPT / DER / ACDP are the same power path as their unidirectional base mode; the
        # direction is in customData. AC BPT is taken as three-phase (the usual case).
        "AC_BPT": "AC_three_phase",
        "AC_BPT_DER": "AC_three_phase",
        "AC_DER": "AC_three_phase",
        "DC_BPT": "DC",
        "DC_ACDP": "DC",
        "DC_ACDP_BPT": "DC",
    },
    "ReasonEnumType": {"ReqEnergyTransferRejected": "Other"},
}


class VersionMismatch(ValueError):
    """A payload uses something the target OCPP version cannot express."""


def _fill_period_limit(obj: dict[str, Any]) -> None:
    # 2.0.1 requires a limit; 2.1 leaves it out in setpoint modes. The 2.0.1 convention of
    # this station: a negative limit is a discharge period (docs/ocpp.md).
    if "limit" in obj:
        return
    for name in ("setpoint", "dischargeLimit"):
        if isinstance(obj.get(name), (int, float)):
            obj["limit"] = obj[name]
            return
    if obj.get("operationMode") == "Idle":
        obj["limit"] = 0.0
        return
    raise VersionMismatch("a schedule period without limit, setpoint or dischargeLimit has no OCPP 2.0.1 form")


#: 2.0.1 definition name -> fix-up for fields 2.0.1 requires and 2.1 does not (runs on the
#: station-form object before it is fitted to the 2.0.1 schema).
REQUIRED_DOWN: dict[str, Callable[[dict[str, Any]], None]] = {
    "ChargingSchedulePeriodType": _fill_period_limit,
}

_MODULE = {OcppVersion.v201: "v201", OcppVersion.v21: "v21"}


@lru_cache(maxsize=None)
def schema(version: OcppVersion, name: str) -> dict[str, Any]:
    """The official JSON schema ``name`` (``TransactionEventRequest``) of ``version``."""
    path = resources.files("ocpp").joinpath(f"{_MODULE[version]}/schemas/{name}.json")
    return json.loads(path.read_bytes().decode("utf-8-sig"))


def to_version(action: str, kind: str, payload: dict[str, Any], version: OcppVersion | str) -> dict[str, Any]:
    """``payload`` (station form) as ``version`` expects it; a new dict, the input is kept."""
    version = OcppVersion(version)
    if version is OcppVersion.v21:
        return payload
    root = schema(version, f"{action}{kind}")
    return _fit(payload, root, root.get("definitions", {}), None)


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    ref = node.get("$ref")
    if ref is None:
        return node, None
    name = ref.rsplit("/", 1)[-1]
    return defs[name], name


def _stash(obj: dict[str, Any], extra: dict[str, Any]) -> None:
    custom = obj.get("customData")
    if custom is None:
        obj["customData"] = {"vendorId": V2X_VENDOR_ID, **extra}
    elif custom.get("vendorId") == V2X_VENDOR_ID:
        custom.update({k: v for k, v in extra.items() if k not in custom})
    else:
        raise VersionMismatch(f"cannot keep {sorted(extra)}: customData of vendor {custom.get('vendorId')!r} is in the way")


def _fit(value: Any, node: dict[str, Any], defs: dict[str, Any], name: str | None) -> Any:
    """``value`` fitted to ``node``; the very same object when nothing had to change (the
    common case: most payloads are the same in both versions), a new one otherwise."""
    node, ref_name = _resolve(node, defs)
    name = ref_name or name
    kind = node.get("type")
    if kind == "array" and isinstance(value, list):
        items = [_fit(item, node.get("items", {}), defs, None) for item in value]
        return value if all(a is b for a, b in zip(items, value)) else items
    if kind == "object" and isinstance(value, dict):
        properties = node.get("properties", {})
        if not properties:
            return value  # CustomDataType and other open objects
        if name in REQUIRED_DOWN:
            value = dict(value)
            REQUIRED_DOWN[name](value)
        extra: dict[str, Any] = {}
        out: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            if key == "customData":
                out[key] = dict(item) if isinstance(item, dict) else item
            elif key in properties:
                prop, prop_ref = _resolve(properties[key], defs)
                enum = prop.get("enum")
                if enum is not None and isinstance(item, str) and item not in enum:
                    mapped = ENUM_DOWN.get(prop_ref or "", {}).get(item)
                    if mapped is None or mapped not in enum:
                        raise VersionMismatch(f"{key}={item!r} has no OCPP 2.0.1 equivalent")
                    extra[key] = item
                    item = mapped
                fitted = _fit(item, properties[key], defs, prop_ref)
                changed = changed or fitted is not value[key]
                out[key] = fitted
            else:
                extra[key] = copy.deepcopy(item)
        if extra:
            _stash(out, extra)
            return out
        return out if changed or name in REQUIRED_DOWN else value
    if kind == "integer" and isinstance(value, float):
        return math.floor(value)  # limits and amounts: never round a maximum up
    return value


def lift(payload: dict[str, Any], schema_root: dict[str, Any]) -> dict[str, Any]:
    """Move our vendor's ``customData`` entries back into the objects of a 2.0.1 payload,
    where ``schema_root`` (a 2.1 schema) has them as properties; a new dict."""
    return _lift(copy.deepcopy(payload), schema_root, schema_root.get("definitions", {}))


def _lift(value: Any, node: dict[str, Any], defs: dict[str, Any]) -> Any:
    node, _ = _resolve(node, defs)
    kind = node.get("type")
    if kind == "array" and isinstance(value, list):
        return [_lift(item, node.get("items", {}), defs) for item in value]
    if kind == "object" and isinstance(value, dict):
        properties = node.get("properties", {})
        if not properties:
            return value
        custom = value.get("customData")
        if isinstance(custom, dict) and custom.get("vendorId") == V2X_VENDOR_ID:
            for key in [k for k in custom if k != "vendorId" and k in properties and k != "customData"]:
                value[key] = custom.pop(key)  # the 2.1 value wins over the 2.0.1 stand-in
            if set(custom) == {"vendorId"}:
                del value["customData"]
        return {k: (_lift(v, properties[k], defs) if k in properties and k != "customData" else v) for k, v in value.items()}
    return value
