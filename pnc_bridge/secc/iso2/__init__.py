"""ISO 15118-2 SECC session core (AC and DC; EIM and Plug & Charge). See docs/secc.md."""

from pnc_bridge.secc.iso2._responses import ALLOWED_CODES, RESPONSE_OF
from pnc_bridge.secc.iso2._session import Iso2Session
from pnc_bridge.secc.iso2._state import EXPECTED, State

__all__ = ["ALLOWED_CODES", "EXPECTED", "Iso2Session", "RESPONSE_OF", "State"]
