"""Power control in the ISO 15118-20 charge loop, as pure functions: which power may flow now,
what dynamic control steers to, and how a scheduled DC target is held within the limits.

Rules of this module:

- Signs as OCPP and ``pnc_bridge.secc.effects``: positive power and current flow into the
  EV, negative out of it. Limits are magnitudes (>= 0).
- The **window** is what may flow now, ``lo <= 0 <= hi``: the charging side is the lowest of
  the EV's maximum charge power, the EVSE's and the schedule's limit of the moment; the
  discharging side likewise, and 0 without BPT (an EV or service that cannot discharge
  never does). A missing value does not limit, except that discharging needs a permission:
  the schedule period's discharge limit, or an order (a negative setpoint of the period,
  or a setpoint pushed into the session). Without either, the EV only charges (the safe
  default when the CSMS sent nothing).
- **Dynamic control** steers to, in this order: a setpoint pushed into the session (until it
  expires), the schedule period's setpoint, the schedule period's charging limit (no
  setpoint: charge as much as allowed, never discharge), or the window's top when there is
  no schedule. The result is clamped into the window; a request outside it is reported as
  clamped so the session can log it (it is never sent to the EV unclamped).
- **Scheduled DC**: the EV's EVTargetCurrent is clamped into the EVSE's current limits both
  ways and the window (as a current at the EV's voltage); the LimitAchieved flags say which
  limit held it, as CurrentDemandRes does in ISO 15118-2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pnc_bridge.secc._common import EvseStatus
from pnc_bridge.secc.schedule import ChargingSchedule, LimitUnit, SchedulePeriod

__all__ = ["DcTarget", "EvLimits", "Steer", "Window", "dc_scheduled_target", "evse_charge_limit_w", "steer", "window"]

_INF = math.inf


@dataclass(frozen=True, slots=True)
class EvLimits:
    """The EV's limits as it last sent them (ChargeParameterDiscovery, then every charge-loop
    request that carries them). Magnitudes; ``None``: not given."""

    max_charge_w: float | None = None
    min_charge_w: float | None = None
    max_discharge_w: float | None = None
    min_discharge_w: float | None = None
    max_charge_a: float | None = None
    min_charge_a: float | None = None
    max_discharge_a: float | None = None
    min_discharge_a: float | None = None
    max_voltage_v: float | None = None
    min_voltage_v: float | None = None

    def merged(self, **values: float | None) -> "EvLimits":
        """These limits with the given ones replaced where they are not ``None`` (the same
        object when nothing changes, as in a steady charge loop)."""
        changed = {k: v for k, v in values.items() if v is not None and getattr(self, k) != v}
        if not changed:
            return self
        kept = {k: getattr(self, k) for k in self.__slots__}  # type: ignore[attr-defined]
        kept.update(changed)
        return EvLimits(**kept)


@dataclass(frozen=True, slots=True)
class Window:
    lo_w: float  # <= 0: the most that may be discharged, negative
    hi_w: float  # >= 0: the most that may be charged

    def clamp(self, power_w: float) -> float:
        return min(self.hi_w, max(self.lo_w, power_w))


def _cap(*values: float | None) -> float:
    present = [abs(v) for v in values if v is not None]
    return min(present) if present else _INF


def evse_charge_limit_w(status: EvseStatus, dc: bool, phases: int) -> float:
    """The EVSE's own charging limit in W (AC: also its current at nominal voltage)."""
    if dc:
        return status.max_power_w
    return min(status.max_power_w, status.max_current_a * status.nominal_voltage_v * phases)


def _period_w(value: float, schedule: ChargingSchedule, period: SchedulePeriod, voltage_v: float, phases: int) -> float:
    if schedule.unit is LimitUnit.W:
        return value
    return value * voltage_v * (period.number_phases or phases)


def window(
    ev: EvLimits,
    status: EvseStatus,
    *,
    dc: bool,
    bpt: bool,
    phases: int,
    voltage_v: float,
    schedule: ChargingSchedule | None,
    period: SchedulePeriod | None,
    discharge_ordered: bool = False,
) -> Window:
    """What may flow now (see the module rules). Discharging needs a permission: the
    schedule period's discharge limit (``discharge_limit``, or a negative ``limit``), or an
    order to discharge: the period's own negative setpoint, or ``discharge_ordered`` (a
    setpoint pushed into the session). An order without an explicit limit is bounded by
    the EV and the EVSE only; an explicit limit bounds it (OCPP 2.1: following a setpoint
    stays within ``limit`` and ``dischargeLimit``)."""
    charge_schedule = discharge_schedule = None
    if schedule is not None and period is not None:
        charge_schedule = _period_w(period.charge_limit, schedule, period, voltage_v, phases)
        explicit = period.discharge_limit is not None or period.limit < 0
        ordered = discharge_ordered or (period.setpoint is not None and period.setpoint < 0)
        if explicit:
            discharge_schedule = _period_w(period.discharge_magnitude, schedule, period, voltage_v, phases)
        elif not ordered:
            discharge_schedule = 0.0
    elif not discharge_ordered:
        discharge_schedule = 0.0
    hi = _cap(ev.max_charge_w, evse_charge_limit_w(status, dc, phases), charge_schedule)
    if dc and voltage_v > 0:
        hi = min(hi, _cap(status.max_current_a, ev.max_charge_a) * voltage_v)
    lo = 0.0
    if bpt:
        magnitude = _cap(ev.max_discharge_w, status.max_discharge_power_w, discharge_schedule)
        if dc and voltage_v > 0:
            magnitude = min(magnitude, _cap(status.max_discharge_current_a, ev.max_discharge_a) * voltage_v)
        lo = -magnitude
    hi = 0.0 if not math.isfinite(hi) else max(0.0, hi)
    lo = 0.0 if not math.isfinite(lo) else min(0.0, lo)
    return Window(lo, hi)


@dataclass(frozen=True, slots=True)
class Steer:
    """What dynamic control sends: ``target_w`` (within the window), what was asked for and
    by whom (``source``: ``setpoint``, ``schedule``, ``limit``), and whether it was clamped."""

    target_w: float
    requested_w: float
    source: str

    @property
    def clamped(self) -> bool:
        return abs(self.target_w - self.requested_w) > 1e-6


def steer(
    win: Window,
    *,
    setpoint_w: float | None,
    schedule: ChargingSchedule | None,
    period: SchedulePeriod | None,
    voltage_v: float,
    phases: int,
) -> Steer:
    """The dynamic-control target (see the module rules)."""
    if setpoint_w is not None:
        requested, source = float(setpoint_w), "setpoint"
    elif schedule is not None and period is not None and period.setpoint is not None:
        requested, source = _period_w(period.setpoint, schedule, period, voltage_v, phases), "schedule"
    else:
        requested, source = win.hi_w, "limit"
    return Steer(win.clamp(requested), requested, source)


@dataclass(frozen=True, slots=True)
class DcTarget:
    current_a: float
    current_limit: bool
    power_limit: bool
    voltage_limit: bool


def dc_scheduled_target(
    target_current_a: float, target_voltage_v: float, win: Window, status: EvseStatus, *, bpt: bool
) -> DcTarget:
    """The EV's scheduled DC target held within the EVSE's limits and the window."""
    voltage = max(target_voltage_v, 1.0)
    charge_i = max(0.0, status.max_current_a)
    discharge_i = max(0.0, status.max_discharge_current_a) if bpt else 0.0
    current = min(charge_i, max(-discharge_i, target_current_a))
    current_limit = current != target_current_a
    by_power = min(win.hi_w / voltage, max(win.lo_w / voltage, current))
    power_limit = abs(by_power - current) > 1e-9
    return DcTarget(by_power, current_limit, power_limit, target_voltage_v >= status.max_voltage_v)
