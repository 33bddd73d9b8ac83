"""SupportedAppProtocol negotiation: which session core serves this connection."""

from pnc_bridge.secc.apphand._negotiation import Negotiated, SupportedProtocol, negotiate

__all__ = ["Negotiated", "SupportedProtocol", "negotiate"]
