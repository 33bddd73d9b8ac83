from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))  # this checkout, whatever else is installed

from _certs import make_chain  # noqa: E402
from netns import NetnsLoop  # noqa: E402


@pytest.fixture(scope="session")
def pki():
    """Test chains made once per run: -2 (P-256), -20 (P-521 and Ed448), EV/OEM chain."""
    return {
        "secc2": make_chain("p256", "CPO"),
        "secc2_other": make_chain("p256", "CPO2"),
        "secc20": make_chain("p521", "CPO20"),
        "secc20_ed448": make_chain("ed448", "CPO20ED"),
        "oem": make_chain("p521", "OEM"),
        "oem_untrusted": make_chain("p521", "ROGUE"),
    }


@pytest.fixture
def ns_loops(netns_pair):
    """(ev_loop, evse_loop): asyncio loops on threads inside the two namespaces."""
    ev = NetnsLoop(netns_pair.ev_ns)
    try:
        evse = NetnsLoop(netns_pair.evse_ns)
    except BaseException:
        ev.close()
        raise
    try:
        yield ev, evse
    finally:
        evse.close()
        ev.close()


@pytest.fixture
def subprocess_env():
    """Environment for child processes so they import this checkout's pnc_bridge and hil."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env
