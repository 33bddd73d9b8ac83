"""Differential tests against the OpenSSL CLI (``openssl verify``), an implementation
nobody here wrote.

- Every chain the generator writes verifies with ``openssl verify`` at the same time.
- Over a corpus of mutated chains: every chain openssl rejects, we reject. Where we reject
  and openssl accepts, the difference is an ISO 15118 profile rule openssl does not know
  (curve, signature algorithm, criticality, EMAID, chain length); the test lists them.
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pnc_bridge.pki import Failure, Purpose, generate_test_pki, validate_chain

from .conftest import VARIANTS, Mint, make_store, needs_openssl, openssl_verify, validation_time

pytestmark = needs_openssl

OPENSSL_PURPOSE = {Purpose.CSMS: "sslserver", Purpose.CHARGING_STATION: "sslclient"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_generated_chain_verifies_with_openssl(variant, tmp_path):
    pki = generate_test_pki(tmp_path / "pki", variant=variant)
    store = make_store(tmp_path / "store", pki)
    at = validation_time(pki)
    for purpose in Purpose:
        leaf, subs = pki.chain(purpose)
        root, _ = pki.root(purpose)
        ok, output = openssl_verify(tmp_path / purpose.value, [root], leaf, subs, at, purpose=OPENSSL_PURPOSE.get(purpose))
        assert ok, f"openssl rejects the generated {purpose.value} chain: {output}"
        verdict = validate_chain(leaf, subs, purpose=purpose, store=store, at=at)
        assert verdict.valid, verdict


def _mutations(pki, mint: Mint):
    """(name, leaf, sub_cas, roots, at, ours_stricter) for a corpus of broken chains.

    ``ours_stricter`` marks mutations that only break an ISO 15118 rule openssl does not
    check; for all others both must reject.
    """
    at = validation_time(pki)
    leaf, subs = pki.chain("contract")
    sub2, sub1 = subs
    root = pki.mo_root
    out = []

    def with_sub2(name, stricter, **change):
        s2, s2k = mint.cert("mo_sub_ca2", **change)
        lf, _ = mint.cert("contract_leaf", issuer=None, issuer_cert=s2, issuer_key=s2k)
        out.append((name, lf, [s2, sub1], [root], at, stricter))

    def with_leaf(name, stricter, **change):
        lf, _ = mint.cert("contract_leaf", **change)
        out.append((name, lf, [sub2, sub1], [root], at, stricter))

    out.append(("valid", leaf, subs, [root], at, None))
    out.append(("leaf expired", leaf, subs, [root], leaf.not_valid_after_utc + dt.timedelta(seconds=1), False))
    out.append(("leaf not yet valid", leaf, subs, [root], leaf.not_valid_before_utc - dt.timedelta(seconds=1), False))
    with_sub2("sub-CA 2 expired", False, not_after=at - dt.timedelta(minutes=1))
    out.append(("root not in store", leaf, subs, [pki.v2g_root], at, False))
    out.append(("missing sub-CA 1", leaf, [sub2], [root], at, False))
    out.append(("sub-CAs of another branch", leaf, [pki.cert("cpo_sub_ca2"), pki.cert("cpo_sub_ca1")], [root], at, False))
    # The contract leaf (CA:FALSE) signs another leaf.
    fake, _ = mint.cert("contract_leaf", issuer=None, issuer_cert=leaf, issuer_key=pki.key("contract_leaf"))
    out.append(("leaf used as CA", fake, [leaf, sub2], [root], at, False))
    with_sub2("sub-CA 2 without keyCertSign", False, key_usage=frozenset({"crl_sign"}))
    # Sub-CA 1 with pathLen 0 above Sub-CA 2.
    s1, s1k = mint.cert("mo_sub_ca1", path_length=0)
    s2, s2k = mint.cert("mo_sub_ca2", issuer=None, issuer_cert=s1, issuer_key=s1k)
    lf, _ = mint.cert("contract_leaf", issuer=None, issuer_cert=s2, issuer_key=s2k)
    out.append(("path length exceeded", lf, [s2, s1], [root], at, False))
    # Three sub-CAs: openssl accepts when path lengths allow it; ISO 15118 allows two.
    s3, s3k = mint.cert("mo_sub_ca2", common_name="MO Sub-CA 3", issuer="mo_sub_ca2", path_length=0)
    lf, _ = mint.cert("contract_leaf", issuer=None, issuer_cert=s3, issuer_key=s3k)
    out.append(("three sub-CAs", lf, [s3, sub2, sub1], [root], at, None))
    # Same names, other keys: signatures do not match.
    other_sub2, _ = mint.cert("mo_sub_ca2")
    out.append(("sub-CA 2 replaced by an impostor", leaf, [other_sub2, sub1], [root], at, False))
    # Profile rules openssl does not know.
    with_leaf("RSA leaf", True, key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with_leaf("P-384 leaf", True, key=ec.generate_private_key(ec.SECP384R1()))
    with_leaf("wrong EMAID", True, common_name="NOT-AN-EMAID")
    with_leaf("basicConstraints not critical", True, critical=False)
    with_sub2("sub-CA 2 without pathLen", True, path_length=None)
    if pki.variant.value == "iso2":
        with_leaf("leaf signed with SHA-384", True, hash_algorithm=hashes.SHA384())
    return out


@pytest.mark.parametrize("variant", ["iso2", "iso20-ed448"])
def test_openssl_rejects_implies_we_reject(variant, tmp_path):
    pki = generate_test_pki(tmp_path / "pki", variant=variant)
    mint = Mint(pki)
    stricter_seen = []
    for i, (name, leaf, subs, roots, at, stricter) in enumerate(_mutations(pki, mint)):
        store = make_store(tmp_path / f"store{i}", pki) if roots == [pki.mo_root] else None
        anchors = store if store is not None else roots
        ok, output = openssl_verify(tmp_path / f"case{i}", roots, leaf, subs, at)
        verdict = validate_chain(leaf, subs, purpose="contract", store=anchors, at=at)
        if not ok:
            assert not verdict.valid, f"{name}: openssl rejects ({output.strip()}) but we accept"
        if stricter is False:
            assert not ok, f"{name}: expected openssl to reject too"
        if stricter is True:
            assert ok, f"{name}: openssl was expected to accept (an ISO-only rule): {output}"
            assert not verdict.valid and verdict.failure in (Failure.PROFILE, Failure.EMAID), (name, verdict)
            stricter_seen.append(name)
        if name == "valid":
            assert ok and verdict.valid, (output, verdict)
        if name == "three sub-CAs":
            assert verdict.failure is Failure.CHAIN_TOO_LONG
    assert stricter_seen  # the ISO-only rules were exercised
