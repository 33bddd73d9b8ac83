"""Fixtures for the bridge tests: a test PKI made at test time, and ``run`` for async bodies.

Everything runs on loopback against real peers where the issue names one: the ``hil.csms``
emulator (the ``ocpp`` package's CSMS side and official schemas) and the ``hil.ev`` EV
emulator; nothing of ours is mocked.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable

import pytest

from pnc_bridge.pki import generate_test_pki


def run(coro: Awaitable[Any], timeout: float = 90.0) -> Any:
    """Run one async test body with a hard limit, so a hang fails instead of blocking CI."""

    async def guarded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory):
    """An ISO 15118-2 test PKI (P-256), made once per run."""
    return generate_test_pki(tmp_path_factory.mktemp("pki"))
