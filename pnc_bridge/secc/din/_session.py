"""``DinSession``: the DIN SPEC 70121 SECC session core (DC charging, EIM).

Rules of this module: as ``iso2/_session.py``; only DIN 70121's table, handlers and
negative responses are plugged into the shared ``SessionCore``.
"""

from __future__ import annotations

from typing import Any

from pnc_bridge.messages import din as m
from pnc_bridge.secc._core import SessionCore
from pnc_bridge.secc.din import _state
from pnc_bridge.secc.din._handlers import HANDLERS
from pnc_bridge.secc.din._responses import NEGATIVE
from pnc_bridge.secc.din._state import State

__all__ = ["DinSession"]


class DinSession(SessionCore):
    """One DIN 70121 communication session. Construct as ``Iso2Session`` (``tls`` is always
    false for DIN 70121); ``receive`` takes a decoded ``din.V2G_Message``."""

    SCHEMA = "din"
    MESSAGES = m
    HANDLERS = HANDLERS
    INITIAL = State.WAIT_FOR_SessionSetupReq
    FINAL = State.STOPPED

    def _allowed(self, state: State, request_type: type) -> bool:  # type: ignore[override]
        return _state.allowed(state, request_type)

    def _negative(self, request: Any, code: str) -> Any:
        return NEGATIVE[type(request)](self._ctx, request, m.ResponseCode(code))

    def _is_setup(self, request: Any) -> bool:
        return isinstance(request, m.SessionSetupReq)
