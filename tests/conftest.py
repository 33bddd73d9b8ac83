"""Shared test fixtures: paths to the read-only shared material beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: ``netns_pair``: a fresh pair of network namespaces (tests/link/netns.py), for any test.
pytest_plugins = ("tests.link.netns",)

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("PNC_BRIDGE_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared material not found at {SHARED} (set PNC_BRIDGE_SHARED)")
    return SHARED
