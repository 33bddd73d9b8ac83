from __future__ import annotations

import pytest

from pnc_bridge.pki import generate_test_pki


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory):
    """An ISO 15118-2 test PKI (P-256), made once per run."""
    return generate_test_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def test_pki20(tmp_path_factory):
    """An ISO 15118-20 test PKI (P-521), made once per run."""
    return generate_test_pki(tmp_path_factory.mktemp("pki20"), variant="iso20")
