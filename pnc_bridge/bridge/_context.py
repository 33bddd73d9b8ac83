"""What the bridge knows about one EVSE between effects: its driver, its transaction
tracker, the live SECC connection and what the CSMS said for it.

Rules of this module:

- One :class:`EvseContext` per EVSE, owned by the service, shared by the ports (PKI, OCPP,
  EVSE) and the V2G endpoint; nothing in it does I/O.
- Notifications that become OCPP messages run one after the other per EVSE
  (:meth:`EvseContext.in_order`), in the order the session emitted them: the adapter starts
  one task per effect, in order, and each takes the EVSE's FIFO lock before its first await.
- ``changed()`` wakes everything waiting for news about this EVSE (a remote start, a new
  charging profile) through :meth:`EvseContext.wait_for`.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from pnc_bridge.bridge._transactions import TransactionPoints, TransactionTracker
from pnc_bridge.config import EvseSection
from pnc_bridge.evse import EvseDriver
from pnc_bridge.secc._adapter import ResumeSlot

__all__ = ["EvseContext", "RemoteStart"]


@dataclass(frozen=True)
class RemoteStart:
    """A RequestStartTransaction the CSMS accepted for this EVSE, waiting for an EV (F01/F02)."""

    id_token: dict[str, Any]
    remote_start_id: int


@dataclass
class EvseContext:
    evse_id: int
    section: EvseSection
    driver: EvseDriver
    points: TransactionPoints
    connector_id: int = 1
    tracker: TransactionTracker = field(init=False)
    resume: ResumeSlot = field(default_factory=ResumeSlot)
    #: the SECC adapter of the live EV connection, if any
    adapter: Any = None
    #: the session's idToken (eMAID, EIM token, remote start) for the TransactionEvents
    token: dict[str, Any] | None = None
    remote_start: RemoteStart | None = None
    remote_start_id: int | None = None
    transaction_id: str | None = None
    soc: int | None = None
    isolation: Any = None
    #: the EVSE's output contactors are closed (set by the EVSE port)
    output_closed: bool = False
    #: counts ChargingProfilesChanged for this EVSE (GetChargingSchedule waits for a change)
    profile_generation: int = 0
    #: the CSMS sent a new profile during the charge loop; the next GetChargingSchedule
    #: (renegotiation=True) takes the installed profiles without asking again
    renegotiation_requested: bool = False
    #: a remote stop or deauthorization ended the authorization; its cause wins over the EV's
    stop_cause: str | None = None
    #: the driver's control pilot said the EV left (CP state A) or failed (E/F): the session
    #: ends as EVDeparted rather than a lost connection
    departed: bool = False
    meter_task: asyncio.Task | None = None
    #: the CSMS connection dropped and the grace time passed: the session was renegotiated to
    #: charge-only limits (docs/bridge.md, V2X fallback); renegotiated again when it is back
    v2x_fallback: bool = False
    fallback_task: asyncio.Task | None = None
    #: re-pushes the CSMS's setpoint (OCPP 2.1 Dynamic profile) before it expires in the SECC
    setpoint_task: asyncio.Task | None = None
    _order: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition, repr=False)

    def __post_init__(self) -> None:
        self.tracker = TransactionTracker(self.points)

    @property
    def simulated(self) -> bool:
        """The driver is the simulator: the bridge plays the EV's side of the CP line."""
        return hasattr(self.driver, "plug_in")

    @contextlib.asynccontextmanager
    async def in_order(self) -> AsyncIterator[None]:
        async with self._order:
            yield

    async def changed(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float | None) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every ``changed()``); returns its
        value, or the falsy value when ``timeout`` passed."""
        async def wait() -> Any:
            async with self._changed:
                while not (value := predicate()):
                    await self._changed.wait()
                return value

        try:
            return await asyncio.wait_for(wait(), timeout)
        except asyncio.TimeoutError:
            return predicate()

    def session_ended(self) -> None:
        """The EV left: forget what belonged to its session."""
        self.token = None
        self.remote_start_id = None
        self.soc = None
        self.isolation = None
        self.renegotiation_requested = False
        self.stop_cause = None
        self.departed = False
