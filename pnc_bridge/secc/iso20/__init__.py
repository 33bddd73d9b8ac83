"""ISO 15118-20 SECC session core (AC, DC, AC_BPT, DC_BPT; EIM and Plug & Charge; scheduled
and dynamic control). See docs/secc.md."""

from pnc_bridge.secc.iso20._control import EvLimits, Steer, Window, dc_scheduled_target, steer, window
from pnc_bridge.secc.iso20._handlers import CONTRACT_CODE_ISO20, CSMS_CERTIFICATE_STATUS_CODE_ISO20, SCHEMA_VERSION
from pnc_bridge.secc.iso20._responses import ALLOWED_CODES, RESPONSE_OF
from pnc_bridge.secc.iso20._services import ParameterSetInfo, parameter_sets, read_parameter_set
from pnc_bridge.secc.iso20._session import Iso20AcSession, Iso20DcSession, Iso20Session
from pnc_bridge.secc.iso20._state import EXPECTED, State

__all__ = [
    "ALLOWED_CODES",
    "CONTRACT_CODE_ISO20",
    "CSMS_CERTIFICATE_STATUS_CODE_ISO20",
    "EXPECTED",
    "EvLimits",
    "Iso20AcSession",
    "Iso20DcSession",
    "Iso20Session",
    "ParameterSetInfo",
    "RESPONSE_OF",
    "SCHEMA_VERSION",
    "State",
    "Steer",
    "Window",
    "dc_scheduled_target",
    "parameter_sets",
    "read_parameter_set",
    "steer",
    "window",
]
