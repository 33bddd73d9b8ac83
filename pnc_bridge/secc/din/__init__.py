"""DIN SPEC 70121 SECC session core (DC charging with EIM). See docs/secc.md."""

from pnc_bridge.secc.din._responses import ALLOWED_CODES, RESPONSE_OF
from pnc_bridge.secc.din._session import DinSession
from pnc_bridge.secc.din._state import EXPECTED, State

__all__ = ["ALLOWED_CODES", "DinSession", "EXPECTED", "RESPONSE_OF", "State"]
