"""The rig's EV emulator: sans-I/O EVCC cores (``EvSession`` for DIN 70121 / ISO 15118-2,
``Ev20Session`` for ISO 15118-20) and an asyncio client that runs them over SDP, TCP/TLS and
V2GTP (``run_ev``)."""

from hil.ev._client import iso20_tls_context, iso2_tls_context, run_ev, run_ev_with_sdp
from hil.ev._core import FAULTS, EvConfig, EvCredentials, EvResult, EvSession, EvStep, TimelineEntry
from hil.ev._core20 import FAULTS20, Ev20Config, Ev20Result, Ev20Session, LoopSample

__all__ = [
    "FAULTS",
    "FAULTS20",
    "Ev20Config",
    "Ev20Result",
    "Ev20Session",
    "LoopSample",
    "iso20_tls_context",
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
