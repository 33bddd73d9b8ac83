"""V2GTP (V2G Transfer Protocol) framing, sans-I/O.

Rules of this module:

- No sockets, no clocks, no logging side effects. Bytes go in through
  ``V2gtpFramer.receive_data``; what happened comes out as a list of events (``Frame``,
  ``FrameDiscarded``, ``ConnectionMustClose``). Nothing the peer sends makes it raise.
- The framer keeps its own buffer: one ``read()`` is never one message.
- The header is 8 octets: protocol version (0x01), its bitwise inverse (0xFE), payload type
  (uint16, big endian), payload length (uint32, big endian).

What happens on a bad header (the receiving side of the header check):

================================  =================================  ======================
fault                             event                              stream afterwards
================================  =================================  ======================
version / inverse version wrong   ``ConnectionMustClose(BAD_VERSION)``  unusable: close
payload length over the cap       ``ConnectionMustClose(TOO_LARGE)``    unusable: close
payload type not accepted         ``FrameDiscarded(UNKNOWN_TYPE)``      payload skipped, go on
================================  =================================  ======================

A wrong version pattern means the byte stream is out of step or is not V2GTP at all, so
nothing after it can be trusted. An oversize length cannot be honoured without buffering
what the cap forbids, so the connection ends as well. An unknown payload type with a sane
length is skipped without buffering it, and the next header is read.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Iterable, Union

__all__ = [
    "V2GTP_VERSION",
    "V2GTP_HEADER_LENGTH",
    "DEFAULT_MAX_PAYLOAD_LENGTH",
    "PayloadType",
    "ISO15118_2_PAYLOAD_TYPES",
    "ISO15118_20_PAYLOAD_TYPES",
    "SDP_PAYLOAD_TYPES",
    "Frame",
    "FrameDiscarded",
    "ConnectionMustClose",
    "CloseReason",
    "V2gtpEvent",
    "V2gtpFramer",
    "frame",
    "parse_datagram",
]

#: Protocol version of V2GTP in ISO 15118-2, ISO 15118-20 and DIN SPEC 70121.
V2GTP_VERSION = 0x01
V2GTP_HEADER_LENGTH = 8
_HEADER = struct.Struct("!BBHI")

#: Largest payload accepted by default. The biggest messages on the link are
#: CertificateInstallationRes / CertificateUpdateRes (a contract chain plus encrypted key,
#: a few kB in EXI); 64 KiB leaves room for ISO 15118-20 schedules and vendor extensions
#: while keeping one connection's buffer small.
DEFAULT_MAX_PAYLOAD_LENGTH = 65536


class PayloadType(enum.IntEnum):
    """V2GTP payload types, named as in ISO 15118-2 / ISO 15118-20.

    ISO 15118-2 and DIN SPEC 70121 use ``EXI_ENCODED_V2G_MESSAGE`` for every message
    including supportedAppProtocol; ISO 15118-20 uses ``SAP`` (the same value, 0x8001) for
    the supportedAppProtocol handshake and one type per message set after it.
    """

    EXI_ENCODED_V2G_MESSAGE = 0x8001
    SAP = 0x8001  # alias: ISO 15118-20 name of the same value
    MAINSTREAM = 0x8002  # ISO 15118-20 common messages
    AC_MAINSTREAM = 0x8003
    DC_MAINSTREAM = 0x8004
    ACDP_MAINSTREAM = 0x8005
    WPT_MAINSTREAM = 0x8006
    SCHEDULE_RENEGOTIATION = 0x8101
    METERING_CONFIRMATION = 0x8102
    ACDP_SYSTEM_STATUS = 0x8103
    PARKING_STATUS = 0x8104
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001
    SDP_REQUEST_WIRELESS = 0x9002
    SDP_RESPONSE_WIRELESS = 0x9003


#: Payload types that may arrive over TCP/TLS for each protocol family.
ISO15118_2_PAYLOAD_TYPES = frozenset({PayloadType.EXI_ENCODED_V2G_MESSAGE})
ISO15118_20_PAYLOAD_TYPES = frozenset(
    {
        PayloadType.SAP,
        PayloadType.MAINSTREAM,
        PayloadType.AC_MAINSTREAM,
        PayloadType.DC_MAINSTREAM,
        PayloadType.ACDP_MAINSTREAM,
        PayloadType.WPT_MAINSTREAM,
        PayloadType.SCHEDULE_RENEGOTIATION,
        PayloadType.METERING_CONFIRMATION,
        PayloadType.ACDP_SYSTEM_STATUS,
        PayloadType.PARKING_STATUS,
    }
)
SDP_PAYLOAD_TYPES = frozenset({PayloadType.SDP_REQUEST, PayloadType.SDP_RESPONSE})
#: Everything that is legal on the TCP/TLS channel (the default of the framer).
STREAM_PAYLOAD_TYPES = ISO15118_2_PAYLOAD_TYPES | ISO15118_20_PAYLOAD_TYPES


class CloseReason(enum.Enum):
    """Why the framer says the byte stream cannot continue."""

    BAD_VERSION = "protocol version or inverse protocol version wrong"
    TOO_LARGE = "payload length exceeds the receive buffer"
    TRUNCATED = "connection ended inside a frame"


@dataclass(frozen=True)
class Frame:
    """One complete V2GTP message."""

    payload_type: int
    payload: bytes


@dataclass(frozen=True)
class FrameDiscarded:
    """A well-formed header with a payload type this endpoint does not accept.

    The payload was skipped; the connection goes on.
    """

    payload_type: int
    payload_length: int
    reason: str = "unknown payload type"

    def describe(self) -> str:
        return f"{self.reason} 0x{self.payload_type:04x} ({self.payload_length} octets)"


@dataclass(frozen=True)
class ConnectionMustClose:
    """The stream is unusable; the adapter closes the connection. Nothing follows."""

    reason: CloseReason
    header: bytes = b""

    def describe(self) -> str:
        return f"{self.reason.value} (header {self.header.hex() or '-'})"


V2gtpEvent = Union[Frame, FrameDiscarded, ConnectionMustClose]


def frame(payload_type: int, payload: bytes) -> bytes:
    """Return ``payload`` with its V2GTP header in front.

    Raises ``ValueError`` for a payload type outside 16 bits or a payload over 4 GiB:
    that is a bug in our code, not something the peer can cause.
    """
    if not 0 <= int(payload_type) <= 0xFFFF:
        raise ValueError(f"payload type {payload_type!r} does not fit 16 bits")
    if len(payload) > 0xFFFFFFFF:
        raise ValueError("payload longer than a V2GTP length can say")
    return _HEADER.pack(V2GTP_VERSION, V2GTP_VERSION ^ 0xFF, int(payload_type), len(payload)) + bytes(payload)


class V2gtpFramer:
    """Splits a byte stream into V2GTP frames.

    Call ``receive_data(data)`` with whatever the transport delivered and act on each
    returned event in order. After ``ConnectionMustClose`` the framer ignores further
    data (returns ``[]``). Call ``receive_eof()`` when the peer closed its side.

    ``in_frame`` tells the adapter whether a frame has started but not completed, so it can
    run the frame-assembly timer (slow-loris guard) only while it matters.
    """

    def __init__(
        self,
        *,
        max_payload_length: int = DEFAULT_MAX_PAYLOAD_LENGTH,
        accepted_payload_types: Iterable[int] = STREAM_PAYLOAD_TYPES,
    ) -> None:
        if max_payload_length < 0:
            raise ValueError("max_payload_length must be >= 0")
        self.max_payload_length = max_payload_length
        self.accepted_payload_types = frozenset(int(t) for t in accepted_payload_types)
        self._buffer = bytearray()
        self._skip = 0  # payload octets of a discarded frame still to drop
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def in_frame(self) -> bool:
        return not self._closed and (bool(self._buffer) or self._skip > 0)

    def receive_data(self, data: bytes) -> list[V2gtpEvent]:
        if self._closed:
            return []
        events: list[V2gtpEvent] = []
        view = memoryview(data)
        if self._skip:
            n = min(self._skip, len(view))
            self._skip -= n
            view = view[n:]
        self._buffer += view
        while not self._closed:
            if self._skip:
                n = min(self._skip, len(self._buffer))
                self._skip -= n
                del self._buffer[:n]
                if self._skip:
                    break
            if len(self._buffer) < V2GTP_HEADER_LENGTH:
                break
            header = bytes(self._buffer[:V2GTP_HEADER_LENGTH])
            version, inverse, payload_type, length = _HEADER.unpack(header)
            if version != V2GTP_VERSION or inverse != V2GTP_VERSION ^ 0xFF:
                events.append(self._close(CloseReason.BAD_VERSION, header))
                break
            if length > self.max_payload_length:
                events.append(self._close(CloseReason.TOO_LARGE, header))
                break
            if payload_type not in self.accepted_payload_types:
                del self._buffer[:V2GTP_HEADER_LENGTH]
                self._skip = length
                events.append(FrameDiscarded(payload_type, length))
                continue
            end = V2GTP_HEADER_LENGTH + length
            if len(self._buffer) < end:
                break
            events.append(Frame(payload_type, bytes(self._buffer[V2GTP_HEADER_LENGTH:end])))
            del self._buffer[:end]
        return events

    def receive_eof(self) -> list[V2gtpEvent]:
        """The peer closed its side. Reports a truncated frame if one was in progress."""
        if self._closed:
            return []
        pending = self.in_frame
        header = bytes(self._buffer[:V2GTP_HEADER_LENGTH])
        self._closed = True
        self._buffer.clear()
        return [ConnectionMustClose(CloseReason.TRUNCATED, header)] if pending else []

    def _close(self, reason: CloseReason, header: bytes) -> ConnectionMustClose:
        self._closed = True
        self._buffer.clear()
        return ConnectionMustClose(reason, header)


def parse_datagram(
    data: bytes, accepted_payload_types: Iterable[int], max_payload_length: int = 1024
) -> Frame | FrameDiscarded | ConnectionMustClose:
    """Check one UDP datagram that must hold exactly one V2GTP message (SDP).

    Returns the ``Frame``, or a ``FrameDiscarded``/``ConnectionMustClose`` value describing
    why the datagram is dropped (for UDP both mean: drop it and go on).
    """
    framer = V2gtpFramer(max_payload_length=max_payload_length, accepted_payload_types=accepted_payload_types)
    events = framer.receive_data(data)
    if len(events) == 1 and isinstance(events[0], Frame) and not framer.in_frame:
        return events[0]
    for event in events:
        if not isinstance(event, Frame):
            return event
    if not events or framer.in_frame:
        header = bytes(data[:V2GTP_HEADER_LENGTH])
        # A length that does not match the datagram: the message is incomplete or has trailing bytes.
        return ConnectionMustClose(CloseReason.TRUNCATED, header)
    return FrameDiscarded(events[0].payload_type, len(data), "trailing octets after the V2GTP message")
