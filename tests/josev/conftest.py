"""Fixtures for interop tests against Josev (PyPI ``iso15118``): its venv, a pair of network
namespaces joined by a veth (the PLC link stand-in), and an asyncio loop inside the EVSE's
namespace for whatever runs in this process there (the bridge, the CSMS emulator).

Reusable for ISO 15118-20 (Josev's -20 modes are in ``tests.josev.peers.EVCC_MODES``)."""

from __future__ import annotations

import sys

import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "link"))
from netns import NetnsLoop  # noqa: E402

from tests.josev.venv import josev_python  # noqa: E402


@pytest.fixture(scope="session")
def josev():
    """The Josev venv's interpreter (built on first use)."""
    try:
        return josev_python()
    except (RuntimeError, OSError) as exc:
        pytest.skip(f"Josev is not available: {exc}")


@pytest.fixture
def evse_loop(netns_pair):
    """An asyncio loop on a thread inside the EVSE's namespace."""
    loop = NetnsLoop(netns_pair.evse_ns)
    try:
        yield loop
    finally:
        loop.close()
