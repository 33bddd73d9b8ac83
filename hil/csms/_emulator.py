"""A CSMS emulator for tests and HIL rigs, built on the ``ocpp`` package (mobilityhouse).

Rules of this module:

- It is independent of ``pnc_bridge.ocpp``: the RPC handling is the ``ocpp`` package's
  ``ChargePoint`` of the version the connection agreed (``ocpp.v201`` for ``ocpp2.0.1``,
  ``ocpp.v21`` for ``ocpp2.1``; the server's ``subprotocols`` order decides) on a
  ``websockets`` server, and every frame is checked with ``ocpp.messages`` against the
  official schemas of that version bundled in the ``ocpp`` package. It imports nothing
  from ``pnc_bridge``, so what it accepts or refuses is an independent opinion.
- Every frame in both directions is recorded (``FrameRecord``) before faults apply, with
  the schema verdict, so tests assert on what the CSMS saw, not on what the client says.
- Faults are data (``FaultPlan``): drop or delay frames per direction with a seeded RNG,
  cut a connection without a close frame, or take the whole CSMS down and up again.
- Responses are data too: ``responses[action]`` is a payload dict (camelCase) or a
  function ``(payload, station_id) -> dict`` (may be async); defaults answer everything
  a charging station sends with a schema-valid, accepting response.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import itertools
import json
import logging
import random
import ssl
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Iterable

from ocpp.charge_point import camel_to_snake_case
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, unpack, validate_payload
from ocpp.routing import on
from ocpp.v201 import ChargePoint as _ChargePoint201
from ocpp.v201 import call_result as _call_result201
from ocpp.v21 import ChargePoint as _ChargePoint21
from ocpp.v21 import call_result as _call_result21
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

__all__ = ["CsmsEmulator", "FaultPlan", "FrameRecord", "CsmsCallError", "STATION_ACTIONS", "STATION_ACTIONS_21", "VERSIONS"]

#: WebSocket subprotocol -> the ``ocpp`` package's version name.
VERSIONS = {"ocpp2.0.1": "2.0.1", "ocpp2.1": "2.1"}

log = logging.getLogger("hil.csms")

#: Actions a charging station sends (CS -> CSMS) in OCPP 2.0.1.
STATION_ACTIONS = (
    "Authorize",
    "BootNotification",
    "ClearedChargingLimit",
    "DataTransfer",
    "FirmwareStatusNotification",
    "Get15118EVCertificate",
    "GetCertificateStatus",
    "Heartbeat",
    "LogStatusNotification",
    "MeterValues",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "NotifyReport",
    "PublishFirmwareStatusNotification",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
    "SecurityEventNotification",
    "SignCertificate",
    "StatusNotification",
    "TransactionEvent",
)

#: Actions a charging station sends in OCPP 2.1 on top of those of 2.0.1.
STATION_ACTIONS_21 = STATION_ACTIONS + (
    "BatterySwap",
    "ClosePeriodicEventStream",
    "GetCertificateChainStatus",
    "NotifyDERAlarm",
    "NotifyDERStartStop",
    "NotifyPriorityCharging",
    "NotifySettlement",
    "NotifyWebPaymentStarted",
    "OpenPeriodicEventStream",
    "PullDynamicScheduleUpdate",
    "ReportDERControl",
    "VatNumberValidation",
)


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _default_response(action: str, payload: dict[str, Any], boot: dict[str, Any]) -> dict[str, Any]:
    if action == "BootNotification":
        return {"currentTime": _now(), **boot}
    if action == "Heartbeat":
        return {"currentTime": _now()}
    if action == "Authorize":
        response: dict[str, Any] = {"idTokenInfo": {"status": "Accepted"}}
        if payload.get("certificate") or payload.get("iso15118CertificateHashData"):
            response["certificateStatus"] = "Accepted"
        return response
    if action == "TransactionEvent":
        return {"idTokenInfo": {"status": "Accepted"}} if "idToken" in payload else {}
    if action == "Get15118EVCertificate":
        return {"status": "Accepted", "exiResponse": base64.b64encode(b"exi-response").decode()}
    if action == "GetCertificateStatus":
        return {"status": "Accepted", "ocspResult": base64.b64encode(b"ocsp-response").decode()}
    if action in ("NotifyEVChargingNeeds", "NotifyEVChargingSchedule", "SignCertificate", "PullDynamicScheduleUpdate"):
        return {"status": "Accepted"}
    if action == "DataTransfer":
        return {"status": "UnknownVendorId"}
    return {}


class CsmsCallError(Exception):
    """The station answered a CALL of the emulator with a CALLERROR (or not at all)."""

    def __init__(self, code: str, description: str = "", details: Any = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details


@dataclass
class FaultPlan:
    """Faults applied to frames: probabilities and delay ranges (seconds) per direction.

    ``actions`` limits faults to frames of those actions (CALLs and their answers);
    ``None`` applies them to every frame. The RNG is seeded, so a plan is repeatable
    for the same sequence of frames.
    """

    drop_in: float = 0.0  # station -> CSMS
    drop_out: float = 0.0  # CSMS -> station
    delay_in: tuple[float, float] = (0.0, 0.0)
    delay_out: tuple[float, float] = (0.0, 0.0)
    actions: frozenset[str] | None = None
    seed: int = 1

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def applies(self, action: str | None) -> bool:
        return self.actions is None or (action is not None and action in self.actions)

    def drop(self, direction: str) -> bool:
        p = self.drop_in if direction == "in" else self.drop_out
        return p > 0 and self._rng.random() < p

    def delay(self, direction: str) -> float:
        low, high = self.delay_in if direction == "in" else self.delay_out
        return self._rng.uniform(low, high) if high > 0 else 0.0


@dataclass
class FrameRecord:
    """One WebSocket message as the CSMS saw it."""

    index: int
    at: float  # time.monotonic()
    station: str
    direction: str  # "in" (station -> CSMS) or "out"
    text: str
    version: str = ""  # the OCPP version of the connection ("2.0.1", "2.1")
    message_type: int | None = None
    message_id: str | None = None
    action: str | None = None
    payload: Any = None
    dropped: bool = False
    delay: float = 0.0
    valid: bool | None = None  # schema check of frames received (None: not checkable)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "at": self.at,
            "station": self.station,
            "version": self.version,
            "direction": self.direction,
            "type": self.message_type,
            "id": self.message_id,
            "action": self.action,
            "dropped": self.dropped,
            "delay": round(self.delay, 4),
            "valid": self.valid,
            "error": self.error,
            "text": self.text,
        }


class _Link:
    """The connection of one station: fault injection, recording, raw CALLs."""

    def __init__(self, emulator: "CsmsEmulator", station_id: str, ws: ServerConnection) -> None:
        self.emulator = emulator
        self.station_id = station_id
        self.ws = ws
        #: The ``ocpp`` package's name of the version this connection speaks ("2.0.1", "2.1").
        self.version = VERSIONS[ws.subprotocol or "ocpp2.0.1"]
        self.pending: dict[str, asyncio.Future] = {}  # our raw CALLs by message id
        self.actions: dict[str, str] = {}  # message id -> action of our CALLs
        self.calls: dict[str, dict[str, Any]] = {}  # message id -> payload of station CALLs
        self._send_lock = asyncio.Lock()

    def _describe(self, text: str, direction: str) -> FrameRecord:
        record = FrameRecord(next(self.emulator._index), time.monotonic(), self.station_id, direction, text, self.version)
        try:
            message = json.loads(text)
        except ValueError:
            return record
        if isinstance(message, list) and len(message) >= 2:
            record.message_type = message[0] if isinstance(message[0], int) else None
            record.message_id = message[1] if isinstance(message[1], str) else None
            if record.message_type == 2 and len(message) >= 4:
                record.action, record.payload = message[2], message[3]
            elif record.message_type in (3, 4):
                record.payload = message[2] if record.message_type == 3 and len(message) >= 3 else message[2:]
                if direction == "in":
                    mid = record.message_id or ""
                    record.action = self.actions.get(mid) or self.emulator._call_actions.get(mid)
        return record

    async def _validate(self, record: FrameRecord) -> None:
        try:
            message = unpack(record.text)
        except OCPPError as exc:
            record.valid, record.error = False, f"{exc.code}: {exc.description}"
            return
        if isinstance(message, CallError):
            record.valid = True
            return
        if isinstance(message, CallResult):
            if record.action is None:
                return  # an answer to a CALL the ChargePoint made; it validates it itself
            message.action = record.action
        try:
            await validate_payload(message, self.version)
            record.valid = True
        except OCPPError as exc:
            record.valid, record.error = False, f"{exc.code}: {exc.description}"

    async def recv(self) -> str:
        """Called by ``ocpp.ChargePoint``: the next frame from the station, faults applied."""
        while True:
            text = await self.ws.recv()
            if isinstance(text, bytes):
                text = text.decode("utf-8", errors="replace")
            record = self._describe(text, "in")
            plan = self.emulator.faults
            if plan is not None and plan.applies(record.action or self._answer_action(record)):
                if plan.drop("in"):
                    record.dropped = True
                    self.emulator._add(record)
                    continue
                record.delay = plan.delay("in")
            await self._validate(record)
            if record.delay:
                await asyncio.sleep(record.delay)
            self.emulator._add(record)
            if record.message_type == 2 and record.message_id and isinstance(record.payload, dict):
                self.calls[record.message_id] = record.payload
            future = self.pending.pop(record.message_id or "", None)
            if future is not None and record.message_type in (3, 4):
                if not future.done():
                    future.set_result(record)
                continue
            return text

    def _answer_action(self, record: FrameRecord) -> str | None:
        # Faults limited to some actions also hit the answers to CALLs of those actions.
        return self.emulator._call_actions.get(record.message_id or "")

    async def send(self, text: str) -> bool:
        """Called by ``ocpp.ChargePoint`` and ``call_json``: send a frame, faults applied.

        Returns False when the connection is already closing. It does not raise then, so
        the ChargePoint goes on reading what the station sent before its close frame
        (a real CSMS drains its input too).
        """
        record = self._describe(text, "out")
        if record.message_type == 2 and record.message_id:
            self.emulator._call_actions[record.message_id] = record.action or ""
        plan = self.emulator.faults
        action = record.action or self.emulator._call_actions.get(record.message_id or "")
        if plan is not None and plan.applies(action):
            if plan.drop("out"):
                record.dropped = True
                self.emulator._add(record)
                return True
            record.delay = plan.delay("out")
        async with self._send_lock:
            if record.delay:
                await asyncio.sleep(record.delay)
            self.emulator._add(record)
            try:
                await self.ws.send(text)
            except ConnectionClosed:
                record.error = "not sent: connection closed"
                return False
        return True


class CsmsEmulator:
    """A CSMS on ``ws://host:port/<path>/<station id>`` (``wss://`` with ``ssl_context``).

    Start with ``await start()`` (or ``async with``). Stations are tracked by identity.
    ``basic_auth`` maps identity -> password (security profiles 1 and 2); with
    ``require_client_certificate`` the TLS context must ask for a client certificate
    (profile 3) and no password is needed. ``subprotocols``: the OCPP versions accepted,
    most preferred first (default ``default_subprotocols``).
    """

    #: Subprotocols of an emulator made without ``subprotocols`` (a test suite may set it
    #: to run the same tests on each OCPP version).
    default_subprotocols: tuple[str, ...] = ("ocpp2.0.1",)

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = "/ocpp",
        subprotocols: Iterable[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        basic_auth: dict[str, str] | None = None,
        faults: FaultPlan | None = None,
        responses: dict[str, Any] | None = None,
        boot: dict[str, Any] | None = None,
        response_timeout: float = 10.0,
        max_size: int = 2**22,
        unchecked_responses: Iterable[str] = (),
    ) -> None:
        self.host = host
        self.port = port
        self.path = path.rstrip("/")
        self.subprotocols = list(subprotocols if subprotocols is not None else self.default_subprotocols)
        self.ssl_context = ssl_context
        self.basic_auth = basic_auth
        self.faults = faults
        self.responses: dict[str, Any] = dict(responses or {})
        self.boot = dict(boot or {"status": "Accepted", "interval": 300})
        self.response_timeout = response_timeout
        self.max_size = max_size
        #: Actions whose responses the ocpp package sends without its schema check (to
        #: test what a station does with a longer field than the schema allows).
        self.unchecked_responses = frozenset(unchecked_responses)
        self.record: list[FrameRecord] = []
        self.stations: dict[str, _Link] = {}
        self.charge_points: dict[str, Any] = {}
        self.connections = 0
        #: DER client certificate of each accepted connection (None without TLS client auth).
        self.peer_certificates: list[bytes | None] = []
        self.refused: list[tuple[str, int]] = []  # (path, HTTP status) of refused handshakes
        self._index = itertools.count()
        self._call_actions: dict[str, str] = {}
        self._server: Server | None = None
        self._handlers: set[asyncio.Task] = set()
        self._changed = asyncio.Condition()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://{self.host}:{self.port}{self.path}"

    async def start(self) -> None:
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            subprotocols=self.subprotocols,  # type: ignore[arg-type]
            process_request=self._check_request,
            ssl=self.ssl_context,
            max_size=self.max_size,
            ping_interval=None,
            close_timeout=1,
        )
        if self.port == 0:
            self.port = next(iter(self._server.sockets)).getsockname()[1]
        log.info("CSMS emulator listening on %s", self.url)

    async def stop(self) -> None:
        """Close every connection and the listening socket."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        self.stations.clear()

    async def down(self) -> None:
        """The CSMS goes away: connections are cut (no close frame), new ones refused."""
        for link in list(self.stations.values()):
            link.ws.transport.abort()
        await self.stop()

    async def up(self) -> None:
        """The CSMS comes back on the same port."""
        await self.start()

    async def __aenter__(self) -> "CsmsEmulator":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ connections
    def _check_request(self, connection: ServerConnection, request: Any) -> Any:
        path = request.path
        if not path.startswith(self.path + "/"):
            self.refused.append((path, 404))
            return connection.respond(404, "unknown path\n")
        identity = path[len(self.path) + 1 :]
        if self.basic_auth is not None:
            header = request.headers.get("Authorization", "")
            expected = self.basic_auth.get(identity)
            ok = False
            if header.startswith("Basic ") and expected is not None:
                try:
                    user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
                    ok = user == identity and password == expected
                except (ValueError, UnicodeDecodeError):
                    ok = False
            if not ok:
                self.refused.append((path, 401))
                return connection.respond(401, "bad credentials\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        identity = ws.request.path[len(self.path) + 1 :]  # type: ignore[union-attr]
        if ws.subprotocol is None:
            # Part 4, 3.2: no common subprotocol -> close right after the handshake.
            await ws.close(1002, "no common OCPP version")
            return
        link = _Link(self, identity, ws)
        self.stations[identity] = link
        self.connections += 1
        ssl_object = ws.transport.get_extra_info("ssl_object")
        self.peer_certificates.append(ssl_object.getpeercert(binary_form=True) if ssl_object else None)
        cp = (_StationSession21 if link.version == "2.1" else _StationSession201)(identity, link, self)
        self.charge_points[identity] = cp
        await self._notify()
        try:
            await cp.start()
        except ConnectionClosed:
            pass
        except Exception:  # noqa: BLE001 - an emulator bug must not kill the server
            log.exception("session of %s failed", identity)
        finally:
            if self.stations.get(identity) is link:
                del self.stations[identity]
            for future in link.pending.values():
                if not future.done():
                    future.set_exception(CsmsCallError("ConnectionLost", "the station disconnected"))
            await self._notify()

    async def cut(self, station_id: str) -> None:
        """Cut the TCP connection of ``station_id`` without a WebSocket close."""
        link = self.stations.pop(station_id, None)
        if link is not None:
            link.ws.transport.abort()

    # ------------------------------------------------------------------ CSMS -> station
    async def call_json(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None, validate: bool = True
    ) -> dict[str, Any]:
        """Send a CALL with a camelCase payload; returns the CALLRESULT payload.

        Raises ``CsmsCallError`` for a CALLERROR or no answer within ``timeout``.
        ``validate=False`` sends a payload that violates the schema (bad-input tests).
        """
        link = self.stations[station_id]
        message_id = str(uuid.uuid4())
        call = Call(message_id, action, payload)
        if validate:
            await validate_payload(call, link.version)
        future = asyncio.get_running_loop().create_future()
        link.pending[message_id] = future
        link.actions[message_id] = action
        if not await link.send(call.to_json()):
            link.pending.pop(message_id, None)
            raise CsmsCallError("ConnectionLost", f"cannot send {action}: the connection is closed")
        try:
            record: FrameRecord = await asyncio.wait_for(future, timeout or self.response_timeout)
        except asyncio.TimeoutError:
            link.pending.pop(message_id, None)
            raise CsmsCallError("Timeout", f"no answer to {action}") from None
        if record.message_type == 4:
            code, description, details = (list(record.payload) + ["", "", {}])[:3]
            raise CsmsCallError(str(code), str(description), details)
        if record.valid is False:
            raise CsmsCallError("InvalidResponse", record.error or "")
        return record.payload

    def version(self, station_id: str) -> str:
        """The OCPP version ("2.0.1" or "2.1") of ``station_id``'s connection."""
        return self.stations[station_id].version

    async def call(self, station_id: str, payload: Any, *, timeout: float | None = None) -> Any:
        """Send a CALL built from an ``ocpp.v201.call`` / ``ocpp.v21.call`` dataclass (the
        connection's version) through ``ocpp.ChargePoint``."""
        cp = self.charge_points[station_id]
        cp._response_timeout = timeout or self.response_timeout
        return await cp.call(payload, suppress=False)

    async def send_raw(self, station_id: str, text: str | bytes) -> None:
        """Send any text (or binary) frame as it is: no framing, no checks."""
        link = self.stations[station_id]
        record = link._describe(text if isinstance(text, str) else text.decode("latin-1"), "out")
        self._add(record)
        await link.ws.send(text)

    # ------------------------------------------------------------------ record
    def _add(self, record: FrameRecord) -> None:
        self.record.append(record)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def received(self, action: str | None = None, *, station: str | None = None) -> list[FrameRecord]:
        """CALLs the CSMS logic received (not dropped), optionally of one action."""
        return [
            r for r in self.record
            if r.direction == "in" and r.message_type == 2 and not r.dropped
            and (action is None or r.action == action) and (station is None or r.station == station)
        ]

    def sent(self, *, station: str | None = None) -> list[FrameRecord]:
        return [r for r in self.record if r.direction == "out" and (station is None or r.station == station)]

    def invalid_frames(self) -> list[FrameRecord]:
        """Frames from stations that failed the ``ocpp`` package's schema check."""
        return [r for r in self.record if r.direction == "in" and r.valid is False and not r.dropped]

    async def wait_for(self, predicate: Callable[["CsmsEmulator"], Any], timeout: float = 10.0) -> Any:
        """Wait until ``predicate(self)`` is truthy; returns its value or raises TimeoutError."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._changed:
            while True:
                value = predicate(self)
                if value:
                    return value
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    raise TimeoutError("condition not met within the timeout")
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except asyncio.TimeoutError:
                    pass

    async def wait_connected(self, station_id: str, timeout: float = 10.0) -> None:
        await self.wait_for(lambda e: station_id in e.stations, timeout)

    def dump_record(self, path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            for record in self.record:
                handle.write(json.dumps(record.to_json()) + "\n")

    # ------------------------------------------------------------------ responses
    async def respond(self, action: str, payload: dict[str, Any], station_id: str) -> dict[str, Any]:
        configured = self.responses.get(action)
        if configured is None:
            return _default_response(action, payload, self.boot)
        if callable(configured):
            result = configured(payload, station_id)
            if inspect.isawaitable(result):
                result = await result
            return result
        return dict(configured)


class _SessionMixin:
    """The CSMS side of one station's connection, on the ``ocpp`` package's ChargePoint."""

    _call_result: Any

    def __init__(self, identity: str, link: _Link, emulator: CsmsEmulator) -> None:
        super().__init__(identity, link, response_timeout=emulator.response_timeout)  # type: ignore[call-arg]
        self._emulator = emulator
        self._link = link
        for action in emulator.unchecked_responses:
            if action in self.route_map:  # type: ignore[attr-defined]
                self.route_map[action]["_skip_schema_validation"] = True  # type: ignore[attr-defined]

    async def _answer(self, action: str, call_unique_id: str) -> Any:
        payload = self._link.calls.get(call_unique_id, {})
        response = await self._emulator.respond(action, payload, self.id)  # type: ignore[attr-defined]
        cls = getattr(self._call_result, action)
        return cls(**camel_to_snake_case(response))


class _StationSession201(_SessionMixin, _ChargePoint201):
    """``ocpp.v201.ChargePoint`` as the CSMS side of an ``ocpp2.0.1`` connection."""

    _call_result = _call_result201


class _StationSession21(_SessionMixin, _ChargePoint21):
    """``ocpp.v21.ChargePoint`` as the CSMS side of an ``ocpp2.1`` connection."""

    _call_result = _call_result21


def _snake(action: str) -> str:
    out = []
    for index, char in enumerate(action):
        if char.isupper() and index and not action[index - 1].isupper():
            out.append("_")
        out.append(char.lower())
    return "".join(out)


def _make_route(action: str) -> Callable[..., Awaitable[Any]]:
    async def handler(self: _SessionMixin, call_unique_id: str, **_: Any) -> Any:
        return await self._answer(action, call_unique_id)

    handler.__name__ = f"on_{_snake(action)}"
    handler.__qualname__ = f"_SessionMixin.{handler.__name__}"
    return on(action)(handler)


for _cls, _actions in ((_StationSession201, STATION_ACTIONS), (_StationSession21, STATION_ACTIONS_21)):
    for _action in _actions:
        _route = _make_route(_action)
        setattr(_cls, _route.__name__, _route)
