"""asyncio SDP server: UDP port 15118 on the PLC interface, answers with ``SdpResponder``.

Rules of this module: the socket is bound to ``[::]:15118`` on one interface
(``SO_BINDTODEVICE``) and joins ``ff02::1`` there, so it hears the EV's multicast request
and nothing from other interfaces. Every datagram goes through the sans-I/O
``SdpResponder``; ignored datagrams are logged (rate-limited by the logging config), never
raised. Answers go back unicast to the sender's address, port and scope.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import struct
from pathlib import Path

from pnc_bridge.link.sdp import SDP_MULTICAST_ADDRESS, SDP_PORT, SdpAnswer, SdpPolicy, SdpResponder

__all__ = ["SdpServer", "link_local_address"]

_log = logging.getLogger(__name__)


def link_local_address(iface: str) -> ipaddress.IPv6Address:
    """The interface's IPv6 link-local address (fe80::/10), from if_inet6 of this thread's
    network namespace.

    Raises ``LookupError`` when it has none (IPv6 off, or still tentative from DAD).
    """
    for line in Path("/proc/thread-self/net/if_inet6").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[5] == iface and int(parts[3], 16) == 0x20:
            flags = int(parts[4], 16)
            if flags & 0x40:  # IFA_F_TENTATIVE: DAD not finished
                continue
            return ipaddress.IPv6Address(bytes.fromhex(parts[0]))
    raise LookupError(f"{iface} has no usable IPv6 link-local address (is IPv6 enabled and DAD finished?)")


class _SdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: "SdpServer") -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        result = self.server.responder.receive_datagram(data)
        if isinstance(result, SdpAnswer):
            _log.info(
                "SDP request from %s (%s, %s) -> %s port %d %s",
                addr[0], result.request.security.name, result.request.transport_protocol.name,
                result.response.secc_ip_address, result.response.secc_port, result.response.security.name,
            )
            self.server.answered += 1
            assert self.transport is not None
            self.transport.sendto(result.data, addr)
        else:
            self.server.ignored += 1
            _log.warning("SDP datagram from %s ignored: %s", addr[0], result.reason)

    def error_received(self, exc: Exception) -> None:
        _log.warning("SDP socket error: %s", exc)


class SdpServer:
    """Answers SDP on ``iface``. ``policy`` says which address and ports to announce.

    ``async with SdpServer("eth1", SdpPolicy(addr, tls_port=...)):`` or ``start()`` /
    ``close()``. ``responder.policy`` may be replaced while running.
    """

    def __init__(self, iface: str, policy: SdpPolicy, *, port: int = SDP_PORT) -> None:
        self.iface = iface
        self.responder = SdpResponder(policy)
        self.port = port
        self.answered = 0
        self.ignored = 0
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        index = socket.if_nametoindex(self.iface)
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.iface.encode())
            sock.bind(("::", self.port, 0, 0))
            mreq = socket.inet_pton(socket.AF_INET6, SDP_MULTICAST_ADDRESS) + struct.pack("@I", index)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._transport, _ = await loop.create_datagram_endpoint(lambda: _SdpProtocol(self), sock=sock)
        _log.info("SDP server on %s port %d", self.iface, self.port)

    async def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    async def __aenter__(self) -> "SdpServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
