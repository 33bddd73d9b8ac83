"""``SeccConnection``: one EV connection, sans-I/O, from V2GTP payloads to V2GTP payloads.

Rules of this module:

- Bytes in, bytes out: a V2GTP payload goes in with ``receive_payload``; the EXI payload to
  send (if any), the effects to start and whether to close come out as a :class:`WireStep`.
  It owns the SupportedAppProtocol handshake, EXI decoding and encoding, and the session
  core the handshake chose; it never reads a clock or touches a socket.
- The schema of every message after the handshake comes from the handshake, never from
  trying decoders (a DIN message decodes as a valid-looking ISO 15118-2 one). ISO 15118-20
  messages come in several schemas; the V2GTP payload type names which (0x8002 common
  messages, 0x8003 AC, 0x8004 DC; 0x8101 / 0x8102, the ScheduleRenegotiation and
  MeteringConfirmation streams, carry common messages), and a response goes out with the
  payload type of its own schema (``WireStep.payload_type``).
- ISO 15118-20 is offered only over TLS (unless ``Iso20Config.without_tls``) and only for
  a family the EVSE serves: ``-20:DC`` needs a DC energy transfer mode and a DC service,
  ``-20:AC`` an AC mode and an AC service.
- Real EVs send values outside the XSD's ranges (a Seres sends MaxNumberOfPhasesInUse 4):
  requests are decoded with ``strict=False``; our responses are encoded strictly.
- Anything undecodable ends the connection cleanly (no response can be built for a request
  nobody can read); so does a response we fail to encode (a bug, or a CSMS-supplied
  CertificateInstallationRes that does not fit the schema), after the cleanup effects.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pnc_bridge import exi
from pnc_bridge.exi._api import codec as _exi_codec
from pnc_bridge.link.v2gtp import PayloadType
from pnc_bridge.messages import apphand
from pnc_bridge.secc._common import EvseStatus, PowerSetpoint, ResumeContext, SeccConfig, Step
from pnc_bridge.secc._core import SessionCore
from pnc_bridge.secc.apphand import SupportedProtocol, negotiate
from pnc_bridge.secc.din import DinSession
from pnc_bridge.secc.effects import Effect, EffectResult
from pnc_bridge.secc.iso2 import Iso2Session
from pnc_bridge.secc.iso20 import Iso20AcSession, Iso20DcSession

__all__ = ["ISO20_PAYLOAD_SCHEMA", "SESSION_CORES", "SeccConnection", "WireStep", "iso20_payload_type"]

_log = logging.getLogger("pnc_bridge.secc")

#: SupportedProtocol.schema -> session core
SESSION_CORES: dict[str, type[SessionCore]] = {
    "din": DinSession, "iso2": Iso2Session, "iso20-dc": Iso20DcSession, "iso20-ac": Iso20AcSession,
}

#: ISO 15118-20: V2GTP payload type -> the exi schema of the message it carries
ISO20_PAYLOAD_SCHEMA: dict[int, str] = {
    PayloadType.MAINSTREAM: "iso20-common",
    PayloadType.AC_MAINSTREAM: "iso20-ac",
    PayloadType.DC_MAINSTREAM: "iso20-dc",
    PayloadType.SCHEDULE_RENEGOTIATION: "iso20-common",
    PayloadType.METERING_CONFIRMATION: "iso20-common",
}
_ISO20_TYPE_OF_SCHEMA = {"iso20-common": PayloadType.MAINSTREAM, "iso20-ac": PayloadType.AC_MAINSTREAM,
                         "iso20-dc": PayloadType.DC_MAINSTREAM}
_ISO20_SCHEMA_OF_CLASS: dict[type, str] = {}


def iso20_schema(message: Any) -> str:
    """The exi schema an ISO 15118-20 message belongs to (``iso20-common``, ``-ac``, ``-dc``)."""
    cls = type(message)
    schema = _ISO20_SCHEMA_OF_CLASS.get(cls)
    if schema is None:
        schema = next((s for s in ("iso20-common", "iso20-dc", "iso20-ac") if cls in _exi_codec(s).ROOTS), "iso20-common")
        _ISO20_SCHEMA_OF_CLASS[cls] = schema
    return schema


def iso20_payload_type(message: Any) -> PayloadType:
    """The V2GTP payload type an ISO 15118-20 message travels in."""
    return _ISO20_TYPE_OF_SCHEMA[iso20_schema(message)]


@dataclass(frozen=True, slots=True)
class WireStep:
    """``send``: EXI payload for a V2GTP frame of type ``EXI_ENCODED_V2G_MESSAGE`` (or
    ``None``); ``effects``, ``close``, ``reason``, ``resume`` as in :class:`Step`;
    ``request`` / ``response``: the decoded messages, for logs and timelines;
    ``payload_type``: the V2GTP payload type to send ``send`` with (ISO 15118-20 has one per
    message set; 0x8001 otherwise)."""

    send: bytes | None = None
    effects: tuple[Effect, ...] = ()
    close: bool = False
    reason: str = ""
    resume: ResumeContext | None = None
    request: Any = None
    response: Any = None
    payload_type: int = PayloadType.EXI_ENCODED_V2G_MESSAGE  # of ``send``


def message_name(message: Any) -> str:
    """``SessionSetupReq``, ``supportedAppProtocolRes``, ... for a decoded message."""
    if message is None:
        return "-"
    body = getattr(getattr(message, "body", None), "body_element", None)
    if body is None and hasattr(message, "header"):  # ISO 15118-20: the message itself
        return type(message).__name__
    if body is not None:
        name = type(body).__name__
        return "SessionStopReq" if name == "SessionStop" else name
    name = type(message).__name__
    return name[0].lower() + name[1:] if name.startswith("SupportedAppProtocol") else name


class SeccConnection:
    """The SECC side of one TCP/TLS connection. Call order, all with ``now`` = monotonic
    seconds: ``receive_payload`` for every V2GTP frame, ``resolve`` for every effect result,
    ``tick`` when ``deadline()`` passed, ``connection_lost`` when the transport ends;
    ``update_evse_status`` whenever the hardware reports. After a step with ``close=True``,
    send its payload (if any) and close."""

    def __init__(
        self,
        config: SeccConfig,
        *,
        now: float,
        unix_time: float,
        tls: bool = False,
        resume: ResumeContext | None = None,
        logger: logging.Logger | None = None,
    ) -> None:
        self.config = config
        self._unix_base = unix_time - now
        self._tls = tls
        self._resume = resume
        self._log = logger or _log
        self._status = config.initial_status
        self._setpoint: tuple[PowerSetpoint | None, float] | None = None
        self.protocol: SupportedProtocol | None = None
        self.session: SessionCore | None = None
        self._deadline: float | None = now + config.timers.sequence_timeout
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def deadline(self) -> float | None:
        if self._closed:
            return None
        return self.session.deadline() if self.session is not None else self._deadline

    def update_evse_status(self, status: EvseStatus) -> None:
        self._status = status
        if self.session is not None:
            self.session.update_evse_status(status)

    def update_setpoint(self, setpoint: PowerSetpoint | None, now: float) -> None:
        """ISO 15118-20 dynamic control: a power target for the next charge-loop responses
        (kept until a -20 session starts; other protocols have no setpoints)."""
        self._setpoint = (setpoint, now)
        update = getattr(self.session, "update_setpoint", None)
        if update is not None:
            update(setpoint, now)

    # -- inputs ------------------------------------------------------------ #
    def receive_payload(self, payload_type: int, payload: bytes, now: float) -> WireStep:
        if self._closed:
            return WireStep(close=True, reason="connection already closed")
        if self.session is None:
            if payload_type != PayloadType.SAP:
                return self._stop(now, f"V2GTP payload type {payload_type:#06x} before the SupportedAppProtocol handshake")
            return self._handshake(payload, now)
        assert self.protocol is not None
        if self.protocol.is_iso20:
            schema = ISO20_PAYLOAD_SCHEMA.get(payload_type)
            if schema is None:
                return self._stop(now, f"V2GTP payload type {payload_type:#06x} carries no ISO 15118-20 message this SECC serves")
        elif payload_type != PayloadType.EXI_ENCODED_V2G_MESSAGE:
            return self._stop(now, f"V2GTP payload type {payload_type:#06x} is not used by DIN 70121 / ISO 15118-2")
        else:
            schema = self.protocol.schema
        try:
            message = exi.decode(schema, payload, strict=False)
        except exi.ExiDecodeError as exc:
            return self._wrap(self.session.decode_failed(str(exc), now), None, now)
        return self._wrap(self.session.receive(message, now, raw=bytes(payload)), message, now)

    def resolve(self, result: EffectResult, now: float) -> WireStep:
        if self.session is None or self._closed:
            return WireStep()
        return self._wrap(self.session.resolve(result, now), None, now)

    def tick(self, now: float) -> WireStep:
        if self._closed:
            return WireStep()
        if self.session is None:
            if self._deadline is not None and now >= self._deadline:
                return self._stop(now, "no supportedAppProtocolReq within V2G_SECC_Sequence_Timeout")
            return WireStep()
        return self._wrap(self.session.tick(now), None, now)

    def connection_lost(self, now: float) -> WireStep:
        if self._closed:
            return WireStep()
        if self.session is None:
            self._closed = True
            return WireStep(close=True, reason="connection lost before the handshake")
        return self._wrap(self.session.connection_lost(now), None, now)

    # -- machinery --------------------------------------------------------- #
    def _stop(self, now: float, reason: str) -> WireStep:
        if self.session is not None:
            return self._wrap(self.session.abort(reason, now), None, now)
        self._log.warning("closing EV connection: %s", reason)
        self._closed = True
        return WireStep(close=True, reason=reason)

    def _handshake(self, payload: bytes, now: float) -> WireStep:
        try:
            request = exi.decode("apphand", payload, strict=False)
        except exi.ExiDecodeError as exc:
            return self._stop(now, f"undecodable supportedAppProtocolReq: {exc}")
        if not isinstance(request, apphand.SupportedAppProtocolReq):
            return self._stop(now, f"expected supportedAppProtocolReq, got {type(request).__name__}")
        result = negotiate(request, self._enabled(), prefer=self.config.protocol_priority)
        send = exi.encode("apphand", result.response)
        if result.protocol is None:
            self._log.warning("SupportedAppProtocol: %s", result.reason)
            self._closed = True
            return WireStep(send=send, close=True, reason=result.reason, request=request, response=result.response)
        self._log.info("SupportedAppProtocol: %s", result.reason)
        self.protocol = result.protocol
        core = SESSION_CORES[result.protocol.schema]
        self.session = core(
            self.config, now=now, unix_time=self._unix_base + now, tls=self._tls and result.protocol.schema != "din",
            resume=self._resume, logger=self._log,
        )
        self.session.update_evse_status(self._status)
        update = getattr(self.session, "update_setpoint", None)
        if update is not None and self._setpoint is not None:
            update(*self._setpoint)
        return WireStep(send=send, request=request, response=result.response)

    def _enabled(self) -> tuple[SupportedProtocol, ...]:
        """The configured protocols this EVSE can serve on this connection: DIN 70121 only
        with a DC mode; ISO 15118-20 only over TLS and for a family the EVSE serves."""
        modes = self.config.energy_transfer_modes
        dc = any(mode.is_dc for mode in modes)
        ac = any(not mode.is_dc for mode in modes)
        iso20 = self.config.iso20
        iso20_ok = self._tls or iso20.without_tls
        serves = {
            SupportedProtocol.DIN_70121: dc,
            SupportedProtocol.ISO_15118_20_DC: iso20_ok and dc and any(s.is_dc for s in iso20.services),
            SupportedProtocol.ISO_15118_20_AC: iso20_ok and ac and any(not s.is_dc for s in iso20.services),
        }
        return tuple(p for p in self.config.protocols if serves.get(p, True))

    def _wrap(self, step: Step, request: Any, now: float) -> WireStep:
        send = None
        payload_type = PayloadType.EXI_ENCODED_V2G_MESSAGE
        if step.response is not None:
            try:
                if self.protocol.is_iso20:  # type: ignore[union-attr]
                    schema = iso20_schema(step.response)
                    payload_type = _ISO20_TYPE_OF_SCHEMA[schema]
                else:
                    schema = self.protocol.schema  # type: ignore[union-attr]
                send = exi.encode(schema, step.response)
            except exi.ExiEncodeError as exc:
                self._log.error("cannot encode %s: %s", message_name(step.response), exc)
                aborted = self.session.abort(f"response not encodable: {exc}", now)  # type: ignore[union-attr]
                self._closed = True
                return WireStep(effects=step.effects + aborted.effects, close=True, reason=f"response not encodable: {exc}",
                                request=request)
        if step.close:
            self._closed = True
        return WireStep(send=send, effects=step.effects, close=step.close, reason=step.reason, resume=step.resume,
                        request=request, response=step.response, payload_type=payload_type)
