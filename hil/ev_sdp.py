"""EV-side SDP client (ISO 15118-2 / -20 SECC discovery) for tests, rigs and `link sdp-probe`.

Sends an SDP request to ``[ff02::1%IFACE]:15118`` and repeats it every
``SDP_CLIENT_RETRY_INTERVAL`` until an answer arrives or ``SDP_CLIENT_MAX_REQUESTS`` were sent.
"""

from __future__ import annotations

import asyncio
import socket

from pnc_bridge import timing
from pnc_bridge.link.sdp import (
    SDP_MULTICAST_ADDRESS,
    SDP_PORT,
    SdpIgnored,
    SdpRequest,
    SdpResponse,
    Security,
    TransportProtocol,
    decode_response,
    encode_request,
)

__all__ = ["discover_secc"]


async def discover_secc(
    iface: str,
    security: Security = Security.TLS,
    *,
    port: int = SDP_PORT,
    interval: float = timing.SDP_CLIENT_RETRY_INTERVAL,
    max_requests: int = timing.SDP_CLIENT_MAX_REQUESTS,
    on_ignored=None,
) -> SdpResponse | None:
    """Return the first valid SDP response, or None when every request went unanswered."""
    loop = asyncio.get_running_loop()
    index = socket.if_nametoindex(iface)
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
    sock.bind(("::", 0, 0, index))
    sock.setblocking(False)
    request = encode_request(SdpRequest(security, TransportProtocol.TCP))
    try:
        for _ in range(max_requests):
            await loop.sock_sendto(sock, request, (SDP_MULTICAST_ADDRESS, port, 0, index))
            end = loop.time() + interval
            while (remaining := end - loop.time()) > 0:
                try:
                    data = await asyncio.wait_for(loop.sock_recv(sock, 2048), remaining)
                except asyncio.TimeoutError:
                    break
                response = decode_response(data)
                if isinstance(response, SdpIgnored):
                    if on_ignored is not None:
                        on_ignored(response.reason)
                    continue
                return response
        return None
    finally:
        sock.close()
