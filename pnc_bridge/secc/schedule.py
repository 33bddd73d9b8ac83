"""Protocol-neutral charging schedules and their mapping into ``SAScheduleList`` (DIN 70121,
ISO 15118-2) and ISO 15118-20 ``ScheduleTuple``s.

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

ISO 15118-20 (:func:`to_iso20_schedule_tuples`): a tuple has a ChargingSchedule and, for a
bidirectional (BPT) session, a DischargingSchedule whose PowerScheduleEntries are negative
(the most the EV may give back, as Josev writes them and as OCPP 2.1 signs
``dischargeLimit``). Both share the periods' boundaries; entries carry durations. The EV's
``MaximumSupportingPoints`` (12..1024 per tuple, XSD ``maxSupportingPointsScheduleTupleType``)
is read conservatively as the number of entries of all of a tuple's lists together, so an
EV that counts per list is also served; the tail is folded the same way as above (lowest
charge limit, smallest discharge magnitude). A period that discharges in a session without
BPT is a period without power for that EV (charge limit 0, no discharge).

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

from pnc_bridge.messages import din, iso2, iso20

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
    "Iso20Period",
    "from_rational",
    "has_discharge",
    "period_at",
    "plan_entries",
    "plan_iso20_periods",
    "physical_value",
    "rational_number",
    "to_din_sa_schedule_list",
    "to_iso2_sa_schedule_list",
    "to_iso20_schedule_tuples",
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
    """One period: from ``start`` (seconds after the schedule starts) until the next period.

    Signs as OCPP: ``limit`` is the charging limit; a negative ``limit`` is the OCPP 2.0.1
    way of saying "discharge up to ``-limit``" (and no charging). ``discharge_limit`` is
    OCPP 2.1's ``dischargeLimit`` (<= 0: the EV may discharge up to its magnitude; a
    positive value is read by its magnitude too). ``setpoint`` (OCPP 2.1, signed, negative:
    discharge) is what ISO 15118-20 dynamic control steers to during the period. DIN 70121
    and ISO 15118-2 use only the charging side (a discharging period is 0 W for them)."""

    start: int
    limit: float  # in the schedule's unit
    number_phases: int | None = None
    discharge_limit: float | None = None  # ISO 15118-20 bidirectional only; ignored for -2 and DIN
    setpoint: float | None = None  # ISO 15118-20 dynamic control only

    @property
    def charge_limit(self) -> float:
        """The charging limit in the schedule's unit, >= 0."""
        return max(0.0, float(self.limit))

    @property
    def discharge_magnitude(self) -> float:
        """How much the EV may discharge, in the schedule's unit, >= 0 (0: no discharge)."""
        by_limit = -float(self.limit) if self.limit < 0 else 0.0
        by_field = abs(float(self.discharge_limit)) if self.discharge_limit is not None else 0.0
        return max(by_limit, by_field)


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


# --------------------------------------------------------------------------- #
# ISO 15118-20                                                                 #
# --------------------------------------------------------------------------- #

#: ISO 15118-20 allows up to three ScheduleTuples, up to 1024 entries in each list
_ISO20_MAX_TUPLES = 3
_ISO20_MAX_ENTRIES = 1024
_ISO20_MAX_TUPLE_ID = 4294967295
_INT8 = (-128, 127)


@lru_cache(maxsize=4096)
def _rational(value: float, toward_zero: bool) -> tuple[int, int]:
    """(exponent, value): whole numbers that fit an int16 as themselves (exponent 0, as the
    captured chargers send them); others with the smallest exponent whose scaled value fits."""
    if not math.isfinite(value):
        return 0, 0
    if value == int(value) and -_INT16_MAX - 1 <= value <= _INT16_MAX:
        return 0, int(value)
    for exponent in range(-3, 10):
        scaled = value / (10.0**exponent)
        v = math.trunc(scaled + (1e-9 if scaled > 0 else -1e-9)) if toward_zero else round(scaled)
        if -_INT16_MAX - 1 <= v <= _INT16_MAX:
            return exponent, int(v)
    return 9, (_INT16_MAX if value > 0 else -_INT16_MAX - 1)


def rational_number(value: float, *, toward_zero: bool = False) -> iso20.RationalNumber:
    """``value`` as an ISO 15118-20 ``RationalNumber`` (value x 10^exponent, value an int16).
    ``toward_zero`` for limits: never round a limit up, in either direction (a discharge
    limit of -7000.5 W becomes -7000 W); otherwise to nearest (measurements). The object may
    be shared between messages (the charge loop repeats the same values): never mutate it."""
    return _rational_number(float(value), toward_zero)


@lru_cache(maxsize=4096)
def _rational_number(value: float, toward_zero: bool) -> iso20.RationalNumber:
    exponent, v = _rational(value, toward_zero)
    return iso20.RationalNumber(exponent=exponent, value=v)


def from_rational(r: object | None) -> float | None:
    """An ISO 15118-20 ``RationalNumber`` as a float; ``None`` stays ``None``."""
    if r is None:
        return None
    return r.value * (10.0 ** r.exponent)  # type: ignore[attr-defined]


def period_at(schedule: ChargingSchedule, t: float) -> SchedulePeriod | None:
    """The period of ``schedule`` in force ``t`` seconds after it started (``None`` before
    its first period or after its ``duration``)."""
    if schedule.duration is not None and t >= schedule.duration:
        return None
    current = None
    for p in sorted(schedule.periods, key=lambda p: p.start):
        if p.start <= t:
            current = p
        else:
            break
    return current


def has_discharge(schedule: ChargingSchedule) -> bool:
    """Whether any period lets the EV discharge (or steers it to)."""
    return any(p.discharge_magnitude > 0 or (p.setpoint is not None and p.setpoint < 0) for p in schedule.periods)


@dataclass(frozen=True, slots=True)
class Iso20Period:
    """One supporting point of a -20 tuple before it is written: from ``start`` for
    ``duration`` seconds, charging up to ``charge_w`` and discharging up to ``discharge_w``
    (a magnitude)."""

    start: int
    duration: int
    charge_w: float
    discharge_w: float


def plan_iso20_periods(
    schedule: ChargingSchedule,
    *,
    horizon: int,
    budget: int,
    bpt: bool,
    voltage_v: float,
    phases: int,
    fallback_charge_w: float,
    fallback_discharge_w: float,
) -> list[Iso20Period]:
    """The supporting points of ``schedule`` up to ``horizon``: every period (at most
    ``budget``, the tail folded to its lowest charge limit and smallest discharge), each
    with its duration. Without ``bpt`` nothing discharges."""
    budget = max(1, budget)
    horizon = max(1, horizon)
    points: dict[int, tuple[float, float]] = {}
    for p in sorted(schedule.periods, key=lambda p: p.start):
        if p.start < 0:
            continue
        phases_p = p.number_phases if p.number_phases else phases
        charge = _power_w(p.charge_limit, schedule.unit, voltage_v, phases_p)
        discharge = _power_w(p.discharge_magnitude, schedule.unit, voltage_v, phases_p) if bpt else 0.0
        points[int(p.start)] = (charge, discharge)  # a later duplicate wins
    fallback = (max(0.0, fallback_charge_w), max(0.0, fallback_discharge_w) if bpt else 0.0)
    starts = sorted(points)
    if not starts or starts[0] > 0:
        points[0] = fallback  # OCPP relative schedules start at 0; the station's own limits until then
    if schedule.duration is not None and 0 < schedule.duration < horizon:
        points = {s: v for s, v in points.items() if s < schedule.duration}
        points[int(schedule.duration)] = fallback
    items = [(s, v) for s, v in sorted(points.items()) if s < horizon]

    def lowest(tail: list) -> tuple:
        return (tail[0][0], (min(v[0] for _, v in tail), min(v[1] for _, v in tail)))

    items = _fold(items, budget, lowest)
    out = []
    for i, (start, (charge, discharge)) in enumerate(items):
        end = items[i + 1][0] if i + 1 < len(items) else horizon
        out.append(Iso20Period(start, max(1, end - start), charge, discharge))
    return out


def _iso20_budgets(max_points: int | None, bpt: bool, price_entries: int) -> tuple[int, int]:
    """(power budget per list, price budget) for one tuple under MaximumSupportingPoints."""
    if max_points is None or max_points <= 0:
        return _ISO20_MAX_ENTRIES, min(price_entries, _ISO20_MAX_ENTRIES)
    lists = 2 if bpt else 1
    price = min(price_entries, max(1, max_points // (lists + 1))) if price_entries else 0
    return max(1, (max_points - price) // lists), price


def _iso20_tuple_ids(schedules) -> list[int]:
    ids = [s.id for s in schedules[:_ISO20_MAX_TUPLES]]
    if all(1 <= i <= _ISO20_MAX_TUPLE_ID for i in ids) and len(set(ids)) == len(ids):
        return ids
    return list(range(1, len(ids) + 1))


def to_iso20_schedule_tuples(
    schedules: tuple[ChargingSchedule, ...] | list[ChargingSchedule],
    *,
    max_supporting_points: int | None,
    departure_time: int | None,
    bpt: bool,
    voltage_v: float,
    phases: int,
    fallback_charge_w: float,
    fallback_discharge_w: float,
    time_anchor: int,
) -> list[iso20.ScheduleTuple]:
    """Up to three ISO 15118-20 ScheduleTuples (the first three schedules): each with every
    period up to the horizon (DepartureTime, or 24 h) as a PowerScheduleEntry within
    ``max_supporting_points``, a DischargingSchedule when ``bpt``, and a PriceLevelSchedule
    when the schedule has a tariff with price levels. ``time_anchor``: unix seconds at which
    the schedules start (now)."""
    horizon = _horizon(departure_time)
    if not schedules:
        schedules = [ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, fallback_charge_w),))]
    out = []
    for schedule, tuple_id in zip(schedules, _iso20_tuple_ids(schedules)):
        levels = [e for e in (schedule.tariff.entries if schedule.tariff else ()) if e.price_level is not None and 0 <= e.start < horizon]
        power_budget, price_budget = _iso20_budgets(max_supporting_points, bpt, len(levels))
        periods = plan_iso20_periods(
            schedule, horizon=horizon, budget=min(power_budget, _ISO20_MAX_ENTRIES), bpt=bpt, voltage_v=voltage_v,
            phases=phases, fallback_charge_w=fallback_charge_w, fallback_discharge_w=fallback_discharge_w,
        )
        charging = iso20.ChargingSchedule(
            power_schedule=iso20.PowerSchedule(
                time_anchor=time_anchor,
                power_schedule_entries=iso20.PowerScheduleEntryList(power_schedule_entry=[
                    iso20.PowerScheduleEntry(duration=p.duration, power=rational_number(p.charge_w, toward_zero=True))
                    for p in periods
                ]),
            ),
            price_level_schedule=_iso20_price_levels(schedule, levels, horizon, price_budget, time_anchor) if price_budget else None,
        )
        discharging = None
        if bpt:
            discharging = iso20.ChargingSchedule(
                power_schedule=iso20.PowerSchedule(
                    time_anchor=time_anchor,
                    power_schedule_entries=iso20.PowerScheduleEntryList(power_schedule_entry=[
                        iso20.PowerScheduleEntry(duration=p.duration, power=rational_number(-p.discharge_w, toward_zero=True))
                        for p in periods
                    ]),
                ),
            )
        out.append(iso20.ScheduleTuple(schedule_tuple_id=tuple_id, charging_schedule=charging, discharging_schedule=discharging))
    return out


def _iso20_price_levels(schedule: ChargingSchedule, levels: list, horizon: int, budget: int, time_anchor: int):
    tariff = schedule.tariff
    planned = _plan_tariff(Tariff(tariff.id, tuple(levels), tariff.description, tariff.num_price_levels), horizon, budget, horizon)
    if not planned:
        return None
    entries = []
    for i, (e, _) in enumerate(planned):
        end = planned[i + 1][0].start if i + 1 < len(planned) else horizon
        entries.append(iso20.PriceLevelScheduleEntry(duration=max(1, end - e.start), price_level=max(0, min(255, e.price_level or 0))))
    used = {e.price_level for e in entries}
    count = tariff.num_price_levels if tariff.num_price_levels is not None else max(used) + 1
    return iso20.PriceLevelSchedule(
        time_anchor=time_anchor,
        price_schedule_id=max(1, min(_ISO20_MAX_TUPLE_ID, tariff.id)),
        price_schedule_description=(tariff.description or None) and tariff.description[:160],
        number_of_price_levels=max(0, min(255, count)),
        price_level_schedule_entries=iso20.PriceLevelScheduleEntryList(price_level_schedule_entry=entries),
    )
