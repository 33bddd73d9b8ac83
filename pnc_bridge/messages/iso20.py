"""Typed messages of ``iso20`` (generated from the XSDs; see pnc_bridge/messages/_generated)."""

from pnc_bridge.messages._generated.iso20 import *  # noqa: F401,F403
from pnc_bridge.messages._generated.iso20 import __all__  # noqa: F401
