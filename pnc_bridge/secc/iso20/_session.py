"""``Iso20Session``: the ISO 15118-20 SECC session core (AC, DC, AC_BPT, DC_BPT; EIM and Plug
& Charge; scheduled and dynamic control).

Rules of this module:

- The shared machinery (``SessionCore``) runs the sequence check, the SessionID check,
  held responses, timers and the clean stop; this class plugs in ISO 15118-20's table,
  handlers and negative responses, and the -20 message shape: no ``V2G_Message`` envelope,
  every message carries its own ``MessageHeader`` (SessionID, TimeStamp, Signature).
- The family (AC or DC) comes from the handshake's namespace: :class:`Iso20DcSession` for
  ``urn:iso:std:iso:15118:-20:DC``, :class:`Iso20AcSession` for ``-20:AC``.
- Dynamic control: ``update_setpoint(setpoint, now)`` pushes a power target; the next
  charge-loop response carries it (clamped to the limits both ways), with no effect round
  trip on the loop's path.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc._common import PowerSetpoint
from pnc_bridge.secc._core import SessionCore
from pnc_bridge.secc.iso20 import _state
from pnc_bridge.secc.iso20._context import Iso20Context
from pnc_bridge.secc.iso20._handlers import HANDLERS
from pnc_bridge.secc.iso20._responses import NEGATIVE
from pnc_bridge.secc.iso20._state import State

__all__ = ["Iso20AcSession", "Iso20DcSession", "Iso20Session"]


class Iso20Session(SessionCore):
    """One ISO 15118-20 communication session, from SessionSetupReq to SessionStopReq.

    ``Iso20DcSession(config, now=loop.time(), unix_time=time.time(), tls=True, resume=...)``;
    then see :class:`~pnc_bridge.secc._core.SessionCore` for the call order. ``receive`` takes
    a decoded -20 request (``iso20.SessionSetupReq``, ``iso20.DC_ChargeLoopReq``, ...).
    """

    SCHEMA = "iso20"
    MESSAGES = m
    HANDLERS = HANDLERS
    INITIAL = State.WAIT_FOR_SessionSetupReq
    FINAL = State.STOPPED
    CONTEXT = Iso20Context
    DC: ClassVar[bool] = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ctx.dc = self.DC  # type: ignore[attr-defined]

    # -- inputs ------------------------------------------------------------ #
    def update_setpoint(self, setpoint: PowerSetpoint | None, now: float) -> None:
        """A dynamic-control power target (``None``: follow the schedule again). The next
        charge-loop response carries it; it expires after ``SeccTimers.setpoint_validity``
        unless pushed again."""
        ctx: Iso20Context = self._ctx  # type: ignore[assignment]
        ctx.setpoint = setpoint
        ctx.setpoint_at = None if setpoint is None else now

    @property
    def context(self) -> Iso20Context:
        """The session's data, read-only use (tests, logs)."""
        return self._ctx  # type: ignore[return-value]

    # -- protocol hooks ------------------------------------------------------ #
    def _allowed(self, state: State, request_type: type) -> bool:  # type: ignore[override]
        return _state.allowed(state, request_type, self.DC)

    def _negative(self, request: Any, code: str) -> Any:
        body = NEGATIVE[type(request)](self._ctx, request, m.ResponseCode(code))
        return body

    def _is_setup(self, request: Any) -> bool:
        return isinstance(request, m.SessionSetupReq)

    def _body_of(self, message: Any) -> Any:
        return message if isinstance(getattr(message, "header", None), m.MessageHeader) else None

    def _envelope(self, session_id: bytes, body: Any, signature: Any, now: float) -> Any:
        # every response body is built fresh for this reply, so its placeholder header is replaced in place
        body.header = m.MessageHeader(session_id=session_id, time_stamp=self._ctx.unix_time(now), signature=signature)
        return body


class Iso20DcSession(Iso20Session):
    """ISO 15118-20 DC and DC_BPT (namespace ``urn:iso:std:iso:15118:-20:DC``)."""

    DC = True


class Iso20AcSession(Iso20Session):
    """ISO 15118-20 AC and AC_BPT (namespace ``urn:iso:std:iso:15118:-20:AC``)."""

    DC = False
