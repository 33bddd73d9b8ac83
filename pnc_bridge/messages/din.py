"""Typed messages of ``din`` (generated from the XSDs; see pnc_bridge/messages/_generated)."""

from pnc_bridge.messages._generated.din import *  # noqa: F401,F403
from pnc_bridge.messages._generated.din import __all__  # noqa: F401
