"""The OCPP 2.0.1 / 2.1 charging station: connection life cycle, call scheduling, the service API.

Rules of this module:

- One task (``_run``) owns the connection: connect with the configured security profile,
  serve until the WebSocket closes, reconnect with the device-model back-off (part 4, 5.3).
  Per connection one ``RpcCore`` frames everything; a sender task keeps at most one CALL
  outstanding and picks the next one by priority:

    1. BootNotification (nothing else before it is Accepted: B01.FR.08, B02.FR.02),
    2. time-critical calls of a live EV session (Authorize, Get15118EVCertificate,
       GetCertificateStatus, NotifyEVChargingNeeds), never queued while offline,
    3. control calls (StatusNotification, NotifyReport, SignCertificate, Heartbeat...),
    4. the durable outbox (TransactionEvent, SecurityEventNotification, MeterValues,
       NotifyEVChargingSchedule), lane by lane (``_outbox``).

  so a live session waits for at most the one call in flight, never for a backlog.
- CSMS requests are answered in order by a handler task through the explicit route table
  of ``_handlers.StationHandlers``. Invalid ones are answered by the RPC core.
- Must-deliver messages are committed to SQLite before the API call returns; nothing that
  must reach the CSMS lives only in memory.
- Failures the CSMS causes are values (``CallFailed``, ``CallError``), never tracebacks;
  the loop survives any of them and logs what happened.
- The OCPP version is a property of the connection (the subprotocol the CSMS picked,
  ``ocpp_version``). Everything queued or stored is in the station form (the 2.1 shape)
  and is turned into the connection's version by ``_versions.to_version`` when it is
  sent, the one place where versions are mapped.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any, Awaitable, Callable

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from pnc_bridge.ocpp._certificates import CertificateStore
from pnc_bridge.ocpp._config import StationConfig
from pnc_bridge.ocpp._connection import ConnectFailed, NetworkProfile, backoff_delay, open_websocket
from pnc_bridge.ocpp._device_model import DeviceModel, VariableKey
from pnc_bridge.ocpp._errors import CallError, CallFailed, ErrorCode
from pnc_bridge.ocpp._events import (
    ConnectionChanged,
    MessageDiscarded,
    RegistrationChanged,
    StationEvent,
    TransactionAuthorizationChanged,
    VariableChanged,
)
from pnc_bridge.ocpp._generated import v21
from pnc_bridge.ocpp._model import OcppModel, format_datetime
from pnc_bridge.ocpp._outbox import LANES, Outbox, OutboxEntry, RetryPolicy
from pnc_bridge.ocpp._protocol import OcppProtocol, OcppVersion, protocol_for
from pnc_bridge.ocpp._rpc import (
    CallReceived,
    CallRefused,
    CallTimedOut,
    ErrorReceived,
    FrameIgnored,
    OutgoingInvalid,
    ResponseInvalid,
    ResultReceived,
    RpcCore,
)
from pnc_bridge.ocpp._smart_charging import StoredProfile
from pnc_bridge.ocpp._station_api import CRITICAL_SECURITY_EVENTS, StationApi, TransactionState
from pnc_bridge.ocpp._store import Store
from pnc_bridge.ocpp._versions import VersionMismatch, to_version
from pnc_bridge.ocpp._variables import (
    ChargingStationVars,
    ClockCtrlr,
    OCPPCommCtrlr,
    SecurityCtrlr,
    SmartChargingCtrlr,
    standard_variables,
)

__all__ = ["ChargingStation", "Priority", "TransactionState", "CRITICAL_SECURITY_EVENTS"]

log = logging.getLogger("pnc_bridge.ocpp")

#: Consecutive CALL timeouts after which the connection is dropped and re-opened; part 2
#: 3.2 advises it, as a fresh session may reach a working CSMS instance.
TIMEOUTS_BEFORE_RECONNECT = 2

#: Actions that are time-critical during a live EV session.
LIVE_ACTIONS = frozenset({"Authorize", "Get15118EVCertificate", "GetCertificateStatus", "NotifyEVChargingNeeds"})


class Priority(IntEnum):
    BOOT = 0
    LIVE = 1
    CONTROL = 2


@dataclass(order=True)
class _Queued:
    priority: int
    seq: int
    action: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False)
    future: asyncio.Future | None = field(compare=False, default=None)
    #: Allowed while Pending: sent because the CSMS asked (TriggerMessage, GetBaseReport).
    triggered: bool = field(compare=False, default=False)
    timeout: float | None = field(compare=False, default=None)
    on_result: Callable[[OcppModel], Awaitable[None] | None] | None = field(compare=False, default=None)


class _ConnectionLost(Exception):
    pass


#: Put into a pending answer when the connection goes; a value, not an exception, so
#: that an answer nobody awaits any more leaves no "exception never retrieved" behind.
_LOST = object()


@dataclass
class _Session:
    ws: ClientConnection
    core: RpcCore
    profile: NetworkProfile
    protocol: OcppProtocol
    answer: asyncio.Future | None = None
    incoming: asyncio.Queue = field(default_factory=asyncio.Queue)


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class ChargingStation(StationApi):
    """An OCPP 2.0.1 / 2.1 charging station client.

    Construct, then ``await start()`` (or ``async with``); ``await stop()`` ends it. The
    service API (authorize, start_transaction, security_event, ...) is in ``StationApi``;
    subscribe to events with ``subscribe()``. ``store`` and ``certificates`` are owned by
    the caller.
    """

    def __init__(
        self,
        config: StationConfig,
        *,
        store: Store,
        certificates: CertificateStore,
        meter_reader: Callable[[int], Awaitable[list[dict[str, Any]]]] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.certificates = certificates
        self.outbox = Outbox(store)
        self.meter_reader = meter_reader
        self._clock = clock
        self._rng = rng or random.Random()
        self._protocols = [protocol_for(s) for s in config.subprotocols]
        if not self._protocols:
            raise ValueError("at least one OCPP subprotocol must be offered")

        self._evses = {e.id: e for e in config.settings.evses}
        self._transactions: dict[str, TransactionState] = self._load_transactions()
        self._profiles: dict[int, StoredProfile] = self._load_profiles()
        self._availability: dict[str, str] = store.get_json("availability", {})
        self._connector_status: dict[tuple[int, int], str] = {
            (e.id, c.id): "Available" for e in config.settings.evses for c in e.connectors
        }
        self._status_reported: dict[tuple[int, int], str] = {}
        self.device_model = DeviceModel(
            standard_variables(config.settings, live=self._live_variables()),
            store,
            value_size=1000,
        )
        self._network_profiles: dict[int, NetworkProfile] = self._load_network_profiles()

        self._queue: list[_Queued] = []
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._registration: str | None = None
        self._boot_reason = config.boot_reason
        self._boot_not_before = 0.0
        self._last_sent = 0.0
        self._session: _Session | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._reconnect_now = False
        self._offline_since: float | None = None
        self._tls_event_reported: set[str] = set()
        self._listeners: list[Callable[[StationEvent], None]] = []
        self._subscribers: list[asyncio.Queue] = []
        self._consecutive_timeouts = 0
        self._last_good_slot: int | None = None
        self._profile_cursor = 0
        self._profile_attempts = 0
        self._cert_signing: dict[str, tuple[float, float, int, str]] = {}  # use -> (due, wait, repeats, csr)
        self._background: set[asyncio.Task] = set()
        self._outbox_dirty = True  # the outbox may hold something to send now
        self._outbox_due: float | None = None  # when the next retry in the outbox is due
        self._iso15118_needs_sent: set[str] = set()
        self._online_event = asyncio.Event()
        self._offline_since_utc: datetime | None = None  # for maxOfflineDuration (2.1)
        self._ev_needs: dict[int, Any] = {}  # evse id -> EvChargingNeeds of the EV on it
        self._allowed_energy_transfer: dict[str, tuple[str, ...]] = {}  # transaction id -> modes (2.1)
        self._dynamic_pull: dict[int, float] = {}  # Dynamic profile id -> when to pull next (loop time)

        from pnc_bridge.ocpp._handlers import StationHandlers  # the route table needs the station

        self._handlers = StationHandlers(self)
        self.device_model.on_change(self._variable_changed)

    # ================================================================== lifecycle
    async def start(self) -> None:
        """Start connecting; returns at once. Interrupted transactions are ended first."""
        if self._task is not None:
            raise RuntimeError("already started")
        self._stopping = False
        if self.config.end_interrupted_transactions:
            for tx in list(self._transactions.values()):
                log.warning("ending transaction %s left open by the previous run", tx.transaction_id)
                await self.end_transaction(tx.transaction_id, trigger_reason="AbnormalCondition", stopped_reason="PowerLoss")
        await self.security_event("StartupOfTheDevice")
        for stored in self._profiles.values():
            self.track_dynamic_pull(stored.profile)
        self._task = asyncio.create_task(self._run(), name=f"ocpp-{self.config.identity}")

    async def stop(self) -> None:
        """Close the connection cleanly and stop; queued messages stay in the outbox."""
        self._stopping = True
        self._wake()
        if self._session is not None:
            try:
                await self._session.ws.close(1000, "station stopping")
            except Exception:  # noqa: BLE001 - closing a broken socket is not an error
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        for task in list(self._background):
            task.cancel()
        self._fail_queued(lambda item: True, "Offline")

    async def __aenter__(self) -> "ChargingStation":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def online(self) -> bool:
        return self._session is not None

    @property
    def ocpp_version(self) -> OcppVersion | None:
        """The OCPP version of the live connection (the subprotocol the CSMS picked); None offline."""
        return self._session.protocol.version if self._session is not None else None

    @property
    def models(self) -> Any:
        """The generated models of the live connection's version (of the first offered one offline)."""
        protocol = self._session.protocol if self._session is not None else self._protocols[0]
        return protocol.models

    def offline_for(self) -> float | None:
        """Seconds since the connection was lost (wall clock); None while connected or before the first one."""
        if self._session is not None or self._offline_since_utc is None:
            return None
        return max(0.0, (self._clock() - self._offline_since_utc).total_seconds())

    def _sendable_versions(self, *, durable: bool) -> list[OcppProtocol]:
        """What a payload must fit: every offered version for what may wait in a queue, the
        live connection's version for a call made now."""
        if not durable and self._session is not None:
            return [self._session.protocol]
        return self._protocols

    def check_outgoing(self, action: str, payload: dict[str, Any], *, durable: bool = False) -> None:
        """Raise ``OutgoingInvalid`` unless ``payload`` (station form) can be sent in every
        version it may go out in (``_sendable_versions``)."""
        for protocol in self._sendable_versions(durable=durable):
            try:
                wire = to_version(action, "Request", payload, protocol.version)
            except VersionMismatch as exc:
                raise OutgoingInvalid(action, CallError(ErrorCode.PropertyConstraintViolation, f"{protocol.subprotocol}: {exc}")) from None
            error = protocol.check_payload(action, "Request", wire, self._field_lengths())
            if error is not None:
                if len(self._protocols) > 1:
                    error = CallError(error.code, f"{protocol.subprotocol}: {error.description}", error.details)
                raise OutgoingInvalid(action, error)

    @property
    def registration(self) -> str | None:
        """RegistrationStatusEnumType of the last BootNotificationResponse (None before one)."""
        return self._registration

    async def wait_online(self, timeout: float | None = None) -> bool:
        """Wait until connected and Accepted; False on timeout."""
        try:
            await asyncio.wait_for(self._online_event.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    # ================================================================== events
    def subscribe(self) -> asyncio.Queue:
        """A queue that receives every ``StationEvent`` from now on."""
        queue: asyncio.Queue = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    def add_listener(self, listener: Callable[[StationEvent], None]) -> None:
        """``listener(event)`` is called for every event; it must not block."""
        self._listeners.append(listener)

    def emit(self, event: StationEvent) -> None:
        for queue in self._subscribers:
            queue.put_nowait(event)
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a listener bug must not stop the station
                log.exception("event listener failed on %r", event)

    # ================================================================== generic calls
    async def call(
        self,
        request: OcppModel,
        *,
        priority: Priority | None = None,
        timeout: float | None = None,
        triggered: bool = False,
        queue_offline: bool | None = None,
    ) -> OcppModel:
        """Send ``request`` (a ``...Request`` model) and return the CSMS's response model.

        Raises ``CallFailed`` with reason ``Offline`` (not connected: live calls are not
        queued; control calls are, when ``queue_offline``), ``NotAccepted``, ``CallError``,
        ``Timeout`` or ``InvalidResponse``; ``OutgoingInvalid`` if the request does not
        match its schema.
        """
        action = request.ocpp_action
        if request.ocpp_kind != "Request" or action is None:
            raise TypeError(f"{type(request).__name__} is not an OCPP request")
        if action in LANES:
            raise ValueError(f"{action} is a must-deliver message; use the station's durable API for it")
        return await self.call_action(
            action, request.to_payload(), priority=priority, timeout=timeout, triggered=triggered, queue_offline=queue_offline
        )

    async def call_action(
        self,
        action: str,
        payload: dict[str, Any],
        *,
        priority: Priority | None = None,
        timeout: float | None = None,
        triggered: bool = False,
        queue_offline: bool | None = None,
    ) -> OcppModel:
        """``call`` for a payload in the station form (camelCase, the 2.1 shape); the
        response is a model of the connection's version."""
        if action in LANES:
            raise ValueError(f"{action} is a must-deliver message; use the station's durable API for it")
        self.check_outgoing(action, payload)
        if priority is None:
            priority = Priority.LIVE if action in LIVE_ACTIONS else Priority.CONTROL
        if queue_offline is None:
            queue_offline = priority is Priority.CONTROL
        if not queue_offline:
            if self._session is None:
                raise CallFailed(action, "Offline")
            if self._registration != "Accepted" and not triggered:
                raise CallFailed(action, "NotAccepted")
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._enqueue(_Queued(int(priority), next(self._seq), action, payload, future, triggered, timeout))
        return await future

    def send_soon(self, request: OcppModel, *, triggered: bool = False) -> asyncio.Future:
        """Queue ``request`` as a control call without waiting; failures are logged.

        ``triggered`` marks messages the CSMS asked for (TriggerMessage, reports), which
        may be sent while the registration is Pending (B02.FR.02).
        """
        action = request.ocpp_action
        if request.ocpp_kind != "Request" or action is None:
            raise TypeError(f"{type(request).__name__} is not an OCPP request")
        payload = request.to_payload()
        self.check_outgoing(action, payload)
        future: asyncio.Future = asyncio.get_running_loop().create_future()

        def done(f: asyncio.Future) -> None:
            if not f.cancelled() and f.exception() is not None:
                log.warning("%s was not delivered: %s", action, f.exception())

        future.add_done_callback(done)
        self._enqueue(_Queued(int(Priority.CONTROL), next(self._seq), action, payload, future, triggered))
        return future

    def _enqueue(self, item: _Queued) -> None:
        heapq.heappush(self._queue, item)
        self._wake()

    def _wake(self, *, outbox: bool = False) -> None:
        if outbox:
            self._outbox_dirty = True
        self._wakeup.set()

    def _fail_queued(self, predicate: Callable[[_Queued], bool], reason: str) -> None:
        keep = []
        for item in self._queue:
            if predicate(item):
                if item.future is not None and not item.future.done():
                    item.future.set_exception(CallFailed(item.action, reason))
            else:
                keep.append(item)
        heapq.heapify(keep)
        self._queue = keep

    # ================================================================== run loop
    async def _run(self) -> None:
        failures = 0
        immediate = True
        while not self._stopping:
            if not immediate:
                delay = backoff_delay(
                    failures,
                    wait_minimum=float(self.device_model.get_int(OCPPCommCtrlr.RetryBackOffWaitMinimum)),
                    random_range=float(self.device_model.get_int(OCPPCommCtrlr.RetryBackOffRandomRange)),
                    repeat_times=self.device_model.get_int(OCPPCommCtrlr.RetryBackOffRepeatTimes),
                    rng=self._rng,
                )
                log.info("reconnecting in %.1f s", delay)
                await asyncio.sleep(delay)
            immediate = False
            profile = self._choose_profile()
            if profile is None:
                log.error("no usable network connection profile; check the configuration")
                failures += 1
                continue
            try:
                ws = await self._connect(profile)
            except ConnectFailed as exc:
                await self._connect_failed(profile, exc)
                failures += 1
                continue
            failures = 0
            self._tls_event_reported.clear()
            try:
                await self._serve(ws, profile)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a bug in one session must not end the station
                log.exception("session ended by an internal error")
            finally:
                await self._disconnected()
            immediate = self._reconnect_now
            self._reconnect_now = False

    def _priority_slots(self) -> list[int]:
        slots = []
        for item in self.device_model.get_list(OCPPCommCtrlr.NetworkConfigurationPriority):
            try:
                slot = int(item)
            except ValueError:
                continue
            if slot in self._network_profiles and slot not in slots:
                slots.append(slot)
        return slots or sorted(self._network_profiles)[:1]

    def _choose_profile(self) -> NetworkProfile | None:
        slots = self._priority_slots()
        if not slots:
            return None
        per_profile = max(1, self.device_model.get_int(OCPPCommCtrlr.NetworkProfileConnectionAttempts))
        if self._profile_cursor >= len(slots):
            # B10.FR.07: every slot failed its attempts; fall back to the last good one.
            if self._last_good_slot in self._network_profiles:
                return self._network_profiles[self._last_good_slot]
            self._profile_cursor = 0
        slot = slots[self._profile_cursor]
        self._profile_attempts += 1
        if self._profile_attempts >= per_profile:
            self._profile_attempts = 0
            self._profile_cursor += 1
        return self._network_profiles[slot]

    async def _connect(self, profile: NetworkProfile) -> ClientConnection:
        ping = self.device_model.get_int(OCPPCommCtrlr.WebSocketPingInterval)
        password = self.device_model.get(SecurityCtrlr.BasicAuthPassword)
        log.info("connecting to %s", profile.describe())
        return await open_websocket(
            profile,
            identity=self.config.identity,
            password=password,
            certificates=self.certificates,
            subprotocols=[p.subprotocol for p in self._protocols],
            open_timeout=self.config.open_timeout,
            ping_interval=float(ping) if ping > 0 else None,
            ping_timeout=self.config.pong_timeout if ping > 0 else None,
            max_size=self.config.max_message_bytes * self.config.hard_size_factor,
        )

    async def _connect_failed(self, profile: NetworkProfile, exc: ConnectFailed) -> None:
        log.warning("connection to %s failed (%s): %s", profile.describe(), exc.kind, exc)
        if exc.security_event and exc.security_event not in self._tls_event_reported:
            # A00.FR.316 note: once per run of failed attempts, not per attempt.
            self._tls_event_reported.add(exc.security_event)
            await self.security_event(exc.security_event, str(exc))
        elif exc.kind == "auth" and "FailedToAuthenticateAtCsms" not in self._tls_event_reported:
            self._tls_event_reported.add("FailedToAuthenticateAtCsms")
            await self.security_event("FailedToAuthenticateAtCsms", str(exc))

    async def _serve(self, ws: ClientConnection, profile: NetworkProfile) -> None:
        protocol = protocol_for(ws.subprotocol or self._protocols[0].subprotocol)
        core = RpcCore(
            protocol,
            message_timeout=profile.message_timeout,
            max_frame_bytes=self.config.max_message_bytes,
            field_lengths=self._field_lengths(),
        )
        session = _Session(ws, core, profile, protocol)
        loop = asyncio.get_running_loop()
        offline_for = None if self._offline_since is None else loop.time() - self._offline_since
        if offline_for is not None and offline_for > self.device_model.get_int(OCPPCommCtrlr.OfflineThreshold):
            self._status_reported.clear()  # B04.FR.01: report every connector
        self._expire_offline_profiles()
        self._session = session
        self._offline_since = None
        self._offline_since_utc = None
        self._outbox_dirty = True
        self._consecutive_timeouts = 0
        self._last_sent = loop.time()
        self._last_good_slot = profile.slot
        self._profile_cursor = 0
        self._profile_attempts = 0
        await self._upgrade_security_profile(profile)
        log.info("connected to %s with %s", profile.describe(), ws.subprotocol)
        self.emit(ConnectionChanged(True, ws.subprotocol, profile.slot))
        if self._registration == "Accepted":
            self._online_event.set()
        reader = asyncio.create_task(self._reader(session), name="ocpp-reader")
        sender = asyncio.create_task(self._sender(session), name="ocpp-sender")
        handler = asyncio.create_task(self._handle_incoming(session), name="ocpp-handler")
        try:
            done, _ = await asyncio.wait({reader, sender, handler}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not reader and task.exception() is not None and not isinstance(task.exception(), _ConnectionLost):
                    log.error("OCPP %s task failed", task.get_name(), exc_info=task.exception())
        finally:
            for task in (reader, sender, handler):
                task.cancel()
            await asyncio.gather(reader, sender, handler, return_exceptions=True)
            try:
                await ws.close()
            except Exception:  # noqa: BLE001
                pass

    async def _disconnected(self) -> None:
        session, self._session = self._session, None
        self._online_event.clear()
        if session is None:
            return
        lost = session.core.reset()
        if session.answer is not None and not session.answer.done():
            session.answer.set_result(_LOST)
        self._offline_since = asyncio.get_running_loop().time()
        self._offline_since_utc = self._clock()
        if self._registration != "Accepted":
            self._registration = None  # boot again on the next connection
        self._fail_queued(lambda item: item.priority == Priority.LIVE, "Offline")
        try:
            flagged = await self.store.run(self.outbox.mark_offline)  # E11.FR.07
        except Exception:  # noqa: BLE001
            log.exception("could not flag queued TransactionEvents offline")
            flagged = 0
        reason = f"lost during {lost[1]}" if lost else None
        log.warning("disconnected from the CSMS%s; %d queued TransactionEvent(s) now offline", f" ({reason})" if reason else "", flagged)
        self.emit(ConnectionChanged(False, reason=reason))

    async def reconnect(self) -> None:
        """Close the connection and open it again at once (new password, new certificate)."""
        self._reconnect_now = True
        session = self._session
        if session is not None:
            await session.ws.close(1000, "reconnecting with new settings")

    # ------------------------------------------------------------------ reader
    async def _reader(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for frame in session.ws:
                for event in session.core.receive(frame, loop.time()):
                    await self._on_rpc_event(session, event)
        except ConnectionClosed as exc:
            log.info("connection closed: %s", exc)
        finally:
            if session.answer is not None and not session.answer.done():
                session.answer.set_result(_LOST)

    async def _on_rpc_event(self, session: _Session, event: Any) -> None:
        if isinstance(event, CallReceived):
            session.incoming.put_nowait(event)
        elif isinstance(event, CallRefused):
            log.warning("refused CALL %s (%s): %s", event.action, _code(event.error), event.error.description)
            await self.security_event("InvalidMessages", f"{_code(event.error)}: {event.error.description}")
            await session.ws.send(event.reply)
        elif isinstance(event, (ResultReceived, ErrorReceived, ResponseInvalid)):
            if isinstance(event, ResultReceived) and event.action == "BootNotification":
                # Applied here, before any CSMS request that follows the answer on the wire
                # is handled (B03.FR.08 and the new HeartbeatInterval depend on it).
                self._boot_accepted_or_not(event.response)
            if session.answer is not None and not session.answer.done():
                session.answer.set_result(event)
        elif isinstance(event, FrameIgnored):
            log.warning("ignored frame from the CSMS: %s: %s", event.reason, event.excerpt)

    # ------------------------------------------------------------------ incoming CALLs
    async def _handle_incoming(self, session: _Session) -> None:
        while True:
            call: CallReceived = await session.incoming.get()
            log.info("CSMS -> %s", call.action)
            after = None
            if self._registration == "Rejected":
                # B03.FR.08: while Rejected, CSMS requests get SecurityError.
                frame = session.core.respond_error(call.message_id, CallError(ErrorCode.SecurityError, "registration was Rejected"))
            else:
                handler = self._handlers.routes.get(call.action)
                if handler is None:
                    frame = session.core.respond_error(
                        call.message_id, CallError(ErrorCode.NotSupported, f"{call.action} is not supported by this station")
                    )
                else:
                    frame, after = await self._run_handler(session, call, handler)
            await session.ws.send(frame)
            if after is not None:
                try:
                    result = after()
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:  # noqa: BLE001
                    log.exception("follow-up of %s failed", call.action)

    async def _run_handler(self, session: _Session, call: CallReceived, handler: Any) -> tuple[str, Any]:
        from pnc_bridge.ocpp._handlers import Refuse

        try:
            reply = await handler(call.request)
        except Refuse as refuse:
            return session.core.respond_error(call.message_id, refuse.error), None
        except Exception:  # noqa: BLE001 - our bug: answer InternalError, keep running
            log.exception("handler for %s failed", call.action)
            return session.core.respond_error(call.message_id, CallError(ErrorCode.InternalError)), None
        try:
            return session.core.respond(call.message_id, reply.response), reply.after
        except OutgoingInvalid as exc:
            log.error("our %s response does not match the schema: %s", call.action, exc)
            return session.core.respond_error(call.message_id, CallError(ErrorCode.InternalError)), None

    # ------------------------------------------------------------------ sender
    async def _sender(self, session: _Session) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._wakeup.clear()
            item, wait = await self._next_item(loop.time())
            if item is None:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass
                continue
            if isinstance(item, OutboxEntry):
                await self._send_outbox(session, item)
            else:
                await self._send_queued(session, item)

    async def _next_item(self, now: float) -> tuple[_Queued | OutboxEntry | None, float | None]:
        if self._stopping:
            return None, None
        waits: list[float] = []
        if self._registration != "Accepted":
            if now >= self._boot_not_before and not any(q.action == "BootNotification" for q in self._queue):
                return self._boot_item(), None
            if self._boot_not_before > now:
                waits.append(self._boot_not_before - now)
        allowed = [
            q for q in self._queue
            if self._registration == "Accepted" or q.action == "BootNotification"
            or (self._registration == "Pending" and q.triggered)
        ]
        if allowed:
            item = min(allowed)
            self._queue.remove(item)
            heapq.heapify(self._queue)
            return item, None
        if self._registration != "Accepted":
            return None, min(waits) if waits else None
        status_item = self._status_item()
        if status_item is not None:
            return status_item, None
        cert_item = self._cert_signing_due(now)
        if cert_item is not None:
            return cert_item, None
        pull_item = self._dynamic_pull_due(now)
        if pull_item is not None:
            return pull_item, None
        # Ask the database only when something may be due: a commit since the last look,
        # or a retry time reached; saves a thread hop per idle turn of the sender.
        if self._outbox_dirty or (self._outbox_due is not None and now >= self._outbox_due):
            self._outbox_dirty = False
            entry, due = await self.store.run(lambda: self.outbox.next_ready(now))
            self._outbox_due = due
            if entry is not None:
                self._outbox_dirty = True  # there may be more behind it
                return entry, None
        if self._outbox_due is not None:
            waits.append(max(0.0, self._outbox_due - now))
        heartbeat_due = self._last_sent + self.device_model.get_int(OCPPCommCtrlr.HeartbeatInterval)
        if now >= heartbeat_due:
            return _Queued(int(Priority.CONTROL), next(self._seq), "Heartbeat", {}), None
        waits.append(heartbeat_due - now)
        for due_at, *_ in self._cert_signing.values():
            waits.append(due_at - now)
        waits.extend(due - now for due in self._dynamic_pull.values())
        return None, max(0.0, min(waits)) if waits else None

    def _boot_item(self) -> _Queued:
        info = self.config.info
        station: dict[str, Any] = {"model": info.model, "vendorName": info.vendor_name}
        if info.serial_number:
            station["serialNumber"] = info.serial_number
        if info.firmware_version:
            station["firmwareVersion"] = info.firmware_version
        return _Queued(int(Priority.BOOT), next(self._seq), "BootNotification", {"chargingStation": station, "reason": self._boot_reason})

    def _status_item(self) -> _Queued | None:
        for (evse_id, connector_id) in sorted(self._connector_status):
            status = self.effective_status(evse_id, connector_id)
            if self._status_reported.get((evse_id, connector_id)) != status:
                payload = {
                    "timestamp": format_datetime(self._clock()),
                    "connectorStatus": status,
                    "evseId": evse_id,
                    "connectorId": connector_id,
                }

                def mark(_: OcppModel, key: tuple[int, int] = (evse_id, connector_id), value: str = status) -> None:
                    self._status_reported[key] = value

                self._status_reported[(evse_id, connector_id)] = status  # not again until it changes
                return _Queued(int(Priority.CONTROL), next(self._seq), "StatusNotification", payload, on_result=mark)
        return None

    def _cert_signing_due(self, now: float) -> _Queued | None:
        for use, (due, wait, repeats, csr) in list(self._cert_signing.items()):
            if now < due:
                continue
            if repeats <= 0:
                self._cert_signing.pop(use)  # A02.FR.19: stop until triggered again
                log.warning("no CertificateSigned for the %s CSR; stopped re-sending", use)
                continue
            self._cert_signing[use] = (now + wait * 2, wait * 2, repeats - 1, csr)  # A02.FR.18
            return _Queued(int(Priority.CONTROL), next(self._seq), "SignCertificate", {"csr": csr, "certificateType": use})
        return None

    def _dynamic_pull_due(self, now: float) -> _Queued | None:
        """PullDynamicScheduleUpdate (2.1) for a Dynamic profile whose dynUpdateInterval passed."""
        if self.ocpp_version is not OcppVersion.v21:
            return None
        for profile_id, due in list(self._dynamic_pull.items()):
            stored = self._profiles.get(profile_id)
            interval = getattr(stored.profile, "dyn_update_interval", None) if stored is not None else None
            if stored is None or not interval or interval <= 0:
                self._dynamic_pull.pop(profile_id, None)
                continue
            if now < due:
                continue
            self._dynamic_pull[profile_id] = now + interval

            async def apply(response: OcppModel, profile_id: int = profile_id) -> None:
                if _value(response.status) == "Accepted" and response.schedule_update is not None:  # type: ignore[attr-defined]
                    await self.apply_schedule_update(profile_id, response.schedule_update.to_payload(), "PullDynamicScheduleUpdate")  # type: ignore[attr-defined]

            return _Queued(int(Priority.CONTROL), next(self._seq), "PullDynamicScheduleUpdate", {"chargingProfileId": profile_id},
                           on_result=apply)
        return None

    def _expire_offline_profiles(self) -> None:
        """2.1 invalidAfterOfflineDuration: profiles whose maxOfflineDuration ran out during the
        outage are removed for good when the connection comes back."""
        offline_for = self.offline_for()
        if offline_for is None:
            return
        expired = [
            p.id for p in self._profiles.values()
            if getattr(p.profile, "invalid_after_offline_duration", None)
            and p.profile.max_offline_duration is not None and offline_for > p.profile.max_offline_duration
        ]
        if expired:
            log.warning("charging profiles %s expired while offline (invalidAfterOfflineDuration)", expired)
            self.remove_profiles(expired)

    async def _exchange(
        self, session: _Session, action: str, payload: dict[str, Any], timeout: float | None, *, checked: bool = False
    ) -> Any:
        """Send one CALL and wait for its answer; returns an RPC event or raises _ConnectionLost."""
        loop = asyncio.get_running_loop()
        try:
            wire = to_version(action, "Request", payload, session.protocol.version)
        except VersionMismatch as exc:
            raise OutgoingInvalid(action, CallError(ErrorCode.PropertyConstraintViolation, f"{session.protocol.subprotocol}: {exc}")) from None
        # Payloads were checked for this version when queued, unless they changed form.
        outgoing = session.core.send_call((action, wire), loop.time(), timeout=timeout, checked=checked and wire is payload)
        session.answer = loop.create_future()
        log.info("%s -> CSMS (%s)", action, outgoing.message_id)
        try:
            await session.ws.send(outgoing.frame)
        except ConnectionClosed as exc:
            raise _ConnectionLost() from exc
        self._last_sent = loop.time()
        deadline = session.core.deadline()
        try:
            event = await asyncio.wait_for(session.answer, timeout=max(0.0, (deadline or loop.time()) - loop.time()))
        except asyncio.TimeoutError:
            events = session.core.tick(loop.time())
            event = events[0] if events else CallTimedOut(outgoing.message_id, action)
        finally:
            session.answer = None
        if event is _LOST:
            raise _ConnectionLost()
        if isinstance(event, CallTimedOut):
            self._consecutive_timeouts += 1
            log.warning("%s timed out (%d in a row)", action, self._consecutive_timeouts)
            if self._consecutive_timeouts >= TIMEOUTS_BEFORE_RECONNECT:
                self._consecutive_timeouts = 0
                asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(session.ws.close(1001, "CSMS not answering")))
        else:
            self._consecutive_timeouts = 0
        return event

    async def _send_queued(self, session: _Session, item: _Queued) -> None:
        try:
            # Checked again: the connection may speak another version than when it was queued.
            event = await self._exchange(session, item.action, item.payload, item.timeout)
        except OutgoingInvalid as exc:
            if item.future is not None and not item.future.done():
                item.future.set_exception(exc)
            return
        except _ConnectionLost:
            if item.future is not None and item.priority == Priority.LIVE:
                if not item.future.done():
                    item.future.set_exception(CallFailed(item.action, "Offline"))
            elif item.action == "StatusNotification":
                key = (item.payload["evseId"], item.payload["connectorId"])
                self._status_reported.pop(key, None)  # send it again after the reconnect
            elif item.action not in ("BootNotification", "Heartbeat"):
                self._enqueue(item)  # control calls survive a reconnect
            raise
        result: OcppModel | None = None
        failure: CallFailed | None = None
        if isinstance(event, ResultReceived):
            result = event.response
        elif isinstance(event, ErrorReceived):
            failure = CallFailed(item.action, "CallError", event.error)
        elif isinstance(event, ResponseInvalid):
            failure = CallFailed(item.action, "InvalidResponse", event.error)
        else:
            failure = CallFailed(item.action, "Timeout")
        if item.action == "BootNotification" and failure is not None:
            log.warning("BootNotification failed: %s", failure)
            self._boot_not_before = asyncio.get_running_loop().time() + self.config.boot_retry_interval
        if result is not None and item.on_result is not None:
            outcome = item.on_result(result)
            if asyncio.iscoroutine(outcome):
                await outcome
        if failure is not None and item.action == "StatusNotification":
            self._status_reported.pop((item.payload["evseId"], item.payload["connectorId"]), None)
        if item.future is not None and not item.future.done():
            if failure is not None:
                item.future.set_exception(failure)
            else:
                item.future.set_result(result)
        elif failure is not None:
            log.warning("%s failed: %s", item.action, failure)

    def _boot_accepted_or_not(self, result: OcppModel) -> None:
        loop = asyncio.get_running_loop()
        status = _value(result.status)  # type: ignore[attr-defined]
        interval = int(result.interval)  # type: ignore[attr-defined]
        self._registration = status
        log.info("BootNotification %s (interval %d s)", status, interval)
        if status == "Accepted":
            if interval > 0:  # B01.FR.04
                self.device_model.set_local(OCPPCommCtrlr.HeartbeatInterval, str(interval))
            self._status_reported.clear()  # B01.FR.05: every connector
            self._boot_reason = "PowerUp"
            self._online_event.set()
        else:
            # B02.FR.07/08, B03.FR.02/05/06: wait the interval, or our own when it is 0.
            self._boot_not_before = loop.time() + (interval if interval > 0 else self.config.boot_retry_interval)
        self.emit(RegistrationChanged(status, interval))

    async def trigger_boot(self) -> None:
        """TriggerMessage(BootNotification) while not Accepted: send one now (reason Triggered)."""
        self._boot_reason = "Triggered"
        self._boot_not_before = 0.0
        self._wake()

    async def _send_outbox(self, session: _Session, entry: OutboxEntry) -> None:
        loop = asyncio.get_running_loop()
        try:
            event = await self._exchange(session, entry.action, entry.wire_payload(), None)
        except OutgoingInvalid as exc:
            # Stored before a schema change or corrupted: it can never be sent; keep it aside.
            reason = f"invalid: {exc}"
            await self.store.run(lambda: self.outbox.discard(entry, reason))
            log.error("outbox %s #%d is invalid and was set aside: %s", entry.action, entry.id, exc)
            self.emit(MessageDiscarded(entry.action, entry.id, reason))
            return
        if isinstance(event, ResultReceived):
            await self.store.run(lambda: self.outbox.delivered(entry.id))
            self._after_outbox_result(entry, event.response)
            return
        if isinstance(event, ErrorReceived):
            reason = f"CALLERROR {_code(event.error)}: {event.error.description}"
        elif isinstance(event, ResponseInvalid):
            reason = f"invalid response: {event.error.description}"
        else:
            reason = "no response within MessageTimeout"
        policy = RetryPolicy(
            self.device_model.get_int(OCPPCommCtrlr.MessageAttempts),
            float(self.device_model.get_int(OCPPCommCtrlr.MessageAttemptInterval)),
        )
        discarded = await self.store.run(lambda: self.outbox.failed(entry, loop.time(), reason, policy))
        if discarded:
            log.error("%s #%d discarded after %d attempts (E13.FR.04): %s", entry.action, entry.id, policy.attempts, reason)
            self.emit(MessageDiscarded(entry.action, entry.id, reason))
        else:
            log.warning("%s #%d not delivered (%s); will retry", entry.action, entry.id, reason)

    def _after_outbox_result(self, entry: OutboxEntry, response: OcppModel) -> None:
        if entry.action != "TransactionEvent":
            return
        info = getattr(response, "id_token_info", None)
        if info is None:
            return
        transaction_id = entry.payload["transactionInfo"]["transactionId"]
        status = _value(info.status)
        tx = self._transactions.get(transaction_id)
        if tx is not None:
            tx.authorized = status == "Accepted"
        self.emit(TransactionAuthorizationChanged(transaction_id, status, info))

    # ================================================================== security profile (A05)
    async def _upgrade_security_profile(self, profile: NetworkProfile) -> None:
        current = self.device_model.get_int(SecurityCtrlr.SecurityProfile)
        if profile.security_profile <= current:
            return
        # A05.FR.06: connected with a higher profile: it becomes the station's profile and
        # every lower one is removed, so the station cannot be talked back down.
        self.device_model.set_local(SecurityCtrlr.SecurityProfile, str(profile.security_profile))
        removed = [slot for slot, p in self._network_profiles.items() if p.security_profile < profile.security_profile]
        for slot in removed:
            self._network_profiles.pop(slot)
            self.store.execute("DELETE FROM network_profiles WHERE slot=?", (slot,))
        remaining = [s for s in self.device_model.get_list(OCPPCommCtrlr.NetworkConfigurationPriority) if int(s) not in removed]
        self.device_model.set_local(OCPPCommCtrlr.NetworkConfigurationPriority, ",".join(remaining) or str(profile.slot))
        await self.security_event("ReconfigurationOfSecurityParameters", f"security profile {current} -> {profile.security_profile}")

    # ================================================================== persistence helpers
    def _load_transactions(self) -> dict[str, TransactionState]:
        result = {}
        for tid, evse_id, connector_id, started, data in self.store.query(
            "SELECT transaction_id, evse_id, connector_id, started, data FROM transactions"
        ):
            extra = json.loads(data)
            result[tid] = TransactionState(
                tid, evse_id, connector_id, started, extra.get("charging_state"), extra.get("id_token"),
                bool(extra.get("authorized")), bool(extra.get("iso15118")),
            )
        return result

    def _load_profiles(self) -> dict[int, StoredProfile]:
        result = {}
        for evse_id, text in self.store.query("SELECT evse_id, profile FROM charging_profiles"):
            profile = v21.ChargingProfileType.model_validate(json.loads(text))  # the station form
            result[int(profile.id)] = StoredProfile(evse_id, profile)
        return result

    def _load_network_profiles(self) -> dict[int, NetworkProfile]:
        configured = self.config.network
        seed = {"url": configured.url, "security_profile": configured.security_profile, "message_timeout": configured.message_timeout}
        profiles: dict[int, NetworkProfile] = {}
        for slot, text in self.store.query("SELECT slot, profile FROM network_profiles"):
            data = json.loads(text)
            profiles[int(slot)] = NetworkProfile(int(slot), data["url"], int(data["security_profile"]), float(data["message_timeout"]), data.get("ocpp_version", "OCPP20"))
        if self.store.get_json("network_seed") != seed or not profiles:
            # The configuration changed (or first start): the local setting wins (A00.FR.005
            # allows lowering the profile only this way, never over OCPP).
            profiles[0] = NetworkProfile(0, configured.url, configured.security_profile, configured.message_timeout)
            self.save_network_profile(profiles[0])
            self.store.set_json("network_seed", seed)
            if self.store.get_json("network_seeded_before") is not None:
                self.device_model.set_local(OCPPCommCtrlr.NetworkConfigurationPriority, "0", notify=False)
                self.device_model.set_local(SecurityCtrlr.SecurityProfile, str(configured.security_profile), notify=False)
            self.store.set_json("network_seeded_before", True)
        return profiles

    def save_network_profile(self, profile: NetworkProfile) -> None:
        data = {
            "url": profile.url,
            "security_profile": profile.security_profile,
            "message_timeout": profile.message_timeout,
            "ocpp_version": profile.ocpp_version,
        }
        self.store.execute(
            "INSERT INTO network_profiles (slot, profile) VALUES (?, ?) ON CONFLICT(slot) DO UPDATE SET profile=excluded.profile",
            (profile.slot, json.dumps(data)),
        )
        if hasattr(self, "_network_profiles"):
            self._network_profiles[profile.slot] = profile

    @property
    def network_profiles(self) -> dict[int, NetworkProfile]:
        return dict(self._network_profiles)

    def _field_lengths(self) -> dict[str, int]:
        """OCPPCommCtrlr.FieldLength values (ReadOnly: read once, then cached)."""
        cached = getattr(self, "_field_lengths_cache", None)
        if cached is not None:
            return cached
        lengths = {}
        dm = getattr(self, "device_model", None)
        if dm is None:
            return dict(self.config.settings.field_lengths)
        for spec in dm.specs():
            if spec.key.component == "OCPPCommCtrlr" and spec.key.variable == "FieldLength" and spec.key.instance:
                try:
                    lengths[spec.key.instance] = int(dm.get(spec.key) or 0)
                except ValueError:
                    continue
        self._field_lengths_cache = lengths
        return lengths

    def _live_variables(self) -> dict[VariableKey, Callable[[], str]]:
        def availability(evse_id: int | None = None, connector_id: int | None = None) -> Callable[[], str]:
            def read() -> str:
                if connector_id is not None:
                    return self.effective_status(evse_id, connector_id)  # type: ignore[arg-type]
                keys = [k for k in self._connector_status if evse_id is None or k[0] == evse_id]
                states = {self.effective_status(*k) for k in keys}
                for state in ("Occupied", "Faulted", "Reserved"):
                    if state in states:
                        return state
                if states == {"Unavailable"} or not self.operative(evse_id):
                    return "Unavailable"
                return "Available"

            return read

        live: dict[VariableKey, Callable[[], str]] = {
            ChargingStationVars.AvailabilityState: availability(),
            ClockCtrlr.DateTime: lambda: format_datetime(self._clock()),
            SecurityCtrlr.CertificateEntries: lambda: str(self.certificates.count()),
            SmartChargingCtrlr.EntriesChargingProfiles: lambda: str(len(self._profiles)),
            OCPPCommCtrlr.ActiveNetworkProfile: lambda: "" if self._session is None else str(self._session.profile.slot),
        }
        for evse in self.config.settings.evses:
            live[VariableKey("EVSE", "AvailabilityState", evse=evse.id)] = availability(evse.id)
            for connector in evse.connectors:
                live[VariableKey("Connector", "AvailabilityState", evse=evse.id, connector=connector.id)] = availability(
                    evse.id, connector.id
                )
        return live

    def _variable_changed(self, key: VariableKey, value: str) -> None:
        shown = "(hidden)" if key == SecurityCtrlr.BasicAuthPassword else value  # A01.FR.12
        log.info("device model %s = %s", key.id, shown)
        self.emit(VariableChanged(key.id, shown))
        if key == OCPPCommCtrlr.HeartbeatInterval:
            self._wake()

    def spawn(self, coro: Awaitable[Any], name: str) -> None:
        """Run ``coro`` in the background; errors are logged, never lost silently."""

        async def runner() -> None:
            try:
                await coro
            except CallFailed as exc:
                log.warning("%s: %s", name, exc)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("%s failed", name)

        task = asyncio.get_running_loop().create_task(runner(), name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


def _value(x: Any) -> str:
    return x.value if hasattr(x, "value") else str(x)


def _code(error: CallError) -> str:
    return error.code.value if isinstance(error.code, ErrorCode) else str(error.code)
