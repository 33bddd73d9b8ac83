"""Session data of an ISO 15118-20 session core: the shared :class:`Context` plus what -20 adds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc._common import PowerSetpoint
from pnc_bridge.secc._core import Context
from pnc_bridge.secc.effects import EnergyService
from pnc_bridge.secc.iso20._control import EvLimits, Steer
from pnc_bridge.secc.iso20._services import ParameterSetInfo
from pnc_bridge.secc.schedule import ChargingSchedule

__all__ = ["Iso20Context"]


@dataclass(slots=True)
class Iso20Context(Context):
    dc: bool = True  # from the handshake: -20:DC or -20:AC
    evccid: str = ""
    offered_auth: tuple[m.Authorization, ...] = ()
    offered_services: tuple[EnergyService, ...] = ()
    ev_services: tuple[EnergyService, ...] = ()  # the EV's SupportedServiceIDs
    service: EnergyService | None = None
    parameter_set: ParameterSetInfo | None = None
    ev_limits: EvLimits = field(default_factory=EvLimits)
    cpd_target_soc: int | None = None
    schedules: tuple[ChargingSchedule, ...] = ()  # as the bridge gave them
    tuple_schedules: dict[int, ChargingSchedule] = field(default_factory=dict)  # ScheduleTupleID -> schedule
    schedule_tuples: list[Any] = field(default_factory=list)  # the ScheduleTuples sent
    schedule_t0: float | None = None  # monotonic time the schedules started (ScheduleExchange Finished)
    setpoint: PowerSetpoint | None = None
    setpoint_at: float | None = None
    standby: bool = False
    last_steer: Steer | None = None
    clamp_logged: tuple | None = None
    soc: int | None = None
    received_receipts: int = 0
