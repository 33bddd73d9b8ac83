"""Typed messages of ``iso2`` (generated from the XSDs; see pnc_bridge/messages/_generated)."""

from pnc_bridge.messages._generated.iso2 import *  # noqa: F401,F403
from pnc_bridge.messages._generated.iso2 import __all__  # noqa: F401
