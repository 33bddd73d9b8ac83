"""Protocol-neutral V2X values for the bridge: the EV's charging needs and the schedule the
CSMS gives, in both power directions, for OCPP 2.0.1 and 2.1 alike.

Rules of this module:

- Plain frozen dataclasses in SI units (W, A, V, Wh, s); enum members named as OCPP 2.1
  names them (``EnergyTransferMode.DC_BPT``, ``ControlMode.DynamicControl``). The ISO
  15118 session core has its own names; the bridge maps between the two.
- Signs: positive power or current flows into the EV (charging, OCPP "import"); negative
  flows out of it (discharging, "export"). A ``SchedulePeriod`` with a negative ``limit``
  is a discharge period; ``discharge_limit`` (<= 0, OCPP 2.1 ``dischargeLimit``) bounds
  how much the EV may discharge; ``setpoint`` is a signed target.
- ``needs_payload`` builds NotifyEVChargingNeedsRequest in the station form (2.1 shape);
  ``_versions.to_version`` makes the 2.0.1 form of it. Nothing here knows a connection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Iterable

__all__ = [
    "EnergyTransferMode",
    "ControlMode",
    "MobilityNeedsMode",
    "OperationMode",
    "EvChargingNeeds",
    "SchedulePeriod",
    "ChargingSchedule",
    "needs_payload",
    "schedule_from_composite",
    "period_from_payload",
    "ev_schedule_payload",
    "bidirectional_meter_value",
]


class EnergyTransferMode(str, Enum):
    """OCPP 2.1 ``EnergyTransferModeEnumType``."""

    AC_single_phase = "AC_single_phase"
    AC_two_phase = "AC_two_phase"
    AC_three_phase = "AC_three_phase"
    DC = "DC"
    AC_BPT = "AC_BPT"
    AC_BPT_DER = "AC_BPT_DER"
    AC_DER = "AC_DER"
    DC_BPT = "DC_BPT"
    DC_ACDP = "DC_ACDP"
    DC_ACDP_BPT = "DC_ACDP_BPT"
    WPT = "WPT"

    @property
    def bidirectional(self) -> bool:
        """Bidirectional power transfer (the EV may discharge)."""
        return "BPT" in self.value

    @property
    def is_dc(self) -> bool:
        return self.value.startswith("DC")


class ControlMode(str, Enum):
    """OCPP 2.1 ``ControlModeEnumType`` (ISO 15118-20 Scheduled / Dynamic mode)."""

    ScheduledControl = "ScheduledControl"
    DynamicControl = "DynamicControl"


class MobilityNeedsMode(str, Enum):
    """OCPP 2.1 ``MobilityNeedsModeEnumType``: who decides the mobility needs in dynamic mode."""

    EVCC = "EVCC"
    EVCC_SECC = "EVCC_SECC"


class OperationMode(str, Enum):
    """OCPP 2.1 ``OperationModeEnumType`` of a schedule period."""

    Idle = "Idle"
    ChargingOnly = "ChargingOnly"
    CentralSetpoint = "CentralSetpoint"
    ExternalSetpoint = "ExternalSetpoint"
    ExternalLimits = "ExternalLimits"
    CentralFrequency = "CentralFrequency"
    LocalFrequency = "LocalFrequency"
    LocalLoadBalancing = "LocalLoadBalancing"


@dataclass(frozen=True, slots=True)
class EvChargingNeeds:
    """What the EV asks for (ISO 15118 ChargeParameterDiscovery), protocol-neutral.

    Field names follow the SECC's ``EvChargingNeeds`` where they overlap; the discharge
    side follows OCPP 2.1 ``V2XChargingParametersType`` (``max_discharge_power_w`` is
    ``maxDischargePower``). Discharge values are magnitudes (>= 0).
    """

    energy_transfer_mode: EnergyTransferMode
    available_energy_transfer: tuple[EnergyTransferMode, ...] = ()
    control_mode: ControlMode | None = None
    mobility_needs_mode: MobilityNeedsMode | None = None
    departure_time: int | None = None  # seconds from now
    max_entries: int | None = None  # the EV's maximum number of schedule entries (maxScheduleTuples)
    # energy (Wh)
    energy_request_wh: float | None = None  # energyAmount / evTargetEnergyRequest
    energy_capacity_wh: float | None = None
    min_energy_request_wh: float | None = None
    max_energy_request_wh: float | None = None
    min_v2x_energy_request_wh: float | None = None
    max_v2x_energy_request_wh: float | None = None
    # state of charge (%)
    soc: int | None = None
    target_soc: int | None = None
    full_soc: int | None = None
    bulk_soc: int | None = None
    # charge limits
    max_current_a: float | None = None
    min_current_a: float | None = None
    max_power_w: float | None = None
    min_power_w: float | None = None
    max_voltage_v: float | None = None
    min_voltage_v: float | None = None
    # discharge limits (magnitudes)
    max_discharge_power_w: float | None = None
    min_discharge_power_w: float | None = None
    max_discharge_current_a: float | None = None
    min_discharge_current_a: float | None = None

    @property
    def bidirectional(self) -> bool:
        """The EV asked for a BPT mode and may discharge."""
        return self.energy_transfer_mode.bidirectional

    def charge_range(self, unit: str) -> tuple[float | None, float | None]:
        """(most the EV may discharge, most it may charge) in ``unit`` as signed values; None = unknown."""
        if unit == "W":
            high, low = self.max_power_w, self.max_discharge_power_w
        else:
            high, low = self.max_current_a, self.max_discharge_current_a
        if not self.bidirectional:
            low = 0.0
        return (None if low is None else -abs(low)), high


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """One period of a schedule, from ``start`` seconds after the schedule start until the
    next period. Values in the schedule's unit (W or A); see the module rules for signs."""

    start: int
    limit: float
    discharge_limit: float | None = None
    setpoint: float | None = None
    operation_mode: OperationMode | None = None
    number_phases: int | None = None

    @property
    def max_charge(self) -> float:
        return max(0.0, self.limit)

    @property
    def max_discharge(self) -> float:
        """The most the EV may discharge in this period (a magnitude, 0 = none)."""
        if self.discharge_limit is not None:
            return -min(0.0, self.discharge_limit)
        return -min(0.0, self.limit)

    @property
    def discharges(self) -> bool:
        """The period asks the EV to discharge (negative limit or setpoint)."""
        return self.limit < 0 or (self.setpoint is not None and self.setpoint < 0)

    def charge_only(self) -> "SchedulePeriod":
        """The same period without any discharge: the fallback when V2X is not safe."""
        setpoint = None if self.setpoint is None else max(0.0, self.setpoint)
        mode = OperationMode.ChargingOnly if self.operation_mode is not None else None
        return replace(self, limit=max(0.0, self.limit), discharge_limit=None, setpoint=setpoint, operation_mode=mode)


@dataclass(frozen=True, slots=True)
class ChargingSchedule:
    """A composite schedule for one EVSE: charge and discharge, from ``start`` (UTC)."""

    evse_id: int
    start: datetime
    duration: int
    unit: str  # "W" or "A"
    periods: tuple[SchedulePeriod, ...]

    def period_at(self, at: datetime) -> SchedulePeriod:
        """The period in force at ``at`` (the first one before the start)."""
        offset = (at - self.start).total_seconds()
        current = self.periods[0]
        for period in self.periods:
            if period.start <= offset:
                current = period
            else:
                break
        return current

    def charge_only(self) -> "ChargingSchedule":
        """The same schedule with every discharge removed (see ``SchedulePeriod.charge_only``)."""
        periods: list[SchedulePeriod] = []
        for period in (p.charge_only() for p in self.periods):
            if periods and replace(periods[-1], start=period.start) == period:
                continue
            periods.append(period)
        return replace(self, periods=tuple(periods))

    @property
    def discharges(self) -> bool:
        return any(p.discharges for p in self.periods)


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def needs_payload(
    evse_id: int, needs: EvChargingNeeds, *, now: datetime, max_schedule_tuples: int | None = None
) -> dict[str, Any]:
    """NotifyEVChargingNeedsRequest (station form, OCPP 2.1 shape) for ``needs``."""
    mode = needs.energy_transfer_mode
    charging: dict[str, Any] = {"requestedEnergyTransfer": mode.value}
    if needs.available_energy_transfer:
        charging["availableEnergyTransfer"] = [m.value for m in needs.available_energy_transfer]
    if needs.control_mode is not None:
        charging["controlMode"] = needs.control_mode.value
    if needs.mobility_needs_mode is not None:
        charging["mobilityNeedsMode"] = needs.mobility_needs_mode.value
    if needs.departure_time is not None:
        charging["departureTime"] = now + timedelta(seconds=needs.departure_time)
    if mode.is_dc:
        if needs.max_current_a is not None and needs.max_voltage_v is not None:
            charging["dcChargingParameters"] = _drop_none(
                {
                    "evMaxCurrent": needs.max_current_a,
                    "evMaxVoltage": needs.max_voltage_v,
                    "energyAmount": needs.energy_request_wh,
                    "evMaxPower": needs.max_power_w,
                    "stateOfCharge": needs.soc,
                    "evEnergyCapacity": needs.energy_capacity_wh,
                    "fullSoC": needs.full_soc,
                    "bulkSoC": needs.bulk_soc,
                }
            )
    elif None not in (needs.energy_request_wh, needs.min_current_a, needs.max_current_a, needs.max_voltage_v):
        charging["acChargingParameters"] = {
            "energyAmount": needs.energy_request_wh,
            "evMinCurrent": needs.min_current_a,
            "evMaxCurrent": needs.max_current_a,
            "evMaxVoltage": needs.max_voltage_v,
        }
    v2x = _drop_none(
        {
            "minChargePower": needs.min_power_w,
            "maxChargePower": needs.max_power_w,
            "minDischargePower": needs.min_discharge_power_w,
            "maxDischargePower": needs.max_discharge_power_w,
            "minChargeCurrent": needs.min_current_a,
            "maxChargeCurrent": needs.max_current_a,
            "minDischargeCurrent": needs.min_discharge_current_a,
            "maxDischargeCurrent": needs.max_discharge_current_a,
            "minVoltage": needs.min_voltage_v,
            "maxVoltage": needs.max_voltage_v,
            "evTargetEnergyRequest": needs.energy_request_wh,
            "evMinEnergyRequest": needs.min_energy_request_wh,
            "evMaxEnergyRequest": needs.max_energy_request_wh,
            "evMinV2XEnergyRequest": needs.min_v2x_energy_request_wh,
            "evMaxV2XEnergyRequest": needs.max_v2x_energy_request_wh,
            "targetSoC": needs.target_soc,
        }
    )
    # V2XChargingParametersType is the ISO 15118-20 parameter set: sent for -20 sessions
    # (a control mode is known) and whenever the EV asks for BPT.
    if v2x and (mode.bidirectional or needs.control_mode is not None):
        charging["v2xChargingParameters"] = v2x
    payload: dict[str, Any] = {"evseId": evse_id, "chargingNeeds": charging, "timestamp": now}
    if max_schedule_tuples is not None:
        payload["maxScheduleTuples"] = max_schedule_tuples
    elif needs.max_entries is not None:
        payload["maxScheduleTuples"] = needs.max_entries
    return payload


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def period_from_payload(period: dict[str, Any], *, default_limit: float) -> SchedulePeriod:
    """A ``ChargingSchedulePeriodType`` (station form, camelCase) as a ``SchedulePeriod``;
    ``default_limit`` stands in for a missing ``limit`` (2.1 setpoint modes)."""
    mode = period.get("operationMode")
    limit = _number(period.get("limit"))
    return SchedulePeriod(
        start=int(period.get("startPeriod", 0)),
        limit=default_limit if limit is None else limit,
        discharge_limit=_number(period.get("dischargeLimit")),
        setpoint=_number(period.get("setpoint")),
        operation_mode=OperationMode(mode) if mode else None,
        number_phases=period.get("numberPhases"),
    )


def schedule_from_composite(composite: dict[str, Any]) -> ChargingSchedule:
    """The station's CompositeScheduleType (station form) as a neutral ``ChargingSchedule``."""
    start = composite["scheduleStart"]
    if isinstance(start, str):
        start = datetime.fromisoformat(start.replace("Z", "+00:00"))
    periods = tuple(period_from_payload(p, default_limit=0.0) for p in composite["chargingSchedulePeriod"])
    return ChargingSchedule(int(composite["evseId"]), start, int(composite["duration"]), str(composite["chargingRateUnit"]), periods)


def ev_schedule_payload(
    periods: Iterable[SchedulePeriod], *, unit: str = "W", schedule_id: int = 1, start: datetime | None = None,
    duration: int | None = None,
) -> dict[str, Any]:
    """ChargingScheduleType (station form) for NotifyEVChargingSchedule: the EV's plan,
    charge and discharge (K15.FR.10)."""
    items = []
    for p in periods:
        item: dict[str, Any] = {"startPeriod": int(p.start), "limit": p.limit}
        if p.discharge_limit is not None:
            item["dischargeLimit"] = min(0.0, p.discharge_limit)
        elif p.limit < 0:
            item["dischargeLimit"] = p.limit
        if p.setpoint is not None:
            item["setpoint"] = p.setpoint
        if p.operation_mode is not None:
            item["operationMode"] = p.operation_mode.value
        if p.number_phases is not None:
            item["numberPhases"] = p.number_phases
        items.append(item)
    schedule: dict[str, Any] = {"id": schedule_id, "chargingRateUnit": unit, "chargingSchedulePeriod": items}
    if start is not None:
        schedule["startSchedule"] = start.astimezone(timezone.utc)
    if duration is not None:
        schedule["duration"] = duration
    return schedule


def bidirectional_meter_value(
    *,
    timestamp: datetime,
    energy_import_wh: float,
    energy_export_wh: float,
    power_w: float | None = None,
    context: str = "Sample.Periodic",
    signed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A MeterValueType with energy both ways (Energy.Active.Import.Register and
    Energy.Active.Export.Register) and the present power split into Power.Active.Import /
    Power.Active.Export; ``signed`` (SignedMeterValueType) goes with the import register."""
    sampled: list[dict[str, Any]] = [
        {"value": round(energy_import_wh, 1), "context": context, "measurand": "Energy.Active.Import.Register",
         "unitOfMeasure": {"unit": "Wh"}},
        {"value": round(energy_export_wh, 1), "context": context, "measurand": "Energy.Active.Export.Register",
         "unitOfMeasure": {"unit": "Wh"}},
    ]
    if signed is not None:
        sampled[0]["signedMeterValue"] = signed
    if power_w is not None:
        sampled.append({"value": round(max(0.0, power_w), 1), "context": context, "measurand": "Power.Active.Import",
                        "unitOfMeasure": {"unit": "W"}})
        sampled.append({"value": round(max(0.0, -power_w), 1), "context": context, "measurand": "Power.Active.Export",
                        "unitOfMeasure": {"unit": "W"}})
    return {"timestamp": timestamp, "sampledValue": sampled}

