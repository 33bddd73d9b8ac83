"""``SeccConnection``: one EV connection, sans-I/O, from V2GTP payloads to V2GTP payloads.

Rules of this module:

- Bytes in, bytes out: a V2GTP payload goes in with ``receive_payload``; the EXI payload to
  send (if any), the effects to start and whether to close come out as a :class:`WireStep`.
  It owns the SupportedAppProtocol handshake, EXI decoding and encoding, and the session
  core the handshake chose; it never reads a clock or touches a socket.
- The schema of every message after the handshake comes from the handshake, never from
  trying decoders (a DIN message decodes as a valid-looking ISO 15118-2 one).
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
from pnc_bridge.link.v2gtp import PayloadType
from pnc_bridge.messages import apphand
from pnc_bridge.secc._common import EvseStatus, ResumeContext, SeccConfig, Step
from pnc_bridge.secc._core import SessionCore
from pnc_bridge.secc.apphand import SupportedProtocol, negotiate
from pnc_bridge.secc.din import DinSession
from pnc_bridge.secc.effects import Effect, EffectResult
from pnc_bridge.secc.iso2 import Iso2Session

__all__ = ["SESSION_CORES", "SeccConnection", "WireStep"]

_log = logging.getLogger("pnc_bridge.secc")

#: schema -> session core; ISO 15118-20 adds its cores here
SESSION_CORES: dict[str, type[SessionCore]] = {"din": DinSession, "iso2": Iso2Session}


@dataclass(frozen=True, slots=True)
class WireStep:
    """``send``: EXI payload for a V2GTP frame of type ``EXI_ENCODED_V2G_MESSAGE`` (or
    ``None``); ``effects``, ``close``, ``reason``, ``resume`` as in :class:`Step`;
    ``request`` / ``response``: the decoded messages, for logs and timelines."""

    send: bytes | None = None
    effects: tuple[Effect, ...] = ()
    close: bool = False
    reason: str = ""
    resume: ResumeContext | None = None
    request: Any = None
    response: Any = None


def message_name(message: Any) -> str:
    """``SessionSetupReq``, ``supportedAppProtocolRes``, ... for a decoded message."""
    if message is None:
        return "-"
    body = getattr(getattr(message, "body", None), "body_element", None)
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

    # -- inputs ------------------------------------------------------------ #
    def receive_payload(self, payload_type: int, payload: bytes, now: float) -> WireStep:
        if self._closed:
            return WireStep(close=True, reason="connection already closed")
        if payload_type != PayloadType.EXI_ENCODED_V2G_MESSAGE:
            return self._stop(now, f"V2GTP payload type {payload_type:#06x} is not used by DIN 70121 / ISO 15118-2")
        if self.session is None:
            return self._handshake(payload, now)
        try:
            message = exi.decode(self.protocol.schema, payload, strict=False)  # type: ignore[union-attr]
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
        return WireStep(send=send, request=request, response=result.response)

    def _enabled(self) -> tuple[SupportedProtocol, ...]:
        """The configured protocols this EVSE can serve: DIN 70121 only with a DC mode."""
        dc = any(mode.is_dc for mode in self.config.energy_transfer_modes)
        return tuple(p for p in self.config.protocols if p is not SupportedProtocol.DIN_70121 or dc)

    def _wrap(self, step: Step, request: Any, now: float) -> WireStep:
        send = None
        if step.response is not None:
            try:
                send = exi.encode(self.protocol.schema, step.response)  # type: ignore[union-attr]
            except exi.ExiEncodeError as exc:
                self._log.error("cannot encode %s: %s", message_name(step.response), exc)
                aborted = self.session.abort(f"response not encodable: {exc}", now)  # type: ignore[union-attr]
                self._closed = True
                return WireStep(effects=step.effects + aborted.effects, close=True, reason=f"response not encodable: {exc}",
                                request=request)
        if step.close:
            self._closed = True
        return WireStep(send=send, effects=step.effects, close=step.close, reason=step.reason, resume=step.resume,
                        request=request, response=step.response)
