"""asyncio TCP/TLS server for V2GTP: the thin I/O layer over ``v2gtp`` and ``tls``.

Rules of this module:

- It knows V2GTP frames, TLS and timers; it knows nothing about EXI or sessions. The
  application gets one ``V2gtpConnection`` per EV connection (``handler(conn)``) with
  ``receive()`` / ``async for frame in conn``, ``send(payload_type, payload)``,
  ``close()``, ``peer`` and ``tls`` (negotiated version, cipher, EV chain).
- Every fault of the peer ends in a logged, clean close of that one connection:
  bad V2GTP header, oversize length, TLS failure, handshake not finished in time
  (``TLS_HANDSHAKE_TIMEOUT``), a frame trickled slower than ``V2GTP_FRAME_ASSEMBLY_TIMEOUT``
  (slow loris), no frame for ``V2GTP_INACTIVITY_TIMEOUT``. Other connections are not
  disturbed. An exception in the application's handler is logged with the peer and
  closes that connection.
- Timers: one ``loop.call_at`` per connection, re-armed at the earliest deadline.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass
from typing import Awaitable, Callable

from pnc_bridge import timing
from pnc_bridge.link.tls import TlsDetails, TlsServerConfig, TlsServerEngine
from pnc_bridge.link.v2gtp import (
    DEFAULT_MAX_PAYLOAD_LENGTH,
    STREAM_PAYLOAD_TYPES,
    ConnectionMustClose,
    Frame,
    FrameDiscarded,
    V2gtpFramer,
    frame,
)

__all__ = ["PeerInfo", "V2gtpConnection", "V2gtpServer", "ConnectionHandler"]

_log = logging.getLogger(__name__)

#: Frames the application has not yet taken before reading from the socket pauses.
_QUEUE_HIGH_WATER = 16


@dataclass(frozen=True)
class PeerInfo:
    host: str  # without scope
    port: int
    scope_id: int  # interface index for link-local addresses, else 0
    local_port: int

    def __str__(self) -> str:
        return f"[{self.host}%{self.scope_id}]:{self.port}" if self.scope_id else f"[{self.host}]:{self.port}"


_CLOSED = object()


class V2gtpConnection:
    """One EV connection as the application sees it.

    ``receive()`` returns the next ``Frame`` or ``None`` once the connection is closed
    (by the peer, by a timeout, by a protocol fault or by ``close()``); ``close_reason``
    says why. ``send()`` frames and writes one message; it raises ``ConnectionError`` after
    close. ``tls`` is ``None`` on plain TCP.
    """

    def __init__(self, protocol: "_V2gtpProtocol", peer: PeerInfo, tls: TlsDetails | None) -> None:
        self._protocol = protocol
        self.peer = peer
        self.tls = tls
        self._queue: asyncio.Queue = asyncio.Queue()
        self.close_reason: str | None = None
        self._closed_event = asyncio.Event()

    async def receive(self) -> Frame | None:
        if self._queue.empty() and self._closed_event.is_set():
            return None
        item = await self._queue.get()
        self._protocol._frame_taken()
        if item is _CLOSED:
            self._queue.put_nowait(_CLOSED)  # later receive() calls also see the end
            return None
        return item

    def __aiter__(self) -> "V2gtpConnection":
        return self

    async def __anext__(self) -> Frame:
        item = await self.receive()
        if item is None:
            raise StopAsyncIteration
        return item

    async def send(self, payload_type: int, payload: bytes) -> None:
        if self._closed_event.is_set():
            raise ConnectionError(f"connection to {self.peer} is closed: {self.close_reason}")
        self._protocol._write(frame(payload_type, payload))
        await self._protocol._drain()

    def close(self, reason: str = "closed by application") -> None:
        self._protocol._shutdown(reason, level=logging.INFO)

    @property
    def closed(self) -> bool:
        return self._closed_event.is_set()

    async def wait_closed(self) -> None:
        await self._closed_event.wait()

    # called by the protocol
    def _deliver(self, item: object) -> None:
        self._queue.put_nowait(item)

    def _mark_closed(self, reason: str) -> None:
        if not self._closed_event.is_set():
            self.close_reason = reason
            self._closed_event.set()
            self._queue.put_nowait(_CLOSED)


ConnectionHandler = Callable[[V2gtpConnection], Awaitable[None]]


class _V2gtpProtocol(asyncio.Protocol):
    def __init__(self, server: "V2gtpServer") -> None:
        self.server = server
        self.loop = server._loop
        self.framer = V2gtpFramer(
            max_payload_length=server.max_payload_length, accepted_payload_types=server.accepted_payload_types
        )
        self.tls = TlsServerEngine(server.tls) if server.tls is not None else None
        self.transport: asyncio.Transport | None = None
        self.conn: V2gtpConnection | None = None
        self.peer: PeerInfo | None = None
        self.task: asyncio.Task | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._handshake_deadline: float | None = None
        self._assembly_deadline: float | None = None
        self._inactivity_deadline: float | None = None
        self._backlog: list[Frame] = []  # frames before the application's connection exists
        self._paused = False
        self._closing = False
        self._drain_waiters: list[asyncio.Future] = []
        self._write_paused = False

    # -- asyncio callbacks --------------------------------------------------- #
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peername = transport.get_extra_info("peername") or ("?", 0, 0, 0)
        sockname = transport.get_extra_info("sockname") or ("?", 0)
        self.peer = PeerInfo(
            host=str(peername[0]).split("%")[0],
            port=int(peername[1]),
            scope_id=int(peername[3]) if len(peername) > 3 else 0,
            local_port=int(sockname[1]),
        )
        self.server._protocols.add(self)
        now = self.loop.time()
        _log.info("EV connected from %s (%s)", self.peer, "TLS" if self.tls else "TCP")
        if self.tls is not None:
            self._handshake_deadline = now + self.server.handshake_timeout
        else:
            self._open_connection(None)
        self._inactivity_deadline = now + self.server.inactivity_timeout
        self._rearm()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        if self.tls is not None:
            was_done = self.tls.handshake_done
            plain = self.tls.receive_data(data)
            self._flush_tls()
            if self.tls.failure is not None:
                self._shutdown(self.tls.failure.reason, level=logging.WARNING)
                return
            if self.tls.handshake_done and not was_done:
                self._handshake_deadline = None
                details = self.tls.details
                assert details is not None
                _log.info(
                    "TLS with %s: %s %s, EV certificate: %s, trusted_ca_keys %s, OCSP stapled: %s",
                    self.peer, details.version, details.cipher,
                    details.peer_chain[0].subject.rfc4514_string() if details.peer_chain else "none",
                    "absent" if details.trusted_ca_keys is None else ("matched" if details.trusted_ca_keys_matched else "not matched"),
                    details.ocsp_stapled,
                )
                self._open_connection(details)
            if self.tls.peer_closed:
                self._feed(plain)
                self._eof()
                return
            data = plain
        self._feed(data)

    def eof_received(self) -> bool | None:
        self._eof()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._timer is not None:
            self._timer.cancel()
        self.server._protocols.discard(self)
        reason = f"connection lost: {exc}" if exc else "connection closed"
        if self.conn is not None:
            self.conn._mark_closed(self.conn.close_reason or reason)
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_result(None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        for fut in self._drain_waiters:
            if not fut.done():
                fut.set_result(None)
        self._drain_waiters.clear()

    # -- framing -------------------------------------------------------------- #
    def _feed(self, data: bytes) -> None:
        if not data or self._closing:
            return
        for event in self.framer.receive_data(data):
            if isinstance(event, Frame):
                self._inactivity_deadline = self.loop.time() + self.server.inactivity_timeout
                self._push(event)
            elif isinstance(event, FrameDiscarded):
                _log.warning("%s: V2GTP message discarded: %s", self.peer, event.describe())
            elif isinstance(event, ConnectionMustClose):
                self._shutdown(f"bad V2GTP header: {event.describe()}", level=logging.WARNING)
                return
        if self.framer.in_frame:
            if self._assembly_deadline is None:
                self._assembly_deadline = self.loop.time() + self.server.frame_assembly_timeout
        else:
            self._assembly_deadline = None
        self._rearm()

    def _push(self, event: Frame) -> None:
        if self.conn is None:
            self._backlog.append(event)
            return
        self.conn._deliver(event)
        if self.conn._queue.qsize() >= _QUEUE_HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()

    def _frame_taken(self) -> None:
        if self._paused and self.conn is not None and self.conn._queue.qsize() < _QUEUE_HIGH_WATER // 2:
            self._paused = False
            if self.transport is not None and not self._closing:
                self.transport.resume_reading()

    def _eof(self) -> None:
        if self._closing:
            return
        for event in self.framer.receive_eof():
            if isinstance(event, ConnectionMustClose):
                _log.warning("%s: %s", self.peer, event.describe())
        self._shutdown("peer closed the connection", level=logging.INFO)

    # -- application ---------------------------------------------------------- #
    def _open_connection(self, details: TlsDetails | None) -> None:
        assert self.peer is not None
        self.conn = V2gtpConnection(self, self.peer, details)
        for f in self._backlog:
            self.conn._deliver(f)
        self._backlog.clear()
        self.task = self.loop.create_task(self._run_handler(self.conn))
        self.server._tasks.add(self.task)
        self.task.add_done_callback(self.server._tasks.discard)

    async def _run_handler(self, conn: V2gtpConnection) -> None:
        try:
            await self.server.handler(conn)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("handler for %s failed; closing the connection", conn.peer)
            self._shutdown("application handler failed", level=logging.ERROR)
            return
        self._shutdown("handler finished", level=logging.DEBUG)

    def _write(self, data: bytes) -> None:
        if self._closing or self.transport is None:
            raise ConnectionError("connection is closed")
        if self.tls is not None:
            self.tls.send(data)
            self._flush_tls()
        else:
            self.transport.write(data)

    async def _drain(self) -> None:
        if self._write_paused and not self._closing:
            fut = self.loop.create_future()
            self._drain_waiters.append(fut)
            await fut

    def _flush_tls(self) -> None:
        assert self.tls is not None
        out = self.tls.data_to_send()
        if out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(out)

    # -- timers and closing ------------------------------------------------- #
    def _deadline(self) -> tuple[float, str] | None:
        candidates = []
        if self._handshake_deadline is not None:
            candidates.append((self._handshake_deadline, "TLS handshake not completed in time"))
        if self._assembly_deadline is not None:
            candidates.append((self._assembly_deadline, "V2GTP frame not completed in time (slow sender)"))
        if self._inactivity_deadline is not None:
            candidates.append((self._inactivity_deadline, "no V2GTP message within the inactivity timeout"))
        return min(candidates) if candidates else None

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closing:
            return
        nxt = self._deadline()
        if nxt is not None:
            self._timer = self.loop.call_at(nxt[0], self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        nxt = self._deadline()
        if nxt is None:
            return
        if self.loop.time() >= nxt[0]:
            self._shutdown(nxt[1], level=logging.WARNING)
        else:
            self._rearm()

    def _shutdown(self, reason: str, *, level: int) -> None:
        if self._closing:
            return
        self._closing = True
        _log.log(level, "closing connection %s: %s", self.peer, reason)
        if self._timer is not None:
            self._timer.cancel()
        if self.conn is not None:
            self.conn._mark_closed(reason)
        if self.transport is not None:
            if self.tls is not None:
                self.tls.close()
                out = self.tls.data_to_send()
                if out and not self.transport.is_closing():
                    self.transport.write(out)
            self.transport.close()
        if self.task is not None and self.task is not asyncio.current_task() and not self.task.done():
            # The handler sees receive() -> None; give it a moment, then the server's close() cancels.
            pass


class V2gtpServer:
    """Accepts EV connections over TCP or TLS and runs ``handler(conn)`` for each.

    Use ``async with V2gtpServer(handler, tls=..., port=...) as server:`` or
    ``await server.start()`` / ``await server.close()``. ``port`` 0 picks a free port
    (read ``server.port``). ``interface`` binds the socket to that network interface
    (``SO_BINDTODEVICE``), which is what a charger with a PLC interface wants.
    """

    def __init__(
        self,
        handler: ConnectionHandler,
        *,
        tls: TlsServerConfig | None = None,
        host: str = "::",
        port: int = 0,
        interface: str | None = None,
        max_payload_length: int = DEFAULT_MAX_PAYLOAD_LENGTH,
        accepted_payload_types=STREAM_PAYLOAD_TYPES,
        inactivity_timeout: float = timing.V2GTP_INACTIVITY_TIMEOUT,
        frame_assembly_timeout: float = timing.V2GTP_FRAME_ASSEMBLY_TIMEOUT,
        handshake_timeout: float = timing.TLS_HANDSHAKE_TIMEOUT,
        max_connections: int = 8,
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.host, self._port, self.interface = host, port, interface
        self.max_payload_length = max_payload_length
        self.accepted_payload_types = accepted_payload_types
        self.inactivity_timeout = inactivity_timeout
        self.frame_assembly_timeout = frame_assembly_timeout
        self.handshake_timeout = handshake_timeout
        self.max_connections = max_connections
        self._server: asyncio.base_events.Server | None = None
        self._protocols: set[_V2gtpProtocol] = set()
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop

    @property
    def port(self) -> int:
        return self._port

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and self.host == "::":
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            if self.interface:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.interface.encode())
            sock.bind(_bind_address(self.host, self._port, self.interface, family))
            sock.listen(self.max_connections)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._server = await self._loop.create_server(lambda: self._accept(), sock=sock)
        self._port = sock.getsockname()[1]
        _log.info("V2GTP %s server listening on port %d%s", "TLS" if self.tls else "TCP", self._port,
                  f" on {self.interface}" if self.interface else "")

    def _accept(self) -> asyncio.Protocol:
        if len(self._protocols) >= self.max_connections:
            return _Refuse()
        return _V2gtpProtocol(self)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for proto in list(self._protocols):
            proto._shutdown("server stopping", level=logging.INFO)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> "V2gtpServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Refuse(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        _log.warning("refusing connection from %s: too many connections", transport.get_extra_info("peername"))
        transport.close()


def _bind_address(host: str, port: int, interface: str | None, family: int) -> tuple:
    if family == socket.AF_INET:
        return (host, port)
    scope = socket.if_nametoindex(interface) if interface else 0
    if "%" in host:
        host, iface = host.split("%", 1)
        scope = socket.if_nametoindex(iface)
    return (host, port, 0, scope)
