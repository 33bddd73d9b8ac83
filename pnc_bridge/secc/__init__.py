"""Sans-I/O SECC session cores: SupportedAppProtocol, DIN SPEC 70121, ISO 15118-2 and ISO 15118-20.

A session core takes decoded requests, effect results and the time, and returns a
:class:`Step`: the response, the effects it needs (``pnc_bridge.secc.effects``) and whether
the connection closes. :class:`SeccConnection` wraps the handshake, EXI and the core for one
TCP/TLS connection (payload bytes in and out); ``pnc_bridge.secc._adapter`` runs it over a
``pnc_bridge.link`` connection. See docs/secc.md for the call order and the effect table.
"""

from pnc_bridge.secc._common import (
    EvseStatus,
    Iso20Config,
    MeterReading,
    PowerSetpoint,
    ResumeContext,
    SeccConfig,
    SeccTimers,
    Step,
)
from pnc_bridge.secc._connection import SESSION_CORES, SeccConnection, WireStep, message_name
from pnc_bridge.secc.apphand import SupportedProtocol, negotiate
from pnc_bridge.secc.din import DinSession
from pnc_bridge.secc.iso2 import Iso2Session
from pnc_bridge.secc.iso20 import Iso20AcSession, Iso20DcSession, Iso20Session

__all__ = [
    "SESSION_CORES",
    "DinSession",
    "EvseStatus",
    "Iso20AcSession",
    "Iso20Config",
    "Iso20DcSession",
    "Iso20Session",
    "Iso2Session",
    "MeterReading",
    "PowerSetpoint",
    "ResumeContext",
    "SeccConfig",
    "SeccConnection",
    "SeccTimers",
    "Step",
    "SupportedProtocol",
    "WireStep",
    "message_name",
    "negotiate",
]
