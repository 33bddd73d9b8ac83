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
- The transfer-mode names differ between ISO 15118 and OCPP; :data:`OCPP_ENERGY_TRANSFER` is
  the one table between them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any, Iterable

from pnc_bridge.ocpp import EnergyTransferMode as OcppMode
from pnc_bridge.ocpp import EvChargingNeeds as OcppNeeds
from pnc_bridge.ocpp import SchedulePeriod as OcppPeriod
from pnc_bridge.ocpp import ev_schedule_payload
from pnc_bridge.ocpp._smart_charging import StoredProfile, composite_schedule
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

__all__ = ["OCPP_ENERGY_TRANSFER", "ev_charging_schedule", "horizon", "ocpp_needs", "offered_schedules", "tariff"]

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


def ocpp_needs(needs: EvChargingNeeds) -> OcppNeeds:
    """The SECC's needs as the OCPP client's protocol-neutral ``EvChargingNeeds`` (which
    ``ChargingStation.notify_ev_charging_needs`` maps to each OCPP version)."""
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
    periods: list[SchedulePeriod] = []
    for p in composite["chargingSchedulePeriod"]:
        period = SchedulePeriod(int(p["startPeriod"]), max(0.0, float(p["limit"])), p.get("numberPhases"))
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
) -> tuple[ChargingSchedule, ...]:
    """Up to three schedules for the EV from the installed profiles (see the module rules)."""
    profiles = list(profiles)
    common = dict(evse_id=evse_id, start=now, duration=duration, transaction_id=transaction_id,
                  transaction_start=transaction_start, evse_max=evse_max_w, evse_max_unit="W",
                  supply_phases=supply_phases, line_voltage=voltage)
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
