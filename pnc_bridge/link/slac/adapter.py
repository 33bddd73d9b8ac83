"""asyncio adapter for SLAC: an AF_PACKET socket for ethertype 0x88E1 and a service loop.

Rules of this module:

- ``RawSocket`` only moves Ethernet frames (Linux, needs CAP_NET_RAW). It never parses them.
- ``SlacService`` feeds frames and CP-state changes into a ``SlacEvse`` with
  ``loop.time()`` as ``now``, sends the ``SendFrame`` outputs, hands ``SlacEvent``s to the
  application callback, and keeps one timer armed at ``SlacEvse.deadline()``.
- A callback that raises is logged; it does not stop the service.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import fcntl
import struct
from typing import Callable

from pnc_bridge.link.slac import frames as f
from pnc_bridge.link.slac.evse import CpState, FrameIgnored, SendFrame, SlacEvent, SlacEvse

__all__ = ["RawSocket", "SlacService", "interface_mac"]

_log = logging.getLogger(__name__)


def interface_mac(iface: str) -> bytes:
    """The MAC address of a network interface (SIOCGIFHWADDR, so it also works in a thread
    that entered another network namespace). Raises ``OSError`` for an unknown interface."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("256s", iface.encode()[:15])
        res = fcntl.ioctl(s.fileno(), 0x8927, req)  # SIOCGIFHWADDR
    return res[18:24]


class RawSocket:
    """A non-blocking AF_PACKET socket that sends and receives HomePlug AV frames on ``iface``."""

    def __init__(self, iface: str, ethertype: int = f.ETH_P_HOMEPLUG, *, include_outgoing: bool = False) -> None:
        """``include_outgoing``: also deliver frames this host sent (for monitors; the kernel
        passes outgoing frames only to ETH_P_ALL sockets, so use ``ethertype=0x0003`` then)."""
        self.iface = iface
        self.include_outgoing = include_outgoing
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ethertype))
        try:
            self.sock.bind((iface, ethertype))
            self.sock.setblocking(False)
        except OSError:
            self.sock.close()
            raise
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, on_frame: Callable[[bytes], None]) -> None:
        self._loop = asyncio.get_running_loop()

        def readable() -> None:
            for _ in range(64):  # drain a burst, then yield to the loop
                try:
                    data, addr = self.sock.recvfrom(65535)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    _log.error("%s: receive failed: %s", self.iface, exc)
                    return
                if addr[2] == socket.PACKET_OUTGOING and not self.include_outgoing:
                    continue  # our own transmissions
                try:
                    on_frame(data)
                except Exception:
                    _log.exception("%s: frame handler failed", self.iface)

        self._loop.add_reader(self.sock.fileno(), readable)

    def send(self, frame: bytes) -> None:
        try:
            self.sock.send(frame)
        except OSError as exc:
            _log.error("%s: send failed: %s", self.iface, exc)

    def close(self) -> None:
        if self._loop is not None:
            try:
                self._loop.remove_reader(self.sock.fileno())
            except (ValueError, OSError):
                pass
        self.sock.close()


class SlacService:
    """Runs a ``SlacEvse`` on a PLC interface.

    ``on_event(event)`` receives every ``SlacEvent`` (``Matched``, ``MatchingFailed``,
    ``FrameIgnored`` ...). Call ``cp_state(CpState.B)`` etc. from the EVSE driver.
    """

    def __init__(self, iface: str, on_event: Callable[[SlacEvent], None], *, evse: SlacEvse | None = None, **evse_kwargs) -> None:
        self.iface = iface
        self.evse = evse or SlacEvse(interface_mac(iface), **evse_kwargs)
        self.on_event = on_event
        self._sock: RawSocket | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = RawSocket(self.iface)
        self._sock.start(lambda frame: self._handle(self.evse.receive_frame(frame, self._now())))
        _log.info("SLAC EVSE on %s (%s)", self.iface, f.mac_str(self.evse.evse_mac))

    def cp_state(self, state: CpState) -> None:
        self._handle(self.evse.cp_state(state, self._now()))

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def __aenter__(self) -> "SlacService":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _handle(self, outputs: list) -> None:
        for out in outputs:
            if isinstance(out, SendFrame):
                if self._sock is not None:
                    _log.debug("%s: send %s", self.iface, type(out.message).__name__)
                    self._sock.send(out.frame)
            else:
                if isinstance(out, FrameIgnored):
                    _log.debug("%s: ignored frame: %s", self.iface, out.reason)
                else:
                    _log.info("%s: %s", self.iface, out)
                try:
                    self.on_event(out)
                except Exception:
                    _log.exception("SLAC event handler failed on %r", out)
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.evse.deadline()
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, lambda: self._handle(self.evse.tick(self._now())))
