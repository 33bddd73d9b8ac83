"""``Iso2Session``: the ISO 15118-2 SECC session core (AC and DC, EIM and Plug & Charge).

Rules of this module:

- The shared machinery (``SessionCore``) runs the sequence check, the SessionID check,
  held responses, timers and the clean stop; this class only plugs in ISO 15118-2's
  table, handlers and negative responses.
"""

from __future__ import annotations

from typing import Any

from pnc_bridge.messages import iso2 as m
from pnc_bridge.secc._core import SessionCore
from pnc_bridge.secc.iso2 import _state
from pnc_bridge.secc.iso2._handlers import HANDLERS
from pnc_bridge.secc.iso2._responses import NEGATIVE
from pnc_bridge.secc.iso2._state import State

__all__ = ["Iso2Session"]


class Iso2Session(SessionCore):
    """One ISO 15118-2 communication session, from SessionSetupReq to SessionStopReq.

    ``Iso2Session(config, now=loop.time(), unix_time=time.time(), tls=conn.tls is not None,
    resume=paused_context)``; then see :class:`~pnc_bridge.secc._core.SessionCore` for the
    call order. ``receive`` takes a decoded ``iso2.V2G_Message``.
    """

    SCHEMA = "iso2"
    MESSAGES = m
    HANDLERS = HANDLERS
    INITIAL = State.WAIT_FOR_SessionSetupReq
    FINAL = State.STOPPED

    def _allowed(self, state: State, request_type: type) -> bool:  # type: ignore[override]
        mode = self._ctx.energy_mode
        return _state.allowed(state, request_type, None if mode is None else mode.is_dc)

    def _negative(self, request: Any, code: str) -> Any:
        return NEGATIVE[type(request)](self._ctx, request, m.ResponseCode(code))

    def _is_setup(self, request: Any) -> bool:
        return isinstance(request, m.SessionSetupReq)
