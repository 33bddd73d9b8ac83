"""SLAC (ISO 15118-3) on HomePlug Green PHY: frames, the EVSE state machine, the raw-socket adapter.

Public names:

- ``SlacEvse`` (sans-I/O EVSE side), ``CpState``, ``SlacState`` and its outputs
  (``SendFrame``, ``Matched``, ``MatchingFailed``, ...), from ``pnc_bridge.link.slac.evse``
- ``frames``: typed SLAC messages, ``encode`` / ``decode``
- ``SlacService`` / ``RawSocket``: the asyncio adapter on an AF_PACKET socket
"""

from pnc_bridge.link.slac import frames
from pnc_bridge.link.slac.evse import (
    CpState,
    FrameIgnored,
    Matched,
    MatchingFailed,
    MatchingStarted,
    ModemKeySet,
    ModemNotResponding,
    SendFrame,
    SlacEvent,
    SlacEvse,
    SlacInitTimeout,
    SlacState,
    Unmatched,
)

__all__ = [
    "frames",
    "CpState",
    "FrameIgnored",
    "Matched",
    "MatchingFailed",
    "MatchingStarted",
    "ModemKeySet",
    "ModemNotResponding",
    "SendFrame",
    "SlacEvent",
    "SlacEvse",
    "SlacInitTimeout",
    "SlacState",
    "Unmatched",
]
