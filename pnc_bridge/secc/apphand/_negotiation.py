"""SupportedAppProtocol negotiation (ISO 15118-2 clause 8.2, the handshake every DIN 70121,
ISO 15118-2 and ISO 15118-20 session starts with).

Rules of this module:

- Pure: a ``supportedAppProtocolReq`` and the charger's enabled protocols in, the response
  and the chosen protocol out.
- A protocol matches when the namespace is one the charger has enabled and the major version
  is equal; an equal minor version gives ``OK_SuccessfulNegotiation``, another minor
  ``OK_SuccessfulNegotiationWithMinorDeviation``; no match gives ``Failed_NoNegotiation``
  (and the connection closes).
- Which match wins: by the EV's ``Priority`` (1 is the EV's first choice; ``prefer="ev"``,
  the default, as Josev does), or by the order of the charger's own list (``prefer="evse"``).
- ISO 15118-20 names one namespace per energy family (``-20:AC``, ``-20:DC``, ``-20:WPT``,
  ``-20:ACDP``; version 1.0); the AC and DC ones have a session core here. Which of the
  enabled protocols a connection may use (TLS, energy modes) is the caller's decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Sequence

from pnc_bridge.messages import apphand as m

__all__ = ["Negotiated", "SupportedProtocol", "negotiate"]


class SupportedProtocol(Enum):
    """Application protocols with a session core here: (namespace, major, minor, schema)."""

    DIN_70121 = ("urn:din:70121:2012:MsgDef", 2, 0, "din")
    ISO_15118_2 = ("urn:iso:15118:2:2013:MsgDef", 2, 0, "iso2")
    ISO_15118_20_DC = ("urn:iso:std:iso:15118:-20:DC", 1, 0, "iso20-dc")
    ISO_15118_20_AC = ("urn:iso:std:iso:15118:-20:AC", 1, 0, "iso20-ac")

    @property
    def namespace(self) -> str:
        return self.value[0]

    @property
    def major(self) -> int:
        return self.value[1]

    @property
    def minor(self) -> int:
        return self.value[2]

    @property
    def schema(self) -> str:
        """The session core's key in ``SESSION_CORES``; for DIN / ISO 15118-2 also the
        ``pnc_bridge.exi`` schema of every message. ISO 15118-20 messages come in several
        schemas (``iso20-common`` and the family's own), told apart by the V2GTP payload type."""
        return self.value[3]

    @property
    def is_iso20(self) -> bool:
        return self.value[3].startswith("iso20")


@dataclass(frozen=True, slots=True)
class Negotiated:
    protocol: SupportedProtocol | None  # None: no common protocol
    response: m.SupportedAppProtocolRes
    reason: str


def negotiate(
    request: m.SupportedAppProtocolReq,
    enabled: Sequence[SupportedProtocol],
    *,
    prefer: str = "ev",
) -> Negotiated:
    """Choose the application protocol for ``request`` among ``enabled`` (in the charger's
    order of preference)."""
    if prefer not in ("ev", "evse"):
        raise ValueError("prefer must be 'ev' or 'evse'")
    rank = {p: i for i, p in enumerate(enabled)}
    matches: list[tuple[tuple[int, int], m.AppProtocol, SupportedProtocol]] = []
    for offer in request.app_protocol:
        for protocol in enabled:
            if offer.protocol_namespace == protocol.namespace and offer.version_number_major == protocol.major:
                key = (offer.priority, rank[protocol]) if prefer == "ev" else (rank[protocol], offer.priority)
                matches.append((key, offer, protocol))
    if not matches:
        offered = ", ".join(f"{o.protocol_namespace} {o.version_number_major}.{o.version_number_minor}" for o in request.app_protocol)
        return Negotiated(
            None,
            m.SupportedAppProtocolRes(response_code=m.ResponseCode.Failed_NoNegotiation),
            f"no common protocol (EV offers: {offered or 'nothing'})",
        )
    _, offer, protocol = min(matches, key=lambda x: x[0])
    code = (
        m.ResponseCode.OK_SuccessfulNegotiation
        if offer.version_number_minor == protocol.minor
        else m.ResponseCode.OK_SuccessfulNegotiationWithMinorDeviation
    )
    return Negotiated(
        protocol,
        m.SupportedAppProtocolRes(response_code=code, schema_id=offer.schema_id),
        f"{protocol.name} (SchemaID {offer.schema_id}, EV priority {offer.priority})",
    )
