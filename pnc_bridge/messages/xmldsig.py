"""Typed messages of ``xmldsig`` (generated from the XSDs; see pnc_bridge/messages/_generated)."""

from pnc_bridge.messages._generated.xmldsig import *  # noqa: F401,F403
from pnc_bridge.messages._generated.xmldsig import __all__  # noqa: F401
