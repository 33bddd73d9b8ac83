"""Smart charging: charging-profile checks, stacking and the composite schedule (part 2, K).

Rules of this module:

- Pure functions over ``ChargingProfileType`` models; time (``now``, UTC) is an argument.
  The station stores the accepted profiles and calls ``composite_schedule``.
- ``check_profile`` applies the K01 rules a station can check and returns the status and
  reason code (Appendix 5) to answer SetChargingProfile with.
- ``composite_schedule`` follows part 2 K 3.4/3.5: per purpose the valid profile with the
  highest stackLevel that has a period at that time leads; a TxProfile overrules the
  TxDefaultProfile; the result is the lowest limit of ChargingStationMaxProfile,
  ChargingStationExternalConstraints and Tx(Default)Profile (K08.FR.04). Limits in another
  unit are converted with the nominal line voltage and the number of phases (K01.FR.50).
  Where no profile limits, the EVSE's own maximum applies.
- Both power directions (OCPP 2.1 V2X, and the 2.0.1 convention of this station that a
  negative ``limit`` is a discharge period): discharge is allowed only where the leading
  Tx(Default)Profile period allows it (a negative limit, ``dischargeLimit`` or a negative
  ``setpoint``), and is bounded by every leading ``dischargeLimit``, by the EVSE's own
  discharge maximum and by the EV's (``EvChargingNeeds``; an EV without BPT gets none).
  A discharge period the EV or EVSE cannot follow becomes 0 (no transfer), never charging.
- Profiles are OCPP 2.1 ``ChargingProfileType`` models (the station form); 2.0.1 profiles
  are lifted to it when they arrive (``_versions.lift``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable

__all__ = [
    "StoredProfile",
    "ProfileContext",
    "check_profile",
    "matches_criteria",
    "composite_schedule",
    "RECURRENCE_SECONDS",
]

#: RecurrencyKindEnumType -> period length.
RECURRENCE_SECONDS = {"Daily": 86_400, "Weekly": 7 * 86_400}

_PURPOSE_ORDER = ("ChargingStationMaxProfile", "ChargingStationExternalConstraints", "TxDefaultProfile", "TxProfile")


@dataclass(frozen=True)
class StoredProfile:
    """An installed charging profile and the EVSE it was set for (0 = the station)."""

    evse_id: int
    profile: Any  # generated ChargingProfileType (v201)

    @property
    def id(self) -> int:
        return int(self.profile.id)

    @property
    def purpose(self) -> str:
        return _value(self.profile.charging_profile_purpose)

    @property
    def stack_level(self) -> int:
        return int(self.profile.stack_level)


@dataclass(frozen=True)
class ProfileContext:
    """What ``check_profile`` needs to know about the station."""

    evse_ids: frozenset[int]
    #: evse id -> the transaction id running on it
    transactions: dict[int, str]
    supported_units: frozenset[str]
    max_stack_level: int
    periods_per_schedule: int
    max_profiles: int
    phase_switching_supported: bool = False
    dc_evses: frozenset[int] = frozenset()
    #: transactions for which NotifyEVChargingNeeds was sent (ISO 15118, K01.FR.34)
    iso15118_transactions: frozenset[str] = frozenset()
    #: evse id -> the most it can discharge (W); EVSEs not listed cannot discharge
    discharge_evses: dict[int, float] | None = None
    #: evse id -> the needs of the EV on it (``_v2x.EvChargingNeeds``), when known
    ev_needs: dict[int, Any] | None = None
    #: evse id -> the most it can charge (W)
    evse_max_w: dict[int, float] | None = None
    nominal_voltage: dict[int, float] | None = None


def _value(x: Any) -> str:
    return x.value if hasattr(x, "value") else str(x)


def _validity_overlaps(a: Any, b: Any) -> bool:
    far_past = datetime.min.replace(tzinfo=timezone.utc)
    far_future = datetime.max.replace(tzinfo=timezone.utc)
    a_from, a_to = a.valid_from or far_past, a.valid_to or far_future
    b_from, b_to = b.valid_from or far_past, b.valid_to or far_future
    return a_from < b_to and b_from < a_to


def check_profile(evse_id: int, profile: Any, installed: Iterable[StoredProfile], ctx: ProfileContext) -> tuple[str, str | None]:
    """(ChargingProfileStatusEnumType value, reason code) for SetChargingProfile."""
    purpose = _value(profile.charging_profile_purpose)
    kind = _value(profile.charging_profile_kind)
    installed = list(installed)
    same_id = next((p for p in installed if p.id == profile.id), None)

    if purpose == "ChargingStationExternalConstraints":
        return "Rejected", "InvalidProfile"  # K01.FR.22
    if same_id is not None and same_id.purpose == "ChargingStationExternalConstraints":
        return "Rejected", "InvalidProfile"  # K01.FR.05: those cannot be replaced
    if evse_id != 0 and evse_id not in ctx.evse_ids:
        return "Rejected", "UnknownEvse"  # K01.FR.28
    if purpose == "ChargingStationMaxProfile":
        if evse_id != 0:
            return "Rejected", "InvalidProfile"  # part 2 K 3.2: only at evseId 0
        if kind == "Relative":
            return "Rejected", "InvalidProfile"  # K01.FR.38
    if purpose == "TxProfile":
        if evse_id == 0:
            return "Rejected", "InvalidProfile"  # K01.FR.16
        if profile.transaction_id is None:
            return "Rejected", "TxNotFound"  # K01.FR.03
        if ctx.transactions.get(evse_id) != profile.transaction_id:
            return "Rejected", "TxNotFound"  # K01.FR.09, K01.FR.33
    if profile.stack_level < 0 or profile.stack_level > ctx.max_stack_level:
        return "Rejected", "InvalidStackLevel"
    if kind in ("Absolute", "Recurring") and any(s.start_schedule is None for s in profile.charging_schedule):
        return "Rejected", "InvalidSchedule"  # K01.FR.40
    if kind == "Relative" and any(s.start_schedule is not None for s in profile.charging_schedule):
        return "Rejected", "InvalidSchedule"  # K01.FR.41
    if kind == "Recurring" and profile.recurrency_kind is None:
        return "Rejected", "InvalidProfile"
    if profile.valid_from and profile.valid_to and profile.valid_to <= profile.valid_from:
        return "Rejected", "InvalidProfile"
    if purpose not in _PURPOSE_ORDER:
        return "Rejected", "InvalidProfile"  # PriorityCharging, LocalGeneration: not supported here
    if kind == "Dynamic":
        if purpose not in ("TxProfile", "TxDefaultProfile"):
            return "Rejected", "InvalidProfile"
        if any(len(s.charging_schedule_period) != 1 for s in profile.charging_schedule):
            return "Rejected", "InvalidSchedule"  # this station: a Dynamic profile has one period, updated in place
    if len(profile.charging_schedule) > 1 and not (
        purpose == "TxProfile" and profile.transaction_id in ctx.iso15118_transactions
    ):
        return "Rejected", "InvalidSchedule"  # K01.FR.34
    for schedule in profile.charging_schedule:
        unit = _value(schedule.charging_rate_unit)
        if unit not in ctx.supported_units:
            return "Rejected", "UnsupportedRateUnit"  # K01.FR.26
        periods = schedule.charging_schedule_period
        if not periods or periods[0].start_period != 0:
            return "Rejected", "InvalidSchedule"  # K01.FR.31
        if any(b.start_period <= a.start_period for a, b in zip(periods, periods[1:])):
            return "Rejected", "InvalidSchedule"  # K01.FR.35
        if len(periods) > ctx.periods_per_schedule:
            return "Rejected", "InvalidSchedule"
        for period in periods:
            verdict = _check_v2x_period(evse_id, purpose, unit, period, ctx)
            if verdict is not None:
                return verdict
            if period.phase_to_use is not None and evse_id not in ctx.dc_evses:
                if period.number_phases not in (None, 1):
                    return "Rejected", "InvalidSchedule"  # K01.FR.19
                if not ctx.phase_switching_supported:
                    return "Rejected", "InvalidSchedule"  # K01.FR.48
    # Duplicates (K01.FR.06, K01.FR.39, K01.FR.52/53); a profile with the same id is replaced.
    for other in installed:
        if other.id == profile.id or other.purpose != purpose or other.stack_level != profile.stack_level:
            continue
        if purpose == "TxProfile":
            if other.profile.transaction_id == profile.transaction_id:
                return "Rejected", "DuplicateProfile"
            continue
        same_place = other.evse_id == evse_id or (
            purpose == "TxDefaultProfile" and (other.evse_id == 0 or evse_id == 0)
        )
        if same_place and (purpose == "TxDefaultProfile" or _validity_overlaps(other.profile, profile)):
            return "Rejected", "DuplicateProfile"
    if same_id is None and len(installed) >= ctx.max_profiles:
        return "Rejected", "TooManyElements"
    return "Accepted", None


#: OperationModeEnumType values this station follows; the others need an external setpoint
#: source or frequency control that is not built (answered Rejected, InvalidSchedule).
SUPPORTED_OPERATION_MODES = frozenset({"Idle", "ChargingOnly", "CentralSetpoint"})


def period_discharge_request(period: Any) -> bool:
    """The period asks the EV to discharge: a negative limit or a negative setpoint."""
    limit, setpoint = getattr(period, "limit", None), getattr(period, "setpoint", None)
    return (limit is not None and limit < 0) or (setpoint is not None and setpoint < 0)


def value_range(evse_id: int, unit: str, ctx: ProfileContext) -> tuple[float, float]:
    """(lowest, highest) signed value of ``unit`` the EVSE and its EV can follow."""
    inf = float("inf")
    low, high = -inf, inf
    discharge_w = (ctx.discharge_evses or {}).get(evse_id)
    if evse_id in (ctx.evse_max_w or {}):
        max_w = ctx.evse_max_w[evse_id]  # type: ignore[index]
        volts = (ctx.nominal_voltage or {}).get(evse_id) or 1.0
        high = max_w if unit == "W" else max_w / volts
        low = -(discharge_w or 0.0) if unit == "W" else -(discharge_w or 0.0) / volts
    needs = (ctx.ev_needs or {}).get(evse_id)
    if needs is not None:
        ev_low, ev_high = needs.charge_range(unit)
        if ev_low is not None:
            low = max(low, ev_low)
        if ev_high is not None:
            high = min(high, ev_high)
    return low, high


def _check_v2x_period(evse_id: int, purpose: str, unit: str, period: Any, ctx: ProfileContext) -> tuple[str, str] | None:
    limit = period.limit
    mode = _value(period.operation_mode) if getattr(period, "operation_mode", None) is not None else None
    setpoint = getattr(period, "setpoint", None)
    if mode is not None and mode not in SUPPORTED_OPERATION_MODES:
        return "Rejected", "InvalidSchedule"
    if mode == "CentralSetpoint" and setpoint is None:
        return "Rejected", "InvalidSchedule"
    if limit is None and setpoint is None and mode not in ("Idle",):
        return "Rejected", "InvalidSchedule"  # without a limit this station needs a setpoint
    if setpoint is not None and evse_id != 0:
        low, high = value_range(evse_id, unit, ctx)
        if not low <= setpoint <= high and (setpoint >= 0 or _can_discharge(evse_id, ctx)):
            return "Rejected", "SetpointOutOfRange"
    if not period_discharge_request(period):
        return None
    if purpose not in ("TxProfile", "TxDefaultProfile"):
        return "Rejected", "InvalidSchedule"  # discharge is a transaction's business, not a station cap
    if mode in ("ChargingOnly", "Idle"):
        return "Rejected", "InvalidSchedule"
    if evse_id != 0 and ctx.discharge_evses is not None and not ctx.discharge_evses.get(evse_id):
        return "Rejected", "NoBidirectional"  # the EVSE cannot discharge
    needs = (ctx.ev_needs or {}).get(evse_id)
    if evse_id != 0 and needs is not None and not needs.bidirectional:
        return "Rejected", "NoBidirectional"  # the EV did not ask for BPT
    return None


def _can_discharge(evse_id: int, ctx: ProfileContext) -> bool:
    needs = (ctx.ev_needs or {}).get(evse_id)
    evse_ok = ctx.discharge_evses is None or bool(ctx.discharge_evses.get(evse_id))
    return evse_ok and (needs is None or needs.bidirectional)


def matches_criteria(
    stored: StoredProfile,
    *,
    evse_id: int | None = None,
    profile_ids: Iterable[int] | None = None,
    purpose: str | None = None,
    stack_level: int | None = None,
    limit_sources: Iterable[str] | None = None,
) -> bool:
    """The filter of GetChargingProfiles (K09.FR.03-06) and ClearChargingProfile (K10)."""
    if evse_id is not None and stored.evse_id != evse_id:
        return False
    ids = list(profile_ids or [])
    if ids and stored.id not in ids:
        return False
    if purpose is not None and stored.purpose != purpose:
        return False
    if stack_level is not None and stored.stack_level != stack_level:
        return False
    sources = list(limit_sources or [])
    if sources:
        source = "EMS" if stored.purpose == "ChargingStationExternalConstraints" else "CSO"
        if source not in sources:
            return False
    return True


# --------------------------------------------------------------------------- composite schedule


@dataclass(frozen=True)
class _Limit:
    limit: float | None  # in the schedule's unit; None: no charge limit (2.1 setpoint modes)
    unit: str
    phases: int | None
    discharge: float | None = None  # dischargeLimit, <= 0
    setpoint: float | None = None
    mode: str | None = None


def _schedule_start(profile: Any, schedule: Any, at: datetime, relative_start: datetime) -> datetime | None:
    kind = _value(profile.charging_profile_kind)
    if kind == "Relative" or (kind == "Dynamic" and schedule.start_schedule is None):
        return relative_start
    start = schedule.start_schedule
    if start is None:
        return None
    if kind == "Recurring":
        period = RECURRENCE_SECONDS.get(_value(profile.recurrency_kind), 86_400)
        if at < start:
            return None
        cycles = math.floor((at - start).total_seconds() / period)
        return start + timedelta(seconds=cycles * period)
    return start


def _limit_at(profile: Any, at: datetime, relative_start: datetime) -> _Limit | None:
    if profile.valid_from is not None and at < profile.valid_from:  # K01.FR.36
        return None
    if profile.valid_to is not None and at >= profile.valid_to:  # K01.FR.37
        return None
    schedule = profile.charging_schedule[0]
    start = _schedule_start(profile, schedule, at, relative_start)
    if start is None or at < start:  # K01.FR.30
        return None
    elapsed = (at - start).total_seconds()
    if schedule.duration is not None and elapsed >= schedule.duration:  # K01.FR.11/12
        return None
    current = None
    for period in schedule.charging_schedule_period:
        if period.start_period <= elapsed:
            current = period
        else:
            break
    if current is None:
        return None
    return _Limit(
        None if current.limit is None else float(current.limit),
        _value(schedule.charging_rate_unit),
        current.number_phases,
        None if getattr(current, "discharge_limit", None) is None else float(current.discharge_limit),
        None if getattr(current, "setpoint", None) is None else float(current.setpoint),
        None if getattr(current, "operation_mode", None) is None else _value(current.operation_mode),
    )


def _breakpoints(profile: Any, window_start: datetime, window_end: datetime, relative_start: datetime) -> set[datetime]:
    points: set[datetime] = set()
    for t in (profile.valid_from, profile.valid_to):
        if t is not None:
            points.add(t)
    schedule = profile.charging_schedule[0]
    kind = _value(profile.charging_profile_kind)
    starts: list[datetime] = []
    if kind == "Relative" or (kind == "Dynamic" and schedule.start_schedule is None):
        starts.append(relative_start)
    elif schedule.start_schedule is not None:
        if kind == "Recurring":
            period = RECURRENCE_SECONDS.get(_value(profile.recurrency_kind), 86_400)
            first = _schedule_start(profile, schedule, max(window_start, schedule.start_schedule), relative_start)
            t = first if first is not None else schedule.start_schedule
            while t < window_end:
                starts.append(t)
                t += timedelta(seconds=period)
        else:
            starts.append(schedule.start_schedule)
    for start in starts:
        points.add(start)
        for period in schedule.charging_schedule_period:
            points.add(start + timedelta(seconds=period.start_period))
        if schedule.duration is not None:
            points.add(start + timedelta(seconds=schedule.duration))
    return {p for p in points if window_start < p < window_end}


def _convert(limit: _Limit, unit: str, voltage: float, default_phases: int, value: float | None = None) -> float:
    value = limit.limit if value is None else value
    assert value is not None
    if limit.unit == unit:
        return value
    phases = limit.phases or default_phases or 1  # K01.FR.49: AC assumes 3 phases when omitted
    factor = voltage * phases
    return value / factor if unit == "A" else value * factor


def offline_valid(profile: Any, offline_for: float | None) -> bool:
    """2.1 ``maxOfflineDuration``: the profile is not used once the station has been offline longer."""
    limit = getattr(profile, "max_offline_duration", None)
    return offline_for is None or limit is None or offline_for <= limit


def composite_schedule(
    profiles: Iterable[StoredProfile],
    *,
    evse_id: int,
    start: datetime,
    duration: int,
    unit: str,
    transaction_id: str | None = None,
    transaction_start: datetime | None = None,
    evse_max: float,
    evse_max_unit: str = "W",
    supply_phases: int = 3,
    line_voltage: float = 230.0,
    evse_max_discharge: float = 0.0,
    ev: Any = None,
    offline_for: float | None = None,
) -> dict[str, Any]:
    """A CompositeScheduleType payload (dict) for ``evse_id`` from ``start`` for ``duration`` s.

    ``transaction_id``/``transaction_start`` describe the transaction on the EVSE; without
    one the schedule is computed as if a transaction started at ``start`` (K08.FR.06).
    ``supply_phases`` 0 means a DC EVSE (phases do not apply; ``line_voltage`` is then
    the nominal DC voltage used to convert between W and A).

    ``evse_max_discharge`` (in ``evse_max_unit``) is how much the EVSE can discharge, ``ev``
    the EV's ``EvChargingNeeds`` (None: unknown, not a bound), ``offline_for`` how long the
    station has been offline (profiles past their ``maxOfflineDuration`` are left out).
    Periods carry ``limit`` (negative: a discharge period), ``dischargeLimit``,
    ``setpoint`` and ``operationMode`` in the station form (2.1 shape).
    """
    start = start.astimezone(timezone.utc).replace(microsecond=0)
    end = start + timedelta(seconds=duration)
    # startPeriod is whole seconds: a transaction that started at .5 s starts its Relative
    # profiles at the whole second (half a second early rather than a period at 0.5 s).
    relative_start = transaction_start.astimezone(timezone.utc).replace(microsecond=0) if transaction_start else start
    default_phases = supply_phases or 1
    relevant: dict[str, list[StoredProfile]] = {p: [] for p in _PURPOSE_ORDER}
    for stored in profiles:
        if not offline_valid(stored.profile, offline_for):
            continue
        purpose = stored.purpose
        if purpose == "ChargingStationMaxProfile" or (purpose == "ChargingStationExternalConstraints" and stored.evse_id == 0):
            relevant[purpose].append(stored)
        elif evse_id == 0:
            continue  # K08.FR.03: the station total is bounded by station-level profiles
        elif purpose == "TxProfile":
            if stored.evse_id == evse_id and transaction_id is not None and stored.profile.transaction_id == transaction_id:
                relevant[purpose].append(stored)
        elif stored.evse_id in (0, evse_id):
            relevant[purpose].append(stored)
    for purpose in relevant:
        relevant[purpose].sort(key=lambda p: -p.stack_level)

    points = {start}
    for stored_list in relevant.values():
        for stored in stored_list:
            points |= _breakpoints(stored.profile, start, end, relative_start)
    ordered = sorted(points)

    hardware = _Limit(evse_max, evse_max_unit, default_phases if supply_phases else None)
    hardware_discharge = _convert(hardware, unit, line_voltage, default_phases, evse_max_discharge)
    ev_low, ev_high = ev.charge_range(unit) if ev is not None else (None, None)
    periods: list[dict[str, Any]] = []
    for at in ordered:
        leading: dict[str, _Limit] = {}
        for purpose, stored_list in relevant.items():
            for stored in stored_list:  # highest stack level first
                limit = _limit_at(stored.profile, at, relative_start)
                if limit is not None:
                    leading[purpose] = limit
                    break
        if "TxProfile" in leading:
            leading.pop("TxDefaultProfile", None)  # part 2 K 3.5
        period = _combine(leading, hardware, hardware_discharge, unit, line_voltage, default_phases, ev_low, ev_high)
        period["startPeriod"] = int((at - start).total_seconds())
        if supply_phases:
            phase_values = [c.phases for c in leading.values() if c.phases]
            if phase_values:
                period["numberPhases"] = min(phase_values)
        if periods and {k: v for k, v in periods[-1].items() if k != "startPeriod"} == {
            k: v for k, v in period.items() if k != "startPeriod"
        }:
            continue
        periods.append(period)
    return {
        "evseId": evse_id,
        "duration": duration,
        "scheduleStart": start,
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": p.pop("startPeriod"), **p} for p in periods],
    }


def _combine(
    leading: dict[str, _Limit],
    hardware: _Limit,
    hardware_discharge: float,
    unit: str,
    voltage: float,
    phases: int,
    ev_low: float | None,
    ev_high: float | None,
) -> dict[str, Any]:
    """One composite period from the leading limit of each purpose (see the module rules)."""
    charge = [max(0.0, _convert(c, unit, voltage, phases)) for c in leading.values() if c.limit is not None]
    charge.append(_convert(hardware, unit, voltage, phases))
    if ev_high is not None:
        charge.append(ev_high)
    charge_max = max(0.0, min(charge))
    tx = leading.get("TxProfile") or leading.get("TxDefaultProfile")
    discharge_max = 0.0
    mode = tx.mode if tx is not None else None
    setpoint = None
    discharge_period = False
    if tx is not None and mode not in ("Idle", "ChargingOnly"):
        allowed: list[float] = []
        if tx.discharge is not None:
            allowed.append(-_convert(tx, unit, voltage, phases, tx.discharge))
        if tx.limit is not None and tx.limit < 0:
            discharge_period = True
            allowed.append(-_convert(tx, unit, voltage, phases))
        if tx.setpoint is not None and tx.setpoint < 0 and not allowed:
            allowed.append(-_convert(tx, unit, voltage, phases, tx.setpoint))
        if allowed:
            caps = [min(allowed), hardware_discharge]
            for purpose, c in leading.items():
                if purpose in ("ChargingStationMaxProfile", "ChargingStationExternalConstraints") and c.discharge is not None:
                    caps.append(-_convert(c, unit, voltage, phases, c.discharge))
            if ev_low is not None:
                caps.append(-ev_low)
            discharge_max = max(0.0, min(caps))
    if tx is not None and tx.setpoint is not None and mode != "Idle":
        setpoint = _convert(tx, unit, voltage, phases, tx.setpoint)
        setpoint = min(charge_max, max(-discharge_max, setpoint))
    if mode == "Idle":
        charge_max = 0.0
    period: dict[str, Any] = {"limit": round(-discharge_max if discharge_period else charge_max, 1)}
    if discharge_max > 0:
        period["dischargeLimit"] = round(-discharge_max, 1)
    if setpoint is not None:
        period["setpoint"] = round(setpoint, 1)
    if mode is not None:
        period["operationMode"] = mode
    return period
