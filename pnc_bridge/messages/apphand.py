"""Typed messages of ``apphand`` (generated from the XSDs; see pnc_bridge/messages/_generated)."""

from pnc_bridge.messages._generated.apphand import *  # noqa: F401,F403
from pnc_bridge.messages._generated.apphand import __all__  # noqa: F401
