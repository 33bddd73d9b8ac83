"""ISO 15118 schedules and needs <-> OCPP smart charging (pure functions).

Rules of this module:

- No I/O and no clock: ``now`` (UTC) is an argument.
- :func:`ocpp_needs` maps the SECC's :class:`~pnc_bridge.secc.effects.EvChargingNeeds` (ISO
  15118 names) to the OCPP client's protocol-neutral needs, which it turns into
  NotifyEVChargingNeeds for the connection's OCPP version (2.0.1 wants integers: values are
  floored, never rounded up).
- :func:`offered_schedules` turns the installed charging profiles into the SECC's
  :class:`~pnc_bridge.secc.schedule.ChargingSchedule` values. Every chargingSchedule of the
  transaction's TxProfile becomes one schedule (one SAScheduleTuple, at most three), each
  the composite schedule (K08) of that chargingSchedule with the station's other limits
  (ChargingStationMaxProfile, external constraints, the EVSE's maximum), so the EV is never
  offered more than any of them allows; with no TxProfile, the station's composite schedule
  is the one schedule. Every period is kept; the SECC's ``schedule.py`` fits them to the
  EV's MaxEntriesSAScheduleTuple and departure time. A chargingSchedule's salesTariff goes
  with it.
- :func:`ev_charging_schedule` is the EV's charging profile (PowerDeliveryReq) as OCPP
  ``ChargingScheduleType`` for NotifyEVChargingSchedule.
- The transfer-mode names differ between ISO 15118 and OCPP; :data:`OCPP_ENERGY_TRANSFER` (ISO
  15118-2 modes) and :data:`OCPP_ENERGY_SERVICE` (ISO 15118-20 services) are the tables
  between them.
- Both power directions (ISO 15118-20 BPT) share one sign convention on both sides: positive
  into the EV; the EV's discharge limits are magnitudes (OCPP 2.1 V2XChargingParametersType);
  a negative ``limit`` is a discharge period, ``discharge_limit`` (<= 0) and ``setpoint``
  (signed) are OCPP 2.1's. The composite schedule the EV is offered is bounded by the EVSE's
  discharge capability and the EV's own limits both ways (the station's composite schedule
  with the EV's needs); the SECC fits the result to the EV's MaximumSupportingPoints.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any, Iterable

from pnc_bridge.ocpp import EnergyTransferMode as OcppMode
from pnc_bridge.ocpp import EvChargingNeeds as OcppNeeds
from pnc_bridge.ocpp import SchedulePeriod as OcppPeriod
from pnc_bridge.ocpp import ev_schedule_payload
from pnc_bridge.ocpp._smart_charging import StoredProfile, composite_schedule
from pnc_bridge.ocpp import ControlMode as OcppControlMode
from pnc_bridge.ocpp import MobilityNeedsMode as OcppMobilityNeedsMode
from pnc_bridge.secc.effects import EnergyService
from pnc_bridge.secc.effects import EnergyTransferMode as SeccMode
from pnc_bridge.secc.effects import EvChargingNeeds, ReportEvChargingSchedule
from pnc_bridge.secc.schedule import (
    DEFAULT_HORIZON,
    ChargingSchedule,
    ConsumptionCost,
    Cost,
    LimitUnit,
    SchedulePeriod,
    Tariff,
    TariffEntry,
)

__all__ = ["OCPP_ENERGY_SERVICE", "OCPP_ENERGY_TRANSFER", "charge_only", "ev_charging_schedule", "horizon", "ocpp_needs",
           "offered_schedules", "tariff"]

#: ISO 15118-2 offers at most three SAScheduleTuples.
MAX_SCHEDULES = 3


def _v(x: Any) -> str:
    return x.value if hasattr(x, "value") else str(x)


def _int(value: float | None) -> int | None:
    return None if value is None else int(math.floor(value))


def horizon(needs: EvChargingNeeds | None) -> int:
    """Seconds the offered schedules must cover: the EV's departure time, else 24 h."""
    if needs is not None and needs.departure_time:
        return max(1, min(int(needs.departure_time), DEFAULT_HORIZON))
    return DEFAULT_HORIZON


#: the SECC's energy transfer modes (ISO 15118-2 names) -> OCPP's EnergyTransferModeEnumType
OCPP_ENERGY_TRANSFER = {
    SeccMode.AC_single_phase_core: OcppMode.AC_single_phase,
    SeccMode.AC_three_phase_core: OcppMode.AC_three_phase,
    SeccMode.DC_core: OcppMode.DC,
    SeccMode.DC_extended: OcppMode.DC,
    SeccMode.DC_combo_core: OcppMode.DC,
    SeccMode.DC_unique: OcppMode.DC,
}


#: the ISO 15118-20 energy services -> OCPP 2.1 EnergyTransferModeEnumType (AC: by the phases
#: of the ISO 15118-2 mode the session derived from the connector)
OCPP_ENERGY_SERVICE = {
    EnergyService.DC: OcppMode.DC,
    EnergyService.DC_BPT: OcppMode.DC_BPT,
    EnergyService.AC_BPT: OcppMode.AC_BPT,
    EnergyService.DC_ACDP: OcppMode.DC_ACDP,
    EnergyService.DC_ACDP_BPT: OcppMode.DC_ACDP_BPT,
    EnergyService.WPT: OcppMode.WPT,
}


def _mode(service: EnergyService | None, mode: SeccMode) -> OcppMode:
    if service is None or service is EnergyService.AC:
        return OCPP_ENERGY_TRANSFER[mode]
    return OCPP_ENERGY_SERVICE[service]


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def ocpp_needs(needs: EvChargingNeeds) -> OcppNeeds:
    """The SECC's needs as the OCPP client's protocol-neutral ``EvChargingNeeds`` (which
    ``ChargingStation.notify_ev_charging_needs`` maps to each OCPP version: 2.1 natively,
    2.0.1 with the -20 parts in ``customData``). ISO 15118-20: the selected service, the
    EV's services, control and mobility needs mode, and its V2X parameters field for field
    (discharge limits as magnitudes)."""
    v2x = needs.v2x
    if v2x is None:  # DIN 70121, ISO 15118-2
        return OcppNeeds(
            energy_transfer_mode=OCPP_ENERGY_TRANSFER[needs.energy_transfer_mode],
            departure_time=needs.departure_time,
            max_entries=needs.max_entries,
            energy_request_wh=_int(needs.energy_request_wh),
            energy_capacity_wh=_int(needs.energy_capacity_wh),
            soc=needs.soc,
            full_soc=needs.full_soc,
            bulk_soc=needs.bulk_soc,
            max_current_a=_int(needs.max_current_a),
            min_current_a=_int(needs.min_current_a),
            max_power_w=_int(needs.max_power_w),
            max_voltage_v=_int(needs.max_voltage_v),
        )
    available = tuple(dict.fromkeys(_mode(s, needs.energy_transfer_mode) for s in needs.available_services))
    return OcppNeeds(
        energy_transfer_mode=_mode(needs.service, needs.energy_transfer_mode),
        available_energy_transfer=available,
        control_mode=OcppControlMode(needs.control_mode.value) if needs.control_mode is not None else None,
        mobility_needs_mode=OcppMobilityNeedsMode(needs.mobility_needs_mode.value)
        if needs.mobility_needs_mode is not None else None,
        departure_time=needs.departure_time,
        max_entries=needs.max_entries,
        energy_request_wh=_first(needs.energy_request_wh, v2x.ev_target_energy_request),
        energy_capacity_wh=needs.energy_capacity_wh,
        min_energy_request_wh=v2x.ev_min_energy_request,
        max_energy_request_wh=v2x.ev_max_energy_request,
        min_v2x_energy_request_wh=v2x.ev_min_v2x_energy_request,
        max_v2x_energy_request_wh=v2x.ev_max_v2x_energy_request,
        soc=needs.soc,
        target_soc=_first(needs.target_soc, v2x.target_soc),
        full_soc=needs.full_soc,
        bulk_soc=needs.bulk_soc,
        max_current_a=_first(needs.max_current_a, v2x.max_charge_current),
        min_current_a=_first(needs.min_current_a, v2x.min_charge_current),
        max_power_w=_first(needs.max_power_w, v2x.max_charge_power),
        min_power_w=v2x.min_charge_power,
        max_voltage_v=_first(needs.max_voltage_v, v2x.max_voltage),
        min_voltage_v=v2x.min_voltage,
        max_discharge_power_w=v2x.max_discharge_power,
        min_discharge_power_w=v2x.min_discharge_power,
        max_discharge_current_a=v2x.max_discharge_current,
        min_discharge_current_a=v2x.min_discharge_current,
    )


def tariff(sales_tariff: Any) -> Tariff | None:
    """An OCPP ``SalesTariffType`` (model) as the SECC's :class:`Tariff`."""
    if sales_tariff is None:
        return None
    entries = []
    for entry in sales_tariff.sales_tariff_entry:
        costs = tuple(
            ConsumptionCost(
                float(c.start_value),
                tuple(Cost(_v(k.cost_kind), int(k.amount), k.amount_multiplier) for k in c.cost),
            )
            for c in (entry.consumption_cost or ())
        )
        entries.append(TariffEntry(int(entry.relative_time_interval.start), entry.e_price_level, costs))
    return Tariff(int(sales_tariff.id), tuple(entries), sales_tariff.sales_tariff_description, sales_tariff.num_e_price_levels)


def _periods(composite: dict[str, Any]) -> tuple[SchedulePeriod, ...]:
    """The composite periods as the SECC's: a negative ``limit`` stays a discharge period,
    ``dischargeLimit`` and ``setpoint`` come along (DIN 70121 and ISO 15118-2 read only the
    charging side)."""
    periods: list[SchedulePeriod] = []
    for p in composite["chargingSchedulePeriod"]:
        discharge, setpoint = p.get("dischargeLimit"), p.get("setpoint")
        period = SchedulePeriod(int(p["startPeriod"]), float(p["limit"]), p.get("numberPhases"),
                                discharge_limit=None if discharge is None else float(discharge),
                                setpoint=None if setpoint is None else float(setpoint))
        if periods and periods[-1].start == period.start:  # two changes within one second: the later one holds
            periods[-1] = period
        else:
            periods.append(period)
    return tuple(periods)


def offered_schedules(
    profiles: Iterable[StoredProfile],
    *,
    evse_id: int,
    now: datetime,
    duration: int,
    transaction_id: str | None,
    transaction_start: datetime | None,
    evse_max_w: float,
    supply_phases: int,
    voltage: float,
    evse_max_discharge_w: float = 0.0,
    ev: OcppNeeds | None = None,
    offline_for: float | None = None,
) -> tuple[ChargingSchedule, ...]:
    """Up to three schedules for the EV from the installed profiles (see the module rules).
    ``evse_max_discharge_w`` (0: the EVSE cannot discharge) and ``ev`` (the EV's needs as
    given to the CSMS; its limits both ways) bound the discharge side; ``offline_for``
    leaves out profiles past their OCPP 2.1 ``maxOfflineDuration``."""
    profiles = list(profiles)
    common = dict(evse_id=evse_id, start=now, duration=duration, transaction_id=transaction_id,
                  transaction_start=transaction_start, evse_max=evse_max_w, evse_max_unit="W",
                  supply_phases=supply_phases, line_voltage=voltage, evse_max_discharge=evse_max_discharge_w,
                  ev=ev, offline_for=offline_for)
    tx_profiles = sorted(
        (p for p in profiles if p.purpose == "TxProfile" and transaction_id is not None and p.evse_id == evse_id
         and p.profile.transaction_id == transaction_id),
        key=lambda p: -p.stack_level,
    )
    if not tx_profiles:
        composite = composite_schedule(profiles, unit="W", **common)
        return (ChargingSchedule(1, LimitUnit.W, _periods(composite), duration=duration),)
    leading = tx_profiles[0]
    others = [p for p in profiles if p is not leading]
    schedules: list[ChargingSchedule] = []
    used: set[int] = set()
    for index, schedule in enumerate(leading.profile.charging_schedule[:MAX_SCHEDULES]):
        variant = StoredProfile(leading.evse_id, leading.profile.model_copy(update={"charging_schedule": [schedule]}))
        unit = _v(schedule.charging_rate_unit)
        composite = composite_schedule([*others, variant], unit=unit, **common)
        # SAScheduleTupleID is 1..255 and unique; the chargingSchedule's id when it fits
        schedule_id = int(schedule.id) if 1 <= int(schedule.id) <= 255 and int(schedule.id) not in used else index + 1
        while schedule_id in used:
            schedule_id += 1
        used.add(schedule_id)
        schedules.append(ChargingSchedule(schedule_id, LimitUnit(unit), _periods(composite), duration=duration,
                                          tariff=tariff(schedule.sales_tariff)))
    return tuple(schedules)


def charge_only(schedules: tuple[ChargingSchedule, ...]) -> tuple[ChargingSchedule, ...]:
    """The same schedules with every discharge removed, charging kept (a discharge period
    becomes a period without power; a negative setpoint becomes 0): the V2X fallback once
    the CSMS has been unreachable for ``BRIDGE_V2X_OFFLINE_GRACE``."""
    out = []
    for schedule in schedules:
        periods = tuple(
            replace(p, limit=p.charge_limit, discharge_limit=None,
                    setpoint=None if p.setpoint is None else max(0.0, p.setpoint))
            for p in schedule.periods
        )
        out.append(replace(schedule, periods=periods))
    return tuple(out)


def ev_charging_schedule(effect: ReportEvChargingSchedule) -> dict[str, Any] | None:
    """``ChargingScheduleType`` of the EV's profile for NotifyEVChargingSchedule (built by the
    OCPP client's ``ev_schedule_payload``), or None without one."""
    if not effect.entries:
        return None
    periods: list[OcppPeriod] = []
    for entry in sorted(effect.entries, key=lambda e: e.start):
        period = OcppPeriod(int(entry.start), round(float(entry.max_power_w), 1),
                            number_phases=entry.phases if entry.phases in (1, 2, 3) else None)
        if periods and periods[-1].start == period.start:
            periods[-1] = period  # the EV repeated a start: the later entry holds
        else:
            periods.append(period)
    return ev_schedule_payload(periods[:1024], unit="W", schedule_id=int(effect.sa_schedule_tuple_id))
