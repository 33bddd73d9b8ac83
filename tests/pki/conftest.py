"""Shared fixtures: freshly generated test PKIs (one per variant and test module) and stores.

Keys are generated at test time; nothing secret is checked in. ``AT`` is a validation
time inside every generated certificate's validity, derived from the issuance time.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest

from pnc_bridge.pki import TestPki, TrustStore, generate_test_pki
from pnc_bridge.pki._profiles import HIERARCHY, Template
from pnc_bridge.pki._testpki import issue, new_key

VARIANTS = ("iso2", "iso20", "iso20-ed448")


def validation_time(pki: TestPki) -> dt.datetime:
    return pki.at + dt.timedelta(days=1)


@pytest.fixture(scope="module", params=VARIANTS)
def any_pki(request, tmp_path_factory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp(f"pki-{request.param}"), variant=request.param)


@pytest.fixture(scope="module")
def pki2(tmp_path_factory) -> TestPki:
    return generate_test_pki(tmp_path_factory.mktemp("pki-iso2"), variant="iso2")


def make_store(path: Path, pki: TestPki) -> TrustStore:
    store = TrustStore.init(path)
    for kind, root in pki.roots().items():
        store.add_roots(kind, [root])
    return store


@pytest.fixture(scope="module")
def store2(pki2, tmp_path_factory) -> TrustStore:
    return make_store(tmp_path_factory.mktemp("store-iso2"), pki2)


class Mint:
    """Issues variations of a test PKI's certificates with the PKI's own keys."""

    def __init__(self, pki: TestPki) -> None:
        self.pki = pki
        self.variant = pki.variant

    def template(self, name: str) -> Template:
        template = HIERARCHY[name][0]
        if name == "contract_leaf":
            template = template.replace(common_name=self.pki.emaid)
        return template

    def cert(
        self,
        name: str,
        *,
        issuer: str | None = "default",
        issuer_cert=None,
        issuer_key=None,
        key=None,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        hash_algorithm="auto",
        **changes,
    ):
        """Re-issue certificate ``name`` with template ``changes``; returns (cert, key)."""
        template = self.template(name).replace(**changes) if changes else self.template(name)
        if issuer == "default":
            issuer = HIERARCHY[name][1]
        if issuer_cert is None and issuer is not None:
            issuer_cert = self.pki.cert(issuer)
            issuer_key = self.pki.key(issuer)
        key = key or new_key(self.variant)
        cert = issue(
            template,
            public_key=key.public_key(),
            issuer=issuer_cert,
            issuer_key=issuer_key or key,
            not_before=not_before or self.pki.at - dt.timedelta(hours=1),
            not_after=not_after,
            hash_algorithm=hash_algorithm,
        )
        return cert, key


@pytest.fixture(scope="module")
def mint2(pki2) -> Mint:
    return Mint(pki2)


# --------------------------------------------------------------------------- #
# openssl CLI, the independent peer                                            #
# --------------------------------------------------------------------------- #

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the Debian openssl CLI is not installed")


def openssl_verify(tmp: Path, root_certs, leaf, sub_cas, at: dt.datetime, *, purpose: str | None = None) -> tuple[bool, str]:
    """``openssl verify`` of leaf + sub-CAs against root_certs at ``at``: (ok, output)."""
    from pnc_bridge.pki._certio import chain_pem

    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "roots.pem").write_bytes(chain_pem(list(root_certs)))
    (tmp / "leaf.pem").write_bytes(chain_pem([leaf]))
    args = [OPENSSL, "verify", "-CAfile", str(tmp / "roots.pem"), "-attime", str(int(at.timestamp()))]
    if sub_cas:
        (tmp / "untrusted.pem").write_bytes(chain_pem(list(sub_cas)))
        args += ["-untrusted", str(tmp / "untrusted.pem")]
    if purpose:
        args += ["-purpose", purpose]
    args.append(str(tmp / "leaf.pem"))
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return result.returncode == 0, result.stdout + result.stderr
