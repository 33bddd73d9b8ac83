"""Protocol-neutral charging schedules and their mapping into ``SAScheduleList``.

Rules of this module:

- Pure functions over values; no session state, no clock. The bridge turns the CSMS's
  charging profile (or the station's own limits) into :class:`ChargingSchedule` values; the
  SECC cores call :func:`to_iso2_sa_schedule_list` / :func:`to_din_sa_schedule_list`.
- **Every** period of a schedule becomes its own ``PMaxScheduleEntry``; periods are never
  averaged or dropped to make a schedule look simpler. Two things shorten a schedule:

  * the horizon: periods that start at or after the EV's departure time (or 24 h when the EV
    gave none) are left out, because the EV does not need them;
  * the EV's ``MaxEntriesSAScheduleTuple``: when a tuple would hold more entries
    (PMaxScheduleEntry plus SalesTariffEntry) than the EV accepts, the first ones are kept
    as they are and the rest are folded into one last entry carrying the *lowest* limit of
    the folded periods, so the EV never gets more than the CSMS allowed at any moment.

- A schedule that ends before the horizon (``duration``) is followed by one entry with the
  fallback limit (the EVSE's own maximum): after a CSMS profile ends, the station's default
  applies. The last entry carries the ``duration`` up to the horizon (capped at the -2 XSD
  maximum of 86400 s; ISO 15118-2 lets a schedule end early, and the EV then renegotiates).
- Limits are floored when they are written as ``PhysicalValue`` (never round a limit up).
- Current limits (``LimitUnit.A``) become power with the given voltage and phase count:
  ``P = I * U * phases`` (AC, per-phase current and phase-to-neutral voltage) or ``I * U`` (DC).

The ISO 15118-2 rules applied here, as quoted by Josev and EVerest: without a DepartureTime
the schedule shall cover at least 24 h ([V2G2-304]); with one, it should cover up to it
([V2G2-303]); a shorter one is acceptable and the EV renegotiates ([V2G2-305]). DIN 70121 DC:
the schedule shall cover at least 24 h ([V2G-DC-559], as EVerest quotes it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from enum import Enum

from pnc_bridge.messages import din, iso2

__all__ = [
    "ChargingSchedule",
    "ConsumptionCost",
    "Cost",
    "DEFAULT_HORIZON",
    "LimitUnit",
    "PlannedEntry",
    "SchedulePeriod",
    "Tariff",
    "TariffEntry",
    "plan_entries",
    "physical_value",
    "to_din_sa_schedule_list",
    "to_iso2_sa_schedule_list",
]

#: Horizon when the EV gives no departure time: 24 h ([V2G2-304], [V2G-DC-559]).
DEFAULT_HORIZON = 86400
#: Largest ``RelativeTimeInterval.duration`` the ISO 15118-2 XSD allows.
_ISO2_MAX_DURATION = 86400
#: Largest ``RelativeTimeInterval.start`` the ISO 15118-2 XSD allows.
_ISO2_MAX_START = 16777214
#: ISO 15118-2 allows up to three SAScheduleTuples, up to 1024 entries in each list.
_ISO2_MAX_TUPLES = 3
_ISO2_MAX_ENTRIES = 1024
_INT16_MAX = 32767


class LimitUnit(str, Enum):
    W = "W"
    A = "A"


@dataclass(frozen=True, slots=True)
class SchedulePeriod:
    """One period: from ``start`` (seconds after the schedule starts) until the next period."""

    start: int
    limit: float  # in the schedule's unit; charging limit, >= 0
    number_phases: int | None = None
    discharge_limit: float | None = None  # ISO 15118-20 bidirectional only; ignored for -2 and DIN


@dataclass(frozen=True, slots=True)
class Cost:
    kind: str  # costKindType: relativePricePercentage, RenewableGenerationPercentage, CarbonDioxideEmission
    amount: int
    multiplier: int | None = None


@dataclass(frozen=True, slots=True)
class ConsumptionCost:
    start_value_wh: float
    costs: tuple[Cost, ...]


@dataclass(frozen=True, slots=True)
class TariffEntry:
    start: int
    price_level: int | None = None
    consumption_costs: tuple[ConsumptionCost, ...] = ()


@dataclass(frozen=True, slots=True)
class Tariff:
    """A sales tariff (OCPP ``SalesTariffType``, ISO 15118-2 ``SalesTariff``)."""

    id: int
    entries: tuple[TariffEntry, ...]
    description: str | None = None
    num_price_levels: int | None = None


@dataclass(frozen=True, slots=True)
class ChargingSchedule:
    """A schedule as the CSMS or the station gives it, relative to the moment it is offered."""

    id: int  # becomes SAScheduleTupleID (1..255)
    unit: LimitUnit
    periods: tuple[SchedulePeriod, ...]
    duration: int | None = None  # seconds covered; None: the last period lasts
    tariff: Tariff | None = None


@dataclass(frozen=True, slots=True)
class PlannedEntry:
    """One PMaxScheduleEntry before it is written in a protocol's types."""

    start: int
    power_w: float
    duration: int | None = None  # only on the last entry


def _power_w(limit: float, unit: LimitUnit, voltage_v: float, phases: int) -> float:
    if unit is LimitUnit.W:
        return max(0.0, float(limit))
    return max(0.0, float(limit) * voltage_v * phases)


def _fold(items: list, budget: int, lowest) -> list:
    """Keep ``budget - 1`` items and fold the rest into one that starts where they start."""
    if len(items) <= budget:
        return items
    head, tail = items[: budget - 1], items[budget - 1 :]
    return head + [lowest(tail)]


def plan_entries(
    schedule: ChargingSchedule,
    *,
    horizon: int,
    budget: int,
    voltage_v: float,
    phases: int,
    fallback_power_w: float,
    max_duration: int = _ISO2_MAX_DURATION,
) -> list[PlannedEntry]:
    """The PMaxScheduleEntries for ``schedule``: all periods before ``horizon``, at most
    ``budget`` of them (the tail folded to its lowest limit), the last one with a duration."""
    budget = max(1, budget)
    horizon = max(1, horizon)
    periods: dict[int, float] = {}
    for p in sorted(schedule.periods, key=lambda p: p.start):
        if p.start < 0:
            continue
        phases_p = p.number_phases if p.number_phases else phases
        periods[int(p.start)] = _power_w(p.limit, schedule.unit, voltage_v, phases_p)  # a later duplicate wins
    entries = [PlannedEntry(s, w) for s, w in sorted(periods.items())]
    if not entries or entries[0].start > 0:
        # OCPP relative schedules start at 0; if not, the station's own limit applies until then
        entries.insert(0, PlannedEntry(0, max(0.0, fallback_power_w)))
    if schedule.duration is not None and 0 < schedule.duration < horizon:
        entries = [e for e in entries if e.start < schedule.duration]
        entries.append(PlannedEntry(int(schedule.duration), max(0.0, fallback_power_w)))
    entries = [e for e in entries if e.start < horizon]
    entries = _fold(entries, budget, lambda tail: PlannedEntry(tail[0].start, min(e.power_w for e in tail)))
    last = entries[-1]
    entries[-1] = PlannedEntry(last.start, last.power_w, max(1, min(max_duration, horizon - last.start)))
    return entries


def _plan_tariff(tariff: Tariff, horizon: int, budget: int, max_duration: int) -> list[tuple[TariffEntry, int | None]]:
    entries = sorted((e for e in tariff.entries if 0 <= e.start < horizon), key=lambda e: e.start)
    if not entries:
        return []

    def highest(tail: list[TariffEntry]) -> TariffEntry:
        # folding tariff entries: the dearest level and the first entry's costs, conservative for the EV
        levels = [e.price_level for e in tail if e.price_level is not None]
        return TariffEntry(tail[0].start, max(levels) if levels else None, tail[0].consumption_costs)

    entries = _fold(entries, max(1, budget), highest)
    out: list[tuple[TariffEntry, int | None]] = [(e, None) for e in entries[:-1]]
    last = entries[-1]
    out.append((last, max(1, min(max_duration, horizon - last.start))))
    return out


def _budgets(max_entries: int | None, tariff_entries: int) -> tuple[int, int]:
    """(PMax budget, SalesTariff budget) for one tuple under MaxEntriesSAScheduleTuple."""
    if max_entries is None or max_entries <= 0:
        return _ISO2_MAX_ENTRIES, _ISO2_MAX_ENTRIES
    if tariff_entries == 0:
        return max(1, max_entries), 0
    tariff_budget = min(tariff_entries, max(1, max_entries // 2))
    return max(1, max_entries - tariff_budget), tariff_budget


def _horizon(departure_time: int | None) -> int:
    if departure_time is None or departure_time <= 0:
        return DEFAULT_HORIZON
    return int(departure_time)


def _tuple_ids(schedules: tuple[ChargingSchedule, ...] | list[ChargingSchedule], limit: int) -> list[int]:
    """SAScheduleTupleIDs: the schedules' own when valid and unique, else renumbered from 1."""
    ids = [s.id for s in schedules[:limit]]
    if all(1 <= i <= 255 for i in ids) and len(set(ids)) == len(ids):
        return ids
    return list(range(1, len(ids) + 1))


@lru_cache(maxsize=4096)
def _scaled(value: float, floor: bool) -> tuple[int, int]:
    """(multiplier, value): a whole number that fits in an int16 as itself (multiplier 0, as
    chargers send it); anything else with the smallest multiplier whose scaled value fits."""
    if not math.isfinite(value):
        return 0, 0
    if value == int(value) and -_INT16_MAX - 1 <= value <= _INT16_MAX:
        return 0, int(value)
    for multiplier in range(-3, 4):
        scaled = value / (10.0**multiplier)
        v = math.floor(scaled + 1e-9) if floor else round(scaled)
        if -_INT16_MAX - 1 <= v <= _INT16_MAX:
            return multiplier, int(v)
    return 3, (_INT16_MAX if value > 0 else -_INT16_MAX - 1)


_UNITS: dict[tuple[object, str], object] = {}


def physical_value(module, value: float, unit: str, *, floor: bool = False):
    """``value`` as a ``PhysicalValue`` of ``module`` (``iso2`` or ``din``): whole numbers that
    fit as they are, others with the smallest multiplier (-3..3) whose scaled value fits in a
    16-bit integer. ``floor`` rounds toward
    minus infinity (limits); otherwise to nearest (measurements). A value beyond the range
    is clamped, never wrapped."""
    symbol = _UNITS.get((module, unit))
    if symbol is None:
        symbol = _UNITS[(module, unit)] = module.UnitSymbol(unit)
    multiplier, scaled = _scaled(float(value), floor)
    return module.PhysicalValue(multiplier=multiplier, unit=symbol, value=scaled)


def to_iso2_sa_schedule_list(
    schedules: tuple[ChargingSchedule, ...] | list[ChargingSchedule],
    *,
    max_entries: int | None,
    departure_time: int | None,
    voltage_v: float,
    phases: int,
    fallback_power_w: float,
) -> iso2.SAScheduleList:
    """Up to three ISO 15118-2 SAScheduleTuples (the first three schedules), each with all its
    periods as PMaxScheduleEntries within the horizon and ``max_entries``, plus its SalesTariff."""
    horizon = _horizon(departure_time)
    if not schedules:
        schedules = [ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, fallback_power_w),))]
    tuples = []
    for schedule, tuple_id in zip(schedules, _tuple_ids(schedules, _ISO2_MAX_TUPLES)):
        tariff_count = len([e for e in schedule.tariff.entries if 0 <= e.start < horizon]) if schedule.tariff else 0
        pmax_budget, tariff_budget = _budgets(max_entries, tariff_count)
        planned = plan_entries(
            schedule, horizon=horizon, budget=min(pmax_budget, _ISO2_MAX_ENTRIES), voltage_v=voltage_v,
            phases=phases, fallback_power_w=fallback_power_w,
        )
        pmax = iso2.PMaxSchedule(
            p_max_schedule_entry=[
                iso2.PMaxScheduleEntry(
                    time_interval=iso2.RelativeTimeInterval(start=min(e.start, _ISO2_MAX_START), duration=e.duration),
                    p_max=physical_value(iso2, e.power_w, "W", floor=True),
                )
                for e in planned
            ]
        )
        sales_tariff = None
        if schedule.tariff is not None and tariff_budget > 0:
            sales_tariff = _iso2_sales_tariff(schedule.tariff, horizon, min(tariff_budget, _ISO2_MAX_ENTRIES))
        tuples.append(iso2.SAScheduleTuple(sa_schedule_tuple_id=tuple_id, p_max_schedule=pmax, sales_tariff=sales_tariff))
    return iso2.SAScheduleList(sa_schedule_tuple=tuples)


def _iso2_sales_tariff(tariff: Tariff, horizon: int, budget: int) -> iso2.SalesTariff | None:
    planned = _plan_tariff(tariff, horizon, budget, _ISO2_MAX_DURATION)
    if not planned:
        return None
    entries = []
    for e, duration in planned:
        entries.append(
            iso2.SalesTariffEntry(
                time_interval=iso2.RelativeTimeInterval(start=min(e.start, _ISO2_MAX_START), duration=duration),
                e_price_level=None if e.price_level is None else max(0, min(255, e.price_level)),
                consumption_cost=[
                    iso2.ConsumptionCost(
                        start_value=physical_value(iso2, c.start_value_wh, "Wh", floor=True),
                        cost=[
                            iso2.Cost(
                                cost_kind=iso2.CostKind(k.kind),
                                amount=max(0, min(4294967295, int(k.amount))),
                                amount_multiplier=None if k.multiplier is None else max(-3, min(3, k.multiplier)),
                            )
                            for k in c.costs[:3]
                        ],
                    )
                    for c in e.consumption_costs[:3]
                    if c.costs
                ],
            )
        )
    levels = {e.price_level for e, _ in planned if e.price_level is not None}
    num_levels = tariff.num_price_levels if tariff.num_price_levels is not None else (len(levels) or None)
    return iso2.SalesTariff(
        id=None,
        sales_tariff_id=max(1, min(255, tariff.id)),
        sales_tariff_description=(tariff.description or None) and tariff.description[:32],
        num_e_price_levels=None if num_levels is None else max(0, min(255, num_levels)),
        sales_tariff_entry=entries,
    )


def to_din_sa_schedule_list(
    schedules: tuple[ChargingSchedule, ...] | list[ChargingSchedule],
    *,
    voltage_v: float,
    fallback_power_w: float,
    max_tuples: int = _ISO2_MAX_TUPLES,
) -> din.SAScheduleList:
    """DIN 70121 SAScheduleTuples: all periods within 24 h as PMaxScheduleEntries, PMax in W
    (the XSD's ``short``, so capped at 32767 W as EVerest does); no sales tariff (DIN 70121
    DC charging is EIM only)."""
    if not schedules:
        schedules = [ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, fallback_power_w),))]
    tuples = []
    for schedule, tuple_id in zip(schedules, _tuple_ids(schedules, max_tuples)):
        planned = plan_entries(
            schedule, horizon=DEFAULT_HORIZON, budget=_ISO2_MAX_ENTRIES, voltage_v=voltage_v, phases=1,
            fallback_power_w=fallback_power_w, max_duration=DEFAULT_HORIZON,
        )
        tuples.append(
            din.SAScheduleTuple(
                sa_schedule_tuple_id=tuple_id,
                p_max_schedule=din.PMaxSchedule(
                    p_max_schedule_id=tuple_id,
                    p_max_schedule_entry=[
                        din.PMaxScheduleEntry(
                            time_interval=din.RelativeTimeInterval(start=e.start, duration=e.duration),
                            p_max=min(_INT16_MAX, int(math.floor(e.power_w))),
                        )
                        for e in planned
                    ],
                ),
            )
        )
    return din.SAScheduleList(sa_schedule_tuple=tuples)
