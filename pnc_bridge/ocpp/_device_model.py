"""The OCPP 2.0.1 device model: components, variables, GetVariables / SetVariables / reports.

Rules of this module:

- The set of variables is data (``VariableSpec`` rows, built in ``_variables.py``); this
  module only applies the rules of B05 (SetVariables), B06 (GetVariables), B07/B08
  (reports) to that data.
- Values are strings, as on the wire; typed getters convert. Written values of
  persistent variables are committed to the store before SetVariables answers Accepted
  ("All variables that are writable SHALL have ... persistence = true", part 2 2.).
- Configured defaults seed the model: a value the CSMS wrote is kept across restarts,
  unless the configured default itself changed since it was last seeded (then the local
  operator's new value wins, the way a technician's change on site should).
- Side effects of a change (reconnect after a new password, a new heartbeat interval)
  are the station's business: it registers a ``guard`` (may refuse a value) and listens
  to ``on_change``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Iterator

from pnc_bridge.ocpp._store import Store

__all__ = ["VariableKey", "VariableSpec", "DeviceModel", "SetOutcome", "GetOutcome", "PASSWORD_STRING"]

#: passwordString: a-z, A-Z, 0-9 and * - _ = : + | @ . (part 2, primitive datatypes).
PASSWORD_STRING = re.compile(r"^[A-Za-z0-9*\-_=:+|@.]*$")

_TRUE_FALSE = {"true": "true", "false": "false"}


@dataclass(frozen=True, slots=True, order=True)
class VariableKey:
    """Component (+instance, evse, connector) and Variable (+instance)."""

    component: str
    variable: str
    instance: str | None = None
    evse: int | None = None
    connector: int | None = None
    component_instance: str | None = None

    @property
    def id(self) -> str:
        """Stable text form, used as the database key and in logs."""
        c = self.component
        if self.component_instance:
            c += f"[{self.component_instance}]"
        if self.evse is not None:
            c += f"@{self.evse}" + (f".{self.connector}" if self.connector is not None else "")
        v = self.variable + (f"[{self.instance}]" if self.instance else "")
        return f"{c}/{v}"

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class VariableSpec:
    """One variable of the device model and its characteristics (part 2, VariableCharacteristicsType)."""

    key: VariableKey
    data_type: str  # DataEnumType: string, decimal, integer, dateTime, boolean, OptionList, SequenceList, MemberList, passwordString
    mutability: str = "ReadOnly"  # MutabilityEnumType: ReadOnly, WriteOnly, ReadWrite
    default: str | None = None
    unit: str | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    values_list: tuple[str, ...] | None = None
    #: Setting it answers RebootRequired: it takes effect after the next reset.
    reboot_required: bool = False
    #: A live value computed on each read (CertificateEntries, AvailabilityState, DateTime).
    dynamic: Callable[[], str] | None = field(default=None, compare=False)

    @property
    def writable(self) -> bool:
        return self.mutability in ("ReadWrite", "WriteOnly")

    @property
    def readable(self) -> bool:
        return self.mutability in ("ReadWrite", "ReadOnly")


@dataclass(frozen=True, slots=True)
class SetOutcome:
    """Result of one SetVariableData: SetVariableStatusEnumType value and reason code."""

    status: str
    reason: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class GetOutcome:
    """Result of one GetVariableData: GetVariableStatusEnumType value, value, reason."""

    status: str
    value: str | None = None
    reason: str | None = None


#: Guard: gets the new value, returns None to allow or a SetOutcome to refuse/override.
Guard = Callable[[str], "SetOutcome | None"]


class DeviceModel:
    """The variables of one station; build with ``DeviceModel(specs, store)``."""

    def __init__(self, specs: Iterable[VariableSpec], store: Store | None = None, *, value_size: int = 1000) -> None:
        self._specs: dict[VariableKey, VariableSpec] = {}
        for spec in specs:
            if spec.key in self._specs:
                raise ValueError(f"variable {spec.key} defined twice")
            self._specs[spec.key] = spec
        self._values: dict[VariableKey, str | None] = {k: s.default for k, s in self._specs.items()}
        self._store = store
        self._guards: dict[VariableKey, Guard] = {}
        self._listeners: list[Callable[[VariableKey, str], None]] = []
        self.value_size = value_size
        if store is not None:
            self._load()

    # ------------------------------------------------------------------ persistence
    def _load(self) -> None:
        assert self._store is not None
        stored = dict(self._store.query("SELECT key, value FROM variables"))
        seeds: dict[str, str | None] = self._store.get_json("device_model_seeds", {})
        new_seeds: dict[str, str | None] = {}
        for key, spec in self._specs.items():
            if spec.dynamic is not None:
                continue
            new_seeds[key.id] = spec.default
            if key.id in stored and seeds.get(key.id, spec.default) == spec.default:
                self._values[key] = stored[key.id]
            elif key.id in stored:
                # The configured default changed since it was seeded: the new default wins.
                self._store.execute("DELETE FROM variables WHERE key=?", (key.id,))
        if new_seeds != seeds:
            self._store.set_json("device_model_seeds", new_seeds)

    def _persist(self, key: VariableKey, value: str) -> None:
        if self._store is not None:
            self._store.execute(
                "INSERT INTO variables (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (key.id, value),
            )

    # ------------------------------------------------------------------ hooks
    def guard(self, key: VariableKey, check: Guard) -> None:
        """Register a check that runs before a SetVariables value is accepted."""
        self._guards[key] = check

    def on_change(self, listener: Callable[[VariableKey, str], None]) -> None:
        self._listeners.append(listener)

    # ------------------------------------------------------------------ local access
    def __contains__(self, key: object) -> bool:
        return key in self._specs

    def spec(self, key: VariableKey) -> VariableSpec:
        return self._specs[key]

    def specs(self) -> Iterator[VariableSpec]:
        return iter(self._specs.values())

    def get(self, key: VariableKey) -> str | None:
        spec = self._specs[key]
        if spec.dynamic is not None:
            return spec.dynamic()
        return self._values.get(key)

    def get_int(self, key: VariableKey) -> int:
        return int(self._require(key))

    def get_float(self, key: VariableKey) -> float:
        return float(self._require(key))

    def get_bool(self, key: VariableKey) -> bool:
        return self._require(key).lower() == "true"

    def get_list(self, key: VariableKey) -> list[str]:
        value = self.get(key) or ""
        return [item.strip() for item in value.split(",") if item.strip()]

    def _require(self, key: VariableKey) -> str:
        value = self.get(key)
        if value is None or value == "":
            raise LookupError(f"{key} has no value")
        return value

    def set_local(self, key: VariableKey, value: str, *, notify: bool = True) -> None:
        """Set a value from the station itself (not from the CSMS); no checks, persisted."""
        self._values[key] = value
        self._persist(key, value)
        if notify:
            for listener in self._listeners:
                listener(key, value)

    # ------------------------------------------------------------------ lookup (B05/B06 rules)
    def _find(
        self, component: str, component_instance: str | None, evse: int | None, connector: int | None,
        variable: str, instance: str | None,
    ) -> VariableKey | str:
        """The key, or "UnknownComponent" / "UnknownVariable"."""
        component_instance = component_instance or None
        instance = instance or None
        component_known = False
        for key in self._specs:
            if (
                key.component == component
                and key.component_instance == component_instance
                and key.evse == evse
                and key.connector == connector
            ):
                component_known = True
                if key.variable == variable and key.instance == instance:
                    return key
        return "UnknownVariable" if component_known else "UnknownComponent"

    def get_variable(
        self, component: str, component_instance: str | None, evse: int | None, connector: int | None,
        variable: str, instance: str | None, attribute_type: str = "Actual",
    ) -> GetOutcome:
        found = self._find(component, component_instance, evse, connector, variable, instance)
        if isinstance(found, str):
            return GetOutcome(found)  # B06.FR.06/07/15
        spec = self._specs[found]
        if attribute_type not in self.attribute_types(spec):
            return GetOutcome("NotSupportedAttributeType")  # B06.FR.08
        if not spec.readable:
            return GetOutcome("Rejected", reason="WriteOnly")  # B06.FR.09
        value = self.get(found)
        return GetOutcome("Accepted", "" if value is None else value[: self.value_size])  # B06.FR.10/13

    def attribute_types(self, spec: VariableSpec) -> tuple[str, ...]:
        """Supported AttributeEnumType values: only Actual. Limits are reported as
        VariableCharacteristics (minLimit/maxLimit), not as MinSet/MaxSet attributes."""
        return ("Actual",)

    @staticmethod
    def _limit_text(limit: float | None) -> str:
        if limit is None:
            return ""
        return str(int(limit)) if float(limit).is_integer() else str(limit)

    def set_variable(
        self, component: str, component_instance: str | None, evse: int | None, connector: int | None,
        variable: str, instance: str | None, value: str, attribute_type: str = "Actual",
    ) -> SetOutcome:
        found = self._find(component, component_instance, evse, connector, variable, instance)
        if isinstance(found, str):
            return SetOutcome(found)  # B05.FR.04/05
        spec = self._specs[found]
        if attribute_type != "Actual":
            return SetOutcome("NotSupportedAttributeType")  # B05.FR.06: only Actual is supported
        if not spec.writable:
            return SetOutcome("Rejected", "ReadOnly")  # B05.FR.09
        problem = self.check_value(spec, value)
        if problem is not None:
            return problem  # B05.FR.07/08
        value = _TRUE_FALSE.get(value.lower(), value) if spec.data_type == "boolean" else value
        guard = self._guards.get(found)
        if guard is not None:
            verdict = guard(value)
            if verdict is not None and verdict.status != "Accepted" and verdict.status != "RebootRequired":
                return verdict
            if verdict is not None and verdict.status == "RebootRequired":
                self.set_local(found, value)
                return verdict
        self.set_local(found, value)  # B05.FR.10
        return SetOutcome("RebootRequired") if spec.reboot_required else SetOutcome("Accepted")

    def check_value(self, spec: VariableSpec, value: str) -> SetOutcome | None:
        """None if ``value`` is a valid value for ``spec``, else the Rejected outcome."""
        if len(value) > self.value_size:
            return SetOutcome("Rejected", "TooLargeElement", f"longer than ValueSize {self.value_size}")
        kind = spec.data_type
        if kind == "integer" or kind == "decimal":
            try:
                number = int(value) if kind == "integer" else float(value)
            except ValueError:
                return SetOutcome("Rejected", "InvalidValue", f"not an {kind}")
            if spec.min_limit is not None and number < spec.min_limit:
                return SetOutcome("Rejected", "ValueTooLow", f"minimum is {self._limit_text(spec.min_limit)}")
            if spec.max_limit is not None and number > spec.max_limit:
                return SetOutcome("Rejected", "ValueTooHigh", f"maximum is {self._limit_text(spec.max_limit)}")
            return None
        if kind == "boolean":
            return None if value.lower() in _TRUE_FALSE else SetOutcome("Rejected", "InvalidValue", "not true/false")
        if kind == "dateTime":
            try:
                datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return SetOutcome("Rejected", "InvalidValue", "not an RFC 3339 date-time")
            return None
        if kind in ("OptionList", "MemberList", "SequenceList"):
            items = [v.strip() for v in value.split(",")] if value else []
            if kind == "OptionList" and len(items) != 1:
                return SetOutcome("Rejected", "InvalidValue", "exactly one value")
            if len(set(items)) != len(items):
                return SetOutcome("Rejected", "InvalidValue", "duplicate values")
            allowed = spec.values_list or ()
            unknown = [v for v in items if v not in allowed]
            if unknown:
                return SetOutcome("Rejected", "InvalidValue", f"not in valuesList: {','.join(unknown)}"[:400])
            if spec.max_limit is not None and len(value) > spec.max_limit:
                return SetOutcome("Rejected", "ValueTooHigh", "list too long")
            return None
        if kind == "passwordString":
            low = int(spec.min_limit or 0)
            high = int(spec.max_limit or 1000)
            if not (low <= len(value) <= high) or not PASSWORD_STRING.match(value):
                return SetOutcome(
                    "Rejected", "InvalidValue", f"must be {low}-{high} characters of a-z A-Z 0-9 *-_=:+|@."
                )
            return None
        # string
        if spec.max_limit is not None and len(value) > spec.max_limit:
            return SetOutcome("Rejected", "ValueTooHigh", f"at most {int(spec.max_limit)} characters")
        if spec.values_list and value not in spec.values_list:
            return SetOutcome("Rejected", "InvalidValue", "not an allowed value")
        return None

    # ------------------------------------------------------------------ reports (B07/B08)
    def report(
        self,
        *,
        base: str = "FullInventory",
        selection: Callable[[VariableKey], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """ReportDataType payloads (as dicts) for NotifyReport.

        ``base``: FullInventory (all variables, B07.FR.08), ConfigurationInventory (the
        ones the operator can set, B07.FR.07) or SummaryInventory (availability and
        problems, B07.FR.09). ``selection`` narrows further (GetReport, B08).
        """
        rows: list[dict[str, Any]] = []
        for key, spec in sorted(self._specs.items()):
            if base == "ConfigurationInventory" and not spec.writable:
                continue
            if base == "SummaryInventory" and key.variable not in ("AvailabilityState", "Problem", "Available"):
                continue
            if selection is not None and not selection(key):
                continue
            rows.append(self.report_data(spec))
        return rows

    def report_data(self, spec: VariableSpec) -> dict[str, Any]:
        key = spec.key
        component: dict[str, Any] = {"name": key.component}
        if key.component_instance:
            component["instance"] = key.component_instance
        if key.evse is not None:
            component["evse"] = {"id": key.evse}
            if key.connector is not None:
                component["evse"]["connectorId"] = key.connector
        variable: dict[str, Any] = {"name": key.variable}
        if key.instance:
            variable["instance"] = key.instance
        attributes = []
        for attribute_type in self.attribute_types(spec):  # B07.FR.11: every supported type
            attribute: dict[str, Any] = {
                "type": attribute_type,
                "mutability": spec.mutability,
                "persistent": spec.writable or spec.dynamic is None,
                "constant": not spec.writable and spec.dynamic is None,
            }
            value = self.get(key) if spec.readable else None
            if value is not None:
                attribute["value"] = value[: self.value_size]
            attributes.append(attribute)
        characteristics: dict[str, Any] = {
            "dataType": "string" if spec.data_type == "passwordString" else spec.data_type,
            "supportsMonitoring": False,
        }
        if spec.unit:
            characteristics["unit"] = spec.unit
        if spec.min_limit is not None:
            characteristics["minLimit"] = spec.min_limit
        if spec.max_limit is not None:
            characteristics["maxLimit"] = spec.max_limit
        if spec.values_list:
            characteristics["valuesList"] = ",".join(spec.values_list)
        return {
            "component": component,
            "variable": variable,
            "variableAttribute": attributes,
            "variableCharacteristics": characteristics,
        }

    def components(self) -> set[tuple[str, str | None, int | None, int | None]]:
        return {(k.component, k.component_instance, k.evse, k.connector) for k in self._specs}
