"""SECC Discovery Protocol (SDP), sans-I/O.

Rules of this module:

- ``SdpResponder.receive_datagram(data)`` takes one UDP datagram and returns an
  ``SdpAnswer`` (bytes to send back to the sender) or an ``SdpIgnored`` value saying why
  the datagram is dropped. It never raises on what the EV sends and never touches a socket.
- SDP messages are V2GTP messages (payload types 0x9000 request / 0x9001 response) sent
  over UDP to ``[ff02::1]:15118``; the answer goes back to the sender's address and port.
- Request payload: Security (1 octet), TransportProtocol (1 octet).
  Response payload: SECC IP address (16 octets, IPv6), SECC port (uint16), Security,
  TransportProtocol.

How the answer is chosen (``SdpPolicy``):

=====================  ===========================  ===================================
EV asks for            charger offers               answer
=====================  ===========================  ===================================
TLS                    TLS port                     TLS port, Security = TLS
TLS                    only plain TCP               TCP port, Security = NO_TLS
NO_TLS                 plain TCP port               TCP port, Security = NO_TLS
NO_TLS                 only TLS (e.g. PnC only)     TLS port, Security = TLS
=====================  ===========================  ===================================

The EV decides what to do with an answer that differs from its request (it may connect or
give up); the SECC never offers a channel it does not listen on. The transport is always
TCP: UDP for V2G messages is reserved in ISO 15118-2, so a request for it is answered TCP.
"""

from __future__ import annotations

import enum
import ipaddress
import struct
from dataclasses import dataclass
from typing import Union

from pnc_bridge.link.v2gtp import Frame, PayloadType, frame, parse_datagram

__all__ = [
    "SDP_PORT",
    "SDP_MULTICAST_ADDRESS",
    "Security",
    "TransportProtocol",
    "SdpRequest",
    "SdpResponse",
    "SdpPolicy",
    "SdpAnswer",
    "SdpIgnored",
    "SdpResponder",
    "encode_request",
    "decode_request",
    "encode_response",
    "decode_response",
]

#: UDP port of the SDP server (V2G_UDP_SDP_SERVER).
SDP_PORT = 15118
#: All-nodes link-local multicast address the EV sends its SDP request to.
SDP_MULTICAST_ADDRESS = "ff02::1"

_RESPONSE = struct.Struct("!16sHBB")


class Security(enum.IntEnum):
    """SDP Security field."""

    TLS = 0x00  # secured with TLS
    NO_TLS = 0x10  # no transport layer security


class TransportProtocol(enum.IntEnum):
    """SDP TransportProtocol field."""

    TCP = 0x00
    UDP = 0x10  # reserved for V2G messages in ISO 15118-2


@dataclass(frozen=True)
class SdpRequest:
    security: Security
    transport_protocol: TransportProtocol


@dataclass(frozen=True)
class SdpResponse:
    secc_ip_address: ipaddress.IPv6Address
    secc_port: int
    security: Security
    transport_protocol: TransportProtocol


@dataclass(frozen=True)
class SdpIgnored:
    """A datagram that gets no answer, and why (for the log)."""

    reason: str


@dataclass(frozen=True)
class SdpAnswer:
    request: SdpRequest
    response: SdpResponse
    data: bytes  # the V2GTP datagram to send back


def encode_request(request: SdpRequest) -> bytes:
    return frame(PayloadType.SDP_REQUEST, bytes([request.security, request.transport_protocol]))


def encode_response(response: SdpResponse) -> bytes:
    payload = _RESPONSE.pack(
        response.secc_ip_address.packed, response.secc_port, response.security, response.transport_protocol
    )
    return frame(PayloadType.SDP_RESPONSE, payload)


def decode_request(data: bytes) -> SdpRequest | SdpIgnored:
    """Decode one datagram as an SDP request, or say why it is not one."""
    msg = parse_datagram(data, {PayloadType.SDP_REQUEST}, max_payload_length=64)
    if not isinstance(msg, Frame):
        return SdpIgnored(f"not an SDP request: {msg.describe()}")
    if len(msg.payload) != 2:
        return SdpIgnored(f"SDP request payload is {len(msg.payload)} octets, expected 2")
    try:
        security = Security(msg.payload[0])
    except ValueError:
        return SdpIgnored(f"SDP request Security 0x{msg.payload[0]:02x} is not defined")
    try:
        transport = TransportProtocol(msg.payload[1])
    except ValueError:
        return SdpIgnored(f"SDP request TransportProtocol 0x{msg.payload[1]:02x} is not defined")
    return SdpRequest(security, transport)


def decode_response(data: bytes) -> SdpResponse | SdpIgnored:
    """Decode one datagram as an SDP response (EV side), or say why it is not one."""
    msg = parse_datagram(data, {PayloadType.SDP_RESPONSE}, max_payload_length=64)
    if not isinstance(msg, Frame):
        return SdpIgnored(f"not an SDP response: {msg.describe()}")
    if len(msg.payload) != _RESPONSE.size:
        return SdpIgnored(f"SDP response payload is {len(msg.payload)} octets, expected {_RESPONSE.size}")
    raw_ip, port, security, transport = _RESPONSE.unpack(msg.payload)
    try:
        return SdpResponse(ipaddress.IPv6Address(raw_ip), port, Security(security), TransportProtocol(transport))
    except ValueError as exc:
        return SdpIgnored(f"SDP response field out of range: {exc}")


@dataclass(frozen=True)
class SdpPolicy:
    """What the SECC offers: its address and the ports it listens on.

    ``tls_port`` / ``tcp_port`` of ``None`` mean that channel is not offered. At least one
    must be set. A charger that does Plug & Charge only (ISO 15118-20, or -2 PnC) offers
    just ``tls_port``.
    """

    secc_ip_address: ipaddress.IPv6Address
    tls_port: int | None = None
    tcp_port: int | None = None

    def __post_init__(self) -> None:
        if self.tls_port is None and self.tcp_port is None:
            raise ValueError("SdpPolicy needs a TLS port, a TCP port, or both")
        for port in (self.tls_port, self.tcp_port):
            if port is not None and not 0 < port < 65536:
                raise ValueError(f"port {port} out of range")
        if not isinstance(self.secc_ip_address, ipaddress.IPv6Address):
            object.__setattr__(self, "secc_ip_address", ipaddress.IPv6Address(self.secc_ip_address))

    def choose(self, request: SdpRequest) -> SdpResponse:
        wants_tls = request.security == Security.TLS
        if (wants_tls and self.tls_port is not None) or self.tcp_port is None:
            port, security = self.tls_port, Security.TLS
        else:
            port, security = self.tcp_port, Security.NO_TLS
        assert port is not None
        return SdpResponse(self.secc_ip_address, port, security, TransportProtocol.TCP)


class SdpResponder:
    """Answers SDP requests according to an ``SdpPolicy``.

    ``policy`` may be replaced at any time (e.g. when the TLS server is stopped), and the
    next answer uses the new one.
    """

    def __init__(self, policy: SdpPolicy) -> None:
        self.policy = policy

    def receive_datagram(self, data: bytes) -> SdpAnswer | SdpIgnored:
        request = decode_request(data)
        if isinstance(request, SdpIgnored):
            return request
        response = self.policy.choose(request)
        return SdpAnswer(request, response, encode_response(response))


SdpResult = Union[SdpAnswer, SdpIgnored]
