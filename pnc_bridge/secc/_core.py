"""The machinery every session core (DIN 70121, ISO 15118-2, ISO 15118-20) shares: sequence and session-ID checks,
held responses, effect bookkeeping, timers and the clean stop.

Rules of this module:

- A protocol supplies its ``State`` enum, the ``EXPECTED`` check, one pure handler per request
  type and the minimal negative response per request type; this base runs them.
- Handlers are functions ``(ctx, request, now) -> Reply | Hold``. They read and write the
  session's private :class:`Context`, start effects through ``ctx.request`` / ``ctx.notify``
  and choose the next state by returning it. A handler that needs an effect's result before
  it can answer returns :class:`Hold`; the base re-runs it when a result arrives, and sends
  ``Hold.on_timeout`` when the hold deadline passes. Handlers must be idempotent for that.
- ``receive`` never raises on anything the EV sends: a request of the wrong kind, in the
  wrong state or with a foreign SessionID gets its minimal negative response
  ([V2G2-538] sequence, [V2G2-460] session, as EVerest quotes them) and the session stops:
  every FAILED response closes the connection ([V2G2-539], as EVerest quotes it), after
  the cleanup effects (open the contactors, end the transaction).
- Nothing here reads a clock: ``now`` (monotonic seconds) comes with every call and
  ``unix_time`` at construction anchors the timestamps the EV sees.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, ClassVar

from pnc_bridge.secc._common import EvseStatus, ResumeContext, SeccConfig, Step
from pnc_bridge.secc.effects import (
    ChargingState,
    CloseContactor,
    Effect,
    EffectResult,
    EnergyTransferMode,
    Notification,
    OpenContactor,
    PaymentOption,
    ReportChargingState,
    Request,
    SetDcTarget,
    StopReason,
    StopTransaction,
)

__all__ = ["Context", "Hold", "Reply", "SessionCore"]

_log = logging.getLogger("pnc_bridge.secc")


@dataclass(slots=True)
class Reply:
    """A handler's answer: the response body, the next state (``None``: stay), and whether
    the session ends after it."""

    body: Any
    next_state: Enum | None = None
    close: bool = False
    reason: str = ""
    stop_reason: StopReason = StopReason.Other
    signature: Any = None  # a header Signature to send along (CertificateInstallationRes from the CSMS)
    resume: ResumeContext | None = None


@dataclass(slots=True)
class Hold:
    """Not ready to answer: wait for effect results until ``deadline``, then send ``on_timeout``."""

    deadline: float
    on_timeout: Reply


@dataclass(slots=True)
class Context:
    """Session data, private to one session core (handlers read and write it)."""

    config: SeccConfig
    status: EvseStatus
    tls: bool
    schema: str
    unix_base: float  # unix time at monotonic 0
    log: logging.Logger
    session_id: bytes = b""
    evcc_id: bytes = b""
    resumed: bool = False
    resume: ResumeContext | None = None
    received_at: float = 0.0  # when the request being handled arrived
    request_message: Any = None  # the whole V2G_Message being handled (header included)
    request_session_id: bytes = b""  # its header SessionID
    request_raw: bytes | None = None  # its EXI bytes as received, when the caller has them
    payment: PaymentOption | None = None
    offered_payment: tuple[PaymentOption, ...] = ()
    offered_service_ids: tuple[int, ...] = ()
    energy_mode: EnergyTransferMode | None = None
    needs: Any = None  # EvChargingNeeds of the last ChargeParameterDiscoveryReq
    departure_time: int | None = None
    max_entries: int | None = None
    sa_schedules: Any = None  # the SAScheduleList sent
    sa_schedule_tuple_id: int | None = None  # chosen by the EV at PowerDelivery Start
    renegotiating: bool = False
    notification: str = "None"  # EVSENotification to send: None, StopCharging, ReNegotiation
    gen_challenge: bytes | None = None
    contract_leaf: bytes | None = None
    contract_sub_cas: tuple[bytes, ...] = ()
    emaid: str | None = None
    authorized: bool = False
    transaction_started: bool = False
    contactor_closed: bool = False
    contactor_maybe_closed: bool = False  # a CloseContactor was asked for and no OpenContactor confirmed since
    energy_flowing: bool = False
    dc_target: tuple[float, float] | None = None
    ev_status: tuple | None = None
    receipt_due: float | None = None  # next time to set ReceiptRequired
    # effect ids by purpose (None: not started)
    ids: dict[str, int] = field(default_factory=dict)
    # first Ongoing answered per purpose
    ongoing_since: dict[str, float] = field(default_factory=dict)
    results: dict[int, EffectResult] = field(default_factory=dict)
    pending: dict[int, Request] = field(default_factory=dict)
    out: list[Effect] = field(default_factory=list)
    next_id: int = 1

    # -- effects ----------------------------------------------------------- #
    def request(self, purpose: str, cls: type[Request], **fields: Any) -> int:
        """Start request ``cls`` for ``purpose`` once; return its id (the same id on re-runs)."""
        existing = self.ids.get(purpose)
        if existing is not None:
            return existing
        effect = cls(id=self.next_id, **fields)
        self.next_id += 1
        if cls is CloseContactor:
            self.contactor_maybe_closed = True
        self.ids[purpose] = effect.id
        self.pending[effect.id] = effect
        self.out.append(effect)
        return effect.id

    def restart(self, purpose: str) -> None:
        """Forget ``purpose``'s effect so that the next ``request`` starts a new one."""
        self.ids.pop(purpose, None)
        self.ongoing_since.pop(purpose, None)

    def notify(self, cls: type[Notification], **fields: Any) -> None:
        self.out.append(cls(id=self.next_id, **fields))
        self.next_id += 1

    def result(self, purpose: str) -> EffectResult | None:
        effect_id = self.ids.get(purpose)
        return None if effect_id is None else self.results.get(effect_id)

    def ongoing_expired(self, purpose: str, now: float, limit: float) -> bool:
        """Record the first Ongoing for ``purpose``; true once ``limit`` has passed since."""
        since = self.ongoing_since.setdefault(purpose, now)
        return now - since >= limit

    # -- time ------------------------------------------------------------- #
    def unix_time(self, now: float) -> int:
        return int(self.unix_base + now)

    def hold_deadline(self, msg_timeout: float) -> float:
        return self.received_at + max(0.0, msg_timeout - self.config.timers.response_margin)


Handler = Callable[[Context, Any, float], "Reply | Hold"]


class SessionCore:
    """Base of ``DinSession``, ``Iso2Session`` and ``Iso20Session``. Call order:

    ``receive(message, now)`` for each request the EV sends; ``resolve(result, now)`` for each
    effect result; ``tick(now)`` when ``deadline()`` has passed; ``connection_lost(now)`` when
    the transport goes away; ``update_evse_status(status)`` whenever the hardware reports.
    Each returns a :class:`Step`. After a step with ``close=True`` the session is over.
    """

    SCHEMA: ClassVar[str]
    MESSAGES: ClassVar[Any]
    HANDLERS: ClassVar[dict[type, Handler]]
    INITIAL: ClassVar[Enum]
    FINAL: ClassVar[Enum]
    #: the session data class (a protocol may extend :class:`Context` with its own fields)
    CONTEXT: ClassVar[type[Context]] = Context

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
        log = logger or _log
        self._ctx = self.CONTEXT(
            config=config, status=config.initial_status, tls=tls, schema=self.SCHEMA,
            unix_base=unix_time - now, log=log,
        )
        self._ctx.resume = resume if resume is not None and resume.schema == self.SCHEMA else None
        self._state: Enum = self.INITIAL
        self._held: tuple[Any, Hold] | None = None
        self._sequence_deadline: float | None = now + config.timers.sequence_timeout
        self._closed = False
        self._log = log

    # -- protocol hooks ------------------------------------------------------ #
    def _allowed(self, state: Enum, request_type: type) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _negative(self, request: Any, code: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _is_setup(self, request: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def _body_of(self, message: Any) -> Any:
        """The request inside a message: DIN / ISO 15118-2 wrap it in ``V2G_Message``."""
        return getattr(getattr(message, "body", None), "body_element", None)

    # -- introspection ----------------------------------------------------- #
    @property
    def state(self) -> Enum:
        return self._state

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def session_id(self) -> bytes:
        return self._ctx.session_id

    def deadline(self) -> float | None:
        """When to call ``tick``: the earliest of the hold deadline and the sequence timeout."""
        if self._closed:
            return None
        candidates = [d for d in (self._sequence_deadline, self._held[1].deadline if self._held else None) if d is not None]
        return min(candidates) if candidates else None

    # -- inputs ------------------------------------------------------------- #
    def update_evse_status(self, status: EvseStatus) -> None:
        """The hardware's present values and limits; the next responses carry them."""
        self._ctx.status = status

    def renegotiate(self) -> None:
        """Ask the EV to renegotiate the schedule (EVSENotification=ReNegotiation in the next
        charge-loop response), e.g. when the CSMS sent a new charging profile."""
        if self._ctx.energy_flowing and self._ctx.notification != "StopCharging":
            self._ctx.notification = "ReNegotiation"

    def stop_charging(self) -> None:
        """Ask the EV to stop (EVSENotification=StopCharging), e.g. on a remote stop."""
        self._ctx.notification = "StopCharging"

    def receive(self, message: Any, now: float, raw: bytes | None = None) -> Step:
        """Handle one request message (a decoded ``V2G_Message``); never raises on its content.
        ``raw`` is the message's EXI as received (passed on untouched where the CSMS needs the
        EV's own bytes: CertificateInstallationReq / CertificateUpdateReq)."""
        if self._closed:
            return Step(close=True, reason="session already stopped")
        body = self._body_of(message)
        handler = self.HANDLERS.get(type(body))
        if handler is None:
            name = type(body).__name__ if body is not None else "an empty body"
            return self._stop(now, f"EV sent {name}, which is not a request of {self.SCHEMA}", StopReason.Other)
        ctx = self._ctx
        self._sequence_deadline = None
        ctx.received_at = now
        ctx.request_raw = raw
        header_id = getattr(getattr(message, "header", None), "session_id", b"") or b""
        if self._held is not None:
            self._held = None
            return self._finish(message, self._fail(body, "FAILED_SequenceError", f"{type(body).__name__} before the previous response"), now)
        if not self._is_setup(body):
            if self._state is self.INITIAL:
                return self._finish(message, self._fail(body, "FAILED_SequenceError", f"{type(body).__name__} before SessionSetupReq"), now)
            if header_id != ctx.session_id:
                # [V2G2-460] (as EVerest quotes it): a SessionID other than the session's
                return self._finish(
                    message, self._fail(body, "FAILED_UnknownSession", f"SessionID {header_id.hex()} is not {ctx.session_id.hex()}"), now
                )
        if not self._allowed(self._state, type(body)):
            # [V2G2-538] (as EVerest quotes it): a request the present state does not expect
            return self._finish(message, self._fail(body, "FAILED_SequenceError", f"{type(body).__name__} in {self._state.name}"), now)
        return self._run(message, handler, body, now)

    def resolve(self, result: EffectResult, now: float) -> Step:
        """An effect finished. Results for unknown, finished or abandoned effects are dropped."""
        ctx = self._ctx
        if self._closed or result.id not in ctx.pending:
            return Step()
        ctx.pending.pop(result.id)
        ctx.results[result.id] = result
        if self._held is None:
            return Step(effects=self._take_effects())
        message, _ = self._held
        self._held = None
        body = self._body_of(message)
        return self._run(message, self.HANDLERS[type(body)], body, now)

    def tick(self, now: float) -> Step:
        """Timers: a held response whose deadline passed gets its failure answer; a silent EV
        ends the session after V2G_SECC_Sequence_Timeout."""
        if self._closed:
            return Step()
        if self._held is not None and now >= self._held[1].deadline:
            message, hold = self._held
            self._held = None
            return self._finish(message, hold.on_timeout, now)
        if self._sequence_deadline is not None and now >= self._sequence_deadline:
            return self._stop(now, "no request within V2G_SECC_Sequence_Timeout", StopReason.Timeout)
        return Step()

    def connection_lost(self, now: float) -> Step:
        """The transport is gone (TCP reset, EV unplugged): clean up without a response."""
        if self._closed:
            return Step()
        return self._stop(now, "connection lost", StopReason.EVDisconnected)

    def abort(self, reason: str, now: float) -> Step:
        """Stop the session without a response (e.g. a response could not be sent)."""
        if self._closed:
            return Step()
        return self._stop(now, reason, StopReason.Other)

    def decode_failed(self, reason: str, now: float) -> Step:
        """The EV sent something that is not a message of this schema: the session stops
        (no response can be built for a request we cannot read)."""
        if self._closed:
            return Step()
        return self._stop(now, f"undecodable message: {reason}", StopReason.Other)

    # -- machinery ---------------------------------------------------------- #
    def _fail(self, request: Any, code: str, reason: str, stop: StopReason = StopReason.Other) -> Reply:
        return Reply(self._negative(request, code), self.FINAL, close=True, reason=f"{code}: {reason}", stop_reason=stop)

    def _run(self, message: Any, handler: Handler, body: Any, now: float) -> Step:
        self._ctx.request_message = message
        self._ctx.request_session_id = getattr(message.header, "session_id", b"") or b""
        try:
            outcome = handler(self._ctx, body, now)
        except Exception as exc:  # a bug of ours must still give the EV an answer and a clean stop
            self._log.exception("session %s: handler for %s failed", self._ctx.session_id.hex(), type(body).__name__)
            outcome = self._fail(body, "FAILED", f"internal error: {type(exc).__name__}")
        if isinstance(outcome, Hold):
            self._held = (message, outcome)
            return Step(effects=self._take_effects())
        return self._finish(message, outcome, now)

    def _take_effects(self) -> tuple[Effect, ...]:
        out = tuple(self._ctx.out)
        self._ctx.out.clear()
        return out

    def _finish(self, request_message: Any, reply: Reply, now: float) -> Step:
        ctx = self._ctx
        header_id = ctx.session_id or getattr(request_message.header, "session_id", b"") or bytes(1)
        response = self._envelope(header_id, reply.body, reply.signature, now)
        if reply.next_state is not None:
            self._state = reply.next_state
        if reply.close:
            level = logging.WARNING if reply.reason.startswith("FAILED") else logging.INFO
            self._log.log(level, "session %s ends: %s", ctx.session_id.hex() or "-", reply.reason)
            self._cleanup(reply.stop_reason, reply.reason, paused=reply.resume is not None)
            return Step(response, self._take_effects(), close=True, reason=reply.reason, resume=reply.resume)
        self._sequence_deadline = now + ctx.config.timers.sequence_timeout
        return Step(response, self._take_effects())

    def _envelope(self, session_id: bytes, body: Any, signature: Any, now: float) -> Any:
        m = self.MESSAGES
        return m.V2G_Message(header=m.MessageHeader(session_id=session_id, signature=signature), body=m.Body(body_element=body))

    def _stop(self, now: float, reason: str, stop: StopReason) -> Step:
        self._log.warning("session %s stopped: %s", self._ctx.session_id.hex() or "-", reason)
        self._held = None
        self._state = self.FINAL
        self._cleanup(stop, reason, paused=False)
        return Step(None, self._take_effects(), close=True, reason=reason)

    def _cleanup(self, stop: StopReason, reason: str, *, paused: bool) -> None:
        """The clean stop: no current, contactors open, transaction ended (unless paused)."""
        ctx = self._ctx
        self._closed = True
        self._sequence_deadline = None
        if ctx.dc_target is not None and ctx.dc_target != (0.0, 0.0):
            ctx.notify(SetDcTarget, voltage_v=0.0, current_a=0.0)
            ctx.dc_target = (0.0, 0.0)
        if ctx.contactor_closed or ctx.contactor_maybe_closed:
            # whatever the contactors reported, they are told to open (a failed close may have half-closed them)
            ctx.restart("open_contactor")
            ctx.request("open_contactor", OpenContactor)
            ctx.contactor_closed = ctx.contactor_maybe_closed = False
        if ctx.energy_flowing or paused:
            ctx.notify(ReportChargingState, state=ChargingState.SuspendedEV if paused else ChargingState.EVConnected)
            ctx.energy_flowing = False
        if ctx.transaction_started and not paused:
            ctx.notify(StopTransaction, session_id=ctx.session_id.hex(), reason=stop, detail=reason)
            ctx.transaction_started = False
