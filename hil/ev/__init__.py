"""The rig's EV emulator: a sans-I/O EVCC core (``EvSession``) and an asyncio client that
runs it over SDP, TCP/TLS and V2GTP (``run_ev``)."""

from hil.ev._client import iso2_tls_context, run_ev, run_ev_with_sdp
from hil.ev._core import FAULTS, EvConfig, EvCredentials, EvResult, EvSession, EvStep, TimelineEntry

__all__ = [
    "FAULTS",
    "EvConfig",
    "EvCredentials",
    "EvResult",
    "EvSession",
    "EvStep",
    "TimelineEntry",
    "iso2_tls_context",
    "run_ev",
    "run_ev_with_sdp",
]
