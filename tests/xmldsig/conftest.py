"""Test PKIs for the signature tests: one per variant for the whole session (keys are
generated at test time; nothing secret is checked in)."""

from __future__ import annotations

import datetime as dt

import pytest

from pnc_bridge.pki import TestPki, TrustStore, generate_test_pki
from pnc_bridge.xmldsig import Standard
from tests.xmldsig.messages import SIGNED_KINDS

VARIANTS = ("iso2", "iso20", "iso20-ed448")

#: (PKI variant, standard, message) for every signed kind: -2 with P-256, -20 with both suites
CASES = [
    (variant, std, name)
    for std, name in SIGNED_KINDS
    for variant in (("iso2",) if std is Standard.ISO15118_2 else ("iso20", "iso20-ed448"))
]
CASE_IDS = [f"{v}-{name}" for v, _, name in CASES]


def validation_time(pki: TestPki) -> dt.datetime:
    return pki.at + dt.timedelta(days=1)


@pytest.fixture(scope="session")
def pkis(tmp_path_factory) -> dict[str, TestPki]:
    return {v: generate_test_pki(tmp_path_factory.mktemp(f"pki-{v}"), variant=v) for v in VARIANTS}


@pytest.fixture(scope="session")
def stores(pkis, tmp_path_factory) -> dict[str, TrustStore]:
    out = {}
    for variant, pki in pkis.items():
        store = TrustStore.init(tmp_path_factory.mktemp(f"store-{variant}"))
        for kind, root in pki.roots().items():
            store.add_roots(kind, [root])
        out[variant] = store
    return out
