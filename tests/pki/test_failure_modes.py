"""One test per failure mode: each mutated chain gets its exact ISO 15118 response code.

Every chain here is built by re-issuing certificates of a generated test PKI with one
rule broken; each case also runs through ``openssl verify`` where openssl has an opinion
(see test_openssl.py for the systematic comparison).
"""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from pnc_bridge.pki import Failure, TrustStore, VerdictCode, generate_test_pki, validate_chain
from pnc_bridge.pki._ocsp import OcspStatus, build_ocsp_response

from .conftest import Mint, make_store, validation_time

CHAIN = VerdictCode.FAILED_CertChainError
EXPIRED = VerdictCode.FAILED_CertificateExpired
REVOKED = VerdictCode.FAILED_CertificateRevoked


def check(verdict, code, failure):
    assert not verdict.valid, verdict
    assert verdict.response_code == code, verdict
    assert verdict.failure is failure, verdict
    assert verdict.reason  # a human reason, always
    assert verdict.chain == ()


def test_generated_contract_chain_is_valid(pki2, store2):
    leaf, subs = pki2.chain("contract")
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=validation_time(pki2))
    assert verdict.valid and verdict.response_code is None
    assert verdict.emaid == pki2.emaid
    assert [c.subject for c in verdict.chain] == [leaf.subject, subs[0].subject, subs[1].subject, pki2.mo_root.subject]


def test_three_sub_cas(pki2, store2, mint2):
    # A third sub-CA between MO Sub-CA 2 and the leaf.
    extra, extra_key = mint2.cert("mo_sub_ca2", common_name="MO Sub-CA 3", issuer="mo_sub_ca2", path_length=0)
    leaf, _ = mint2.cert("contract_leaf", issuer=None, issuer_cert=extra, issuer_key=extra_key)
    _, subs = pki2.chain("contract")
    verdict = validate_chain(leaf, [extra, *subs], purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.CHAIN_TOO_LONG)


def test_leaf_used_as_ca(pki2, store2, mint2):
    # The real contract leaf (CA:FALSE) signs another "leaf": it is then a CA in the chain.
    contract, contract_key = pki2.cert("contract_leaf"), pki2.key("contract_leaf")
    fake, _ = mint2.cert("contract_leaf", issuer=None, issuer_cert=contract, issuer_key=contract_key)
    sub2 = pki2.cert("mo_sub_ca2")
    verdict = validate_chain(fake, [contract, sub2], purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.PROFILE)
    assert "CA:FALSE" in verdict.reason


def test_rsa_key(pki2, store2, mint2):
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf, _ = mint2.cert("contract_leaf", key=rsa_key)
    _, subs = pki2.chain("contract")
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.PROFILE)
    assert "rsa2048" in verdict.reason


def test_p384_key_in_iso2_chain(pki2, store2, mint2):
    p384 = ec.generate_private_key(ec.SECP384R1())
    leaf, _ = mint2.cert("contract_leaf", key=p384)
    _, subs = pki2.chain("contract")
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=validation_time(pki2), variant="iso2")
    check(verdict, CHAIN, Failure.PROFILE)
    assert "secp384r1" in verdict.reason
    # Without a pinned variant the P-384 leaf is held to ISO 15118-2 as well.
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.PROFILE)


def test_p384_sub_ca_in_iso2_chain(pki2, store2, mint2):
    p384 = ec.generate_private_key(ec.SECP384R1())
    sub2, sub2_key = mint2.cert("mo_sub_ca2", key=p384)
    leaf, _ = mint2.cert("contract_leaf", issuer=None, issuer_cert=sub2, issuer_key=sub2_key)
    verdict = validate_chain(
        leaf, [sub2, pki2.cert("mo_sub_ca1")], purpose="contract", store=store2, at=validation_time(pki2)
    )
    check(verdict, CHAIN, Failure.PROFILE)


def test_wrong_signature_algorithm(pki2, store2, mint2):
    leaf, _ = mint2.cert("contract_leaf", hash_algorithm=hashes.SHA384())
    _, subs = pki2.chain("contract")
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.PROFILE)
    assert "ecdsa-with-SHA384" in verdict.reason


@pytest.mark.parametrize("cn", ["NOT-AN-EMAID", "DE8AA00123456", "DE-8AA-012345-6", "1E8AA0012345670"])
def test_wrong_emaid(pki2, store2, mint2, cn):
    leaf, _ = mint2.cert("contract_leaf", common_name=cn)
    _, subs = pki2.chain("contract")
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.EMAID)


def test_emaid_differs_from_the_claimed_one(pki2, store2):
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=at, emaid="DE8AA0000000001")
    check(verdict, CHAIN, Failure.EMAID)
    # The same EMAID written with separators and in lower case is the same EMAID.
    claimed = f"{pki2.emaid[:2]}-{pki2.emaid[2:5]}-{pki2.emaid[5:14]}-{pki2.emaid[14:]}".lower()
    assert validate_chain(leaf, subs, purpose="contract", store=store2, at=at, emaid=claimed).valid


def test_wrong_check_digit_only_when_asked(pki2, store2, mint2):
    good = pki2.emaid
    wrong = good[:14] + ("A" if good[14] != "A" else "B")
    leaf, _ = mint2.cert("contract_leaf", common_name=wrong)
    _, subs = pki2.chain("contract")
    at = validation_time(pki2)
    assert validate_chain(leaf, subs, purpose="contract", store=store2, at=at).valid
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=at, verify_emaid_check_digit=True)
    check(verdict, CHAIN, Failure.EMAID)


def test_root_not_in_store(pki2, tmp_path):
    store = TrustStore.init(tmp_path / "store")
    store.add_roots("v2g", [pki2.v2g_root])  # no MO root
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    check(validate_chain(leaf, subs, purpose="contract", store=store, at=at), CHAIN, Failure.UNKNOWN_ROOT)
    # An MO root in the v2g slot does not anchor an OEM chain either.
    leaf, subs = pki2.chain("oem")
    store.add_roots("mo", [pki2.oem_root])
    check(validate_chain(leaf, subs, purpose="oem", store=store, at=at), CHAIN, Failure.UNKNOWN_ROOT)


def test_root_of_another_pki_with_the_same_name(pki2, store2, tmp_path):
    other = generate_test_pki(tmp_path / "other", variant="iso2")
    leaf, subs = other.chain("contract")  # same names, other keys
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.BROKEN_CHAIN)


def test_broken_chain_sub_ca_of_another_branch(pki2, store2):
    leaf = pki2.cert("contract_leaf")
    verdict = validate_chain(
        leaf, [pki2.cert("cpo_sub_ca2"), pki2.cert("cpo_sub_ca1")], purpose="contract", store=store2,
        at=validation_time(pki2),
    )
    check(verdict, CHAIN, Failure.BROKEN_CHAIN)


def test_sub_ca_expired_while_leaf_valid(pki2, store2, mint2):
    at = validation_time(pki2)
    sub2, sub2_key = mint2.cert("mo_sub_ca2", not_after=at - dt.timedelta(minutes=1))
    leaf, _ = mint2.cert("contract_leaf", issuer=None, issuer_cert=sub2, issuer_key=sub2_key)
    verdict = validate_chain(leaf, [sub2, pki2.cert("mo_sub_ca1")], purpose="contract", store=store2, at=at)
    check(verdict, EXPIRED, Failure.EXPIRED)
    assert "MO Sub-CA 2" in verdict.reason


def test_leaf_expired(pki2, store2):
    leaf, subs = pki2.chain("contract")
    at = leaf.not_valid_after_utc + dt.timedelta(seconds=1)
    check(validate_chain(leaf, subs, purpose="contract", store=store2, at=at), EXPIRED, Failure.EXPIRED)


def test_not_yet_valid(pki2, store2):
    leaf, subs = pki2.chain("contract")
    at = leaf.not_valid_before_utc - dt.timedelta(seconds=1)
    check(validate_chain(leaf, subs, purpose="contract", store=store2, at=at), EXPIRED, Failure.NOT_YET_VALID)


def test_root_expired(pki2, mint2, tmp_path):
    at = validation_time(pki2)
    root, root_key = mint2.cert("mo_root", issuer=None, not_after=at - dt.timedelta(minutes=1))
    sub1, sub1_key = mint2.cert("mo_sub_ca1", issuer=None, issuer_cert=root, issuer_key=root_key)
    sub2, sub2_key = mint2.cert("mo_sub_ca2", issuer=None, issuer_cert=sub1, issuer_key=sub1_key)
    leaf, _ = mint2.cert("contract_leaf", issuer=None, issuer_cert=sub2, issuer_key=sub2_key)
    store = TrustStore.init(tmp_path / "store")
    store.add_roots("mo", [root])
    verdict = validate_chain(leaf, [sub2, sub1], purpose="contract", store=store, at=at)
    check(verdict, EXPIRED, Failure.EXPIRED)
    assert "root" in verdict.reason


@pytest.mark.parametrize(
    "change, words",
    [
        ({"key_usage": frozenset({"crl_sign"})}, "keyCertSign"),
        ({"critical": False}, "critical"),
        ({"path_length": None}, "pathLenConstraint"),
        ({"path_length": 3}, "pathLenConstraint 3"),
        ({"ca": False, "path_length": None}, "CA:FALSE"),
    ],
)
def test_sub_ca_profile_violations(pki2, store2, mint2, change, words):
    sub2, sub2_key = mint2.cert("mo_sub_ca2", **change)
    leaf, _ = mint2.cert("contract_leaf", issuer=None, issuer_cert=sub2, issuer_key=sub2_key)
    verdict = validate_chain(
        leaf, [sub2, pki2.cert("mo_sub_ca1")], purpose="contract", store=store2, at=validation_time(pki2)
    )
    check(verdict, CHAIN, Failure.PROFILE)
    assert words in verdict.reason


def test_path_length_exceeded_below_sub_ca(pki2, store2, mint2):
    # Sub-CA 1 re-issued with pathLen 0 still signs Sub-CA 2: the root's path is too long for it.
    sub1, sub1_key = mint2.cert("mo_sub_ca1", path_length=0)
    sub2, sub2_key = mint2.cert("mo_sub_ca2", issuer=None, issuer_cert=sub1, issuer_key=sub1_key)
    leaf, _ = mint2.cert("contract_leaf", issuer=None, issuer_cert=sub2, issuer_key=sub2_key)
    verdict = validate_chain(leaf, [sub2, sub1], purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.BROKEN_CHAIN)


def test_leaf_key_usage(pki2, store2, mint2):
    leaf, _ = mint2.cert("secc_leaf", key_usage=frozenset({"digital_signature"}))  # -2 SECC needs keyAgreement
    _, subs = pki2.chain("secc")
    verdict = validate_chain(leaf, subs, purpose="secc", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.PROFILE)
    assert "key_agreement" in verdict.reason


def test_ca_as_leaf(pki2, store2):
    verdict = validate_chain(
        pki2.cert("mo_sub_ca2"), [pki2.cert("mo_sub_ca1")], purpose="contract", store=store2, at=validation_time(pki2)
    )
    check(verdict, CHAIN, Failure.PROFILE)


def test_malformed_der(pki2, store2):
    _, subs = pki2.chain("contract")
    verdict = validate_chain(b"\x30\x03\x02\x01\x01", subs, purpose="contract", store=store2, at=validation_time(pki2))
    check(verdict, CHAIN, Failure.MALFORMED)


def test_revoked_by_ocsp(pki2, store2):
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    revoked = build_ocsp_response(
        leaf, subs[0], pki2.key("mo_sub_ca2"), status=OcspStatus.REVOKED,
        this_update=at - dt.timedelta(hours=1), next_update=at + dt.timedelta(days=1),
    )
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=at, ocsp_responses=[revoked])
    check(verdict, REVOKED, Failure.REVOKED)


def test_revoked_sub_ca_by_ocsp(pki2, store2):
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    revoked = build_ocsp_response(
        subs[0], subs[1], pki2.key("mo_sub_ca1"), status="revoked",
        this_update=at - dt.timedelta(hours=1), next_update=at + dt.timedelta(days=1),
    )
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=at, ocsp_responses={1: revoked})
    check(verdict, REVOKED, Failure.REVOKED)


def test_forged_ocsp_revocation_is_ignored(pki2, store2, mint2):
    # An impostor with the issuer's name and its own key signs "revoked": not trusted.
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    impostor, impostor_key = mint2.cert("mo_sub_ca2")
    forged = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=leaf, issuer=subs[0], algorithm=hashes.SHA256(), cert_status=ocsp.OCSPCertStatus.REVOKED,
            this_update=at - dt.timedelta(hours=1), next_update=at + dt.timedelta(days=1),
            revocation_time=at - dt.timedelta(hours=1), revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.NAME, impostor)
        .sign(impostor_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=at, ocsp_responses=[forged])
    assert verdict.valid and "ignored" in verdict.reason and "signature" in verdict.reason


def test_good_ocsp_keeps_it_valid(pki2, store2):
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    good = build_ocsp_response(
        leaf, subs[0], pki2.key("mo_sub_ca2"), status="good",
        this_update=at - dt.timedelta(hours=1), next_update=at + dt.timedelta(days=1),
    )
    verdict = validate_chain(leaf, subs, purpose="contract", store=store2, at=at, ocsp_responses=[good])
    assert verdict.valid and "OCSP good" in verdict.reason


# --------------------------------------------------------------------------- #
# ISO 15118-20 variants                                                        #
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module", params=["iso20", "iso20-ed448"])
def pki20(request, tmp_path_factory):
    pki = generate_test_pki(tmp_path_factory.mktemp(request.param), variant=request.param)
    return pki, make_store(tmp_path_factory.mktemp(f"store-{request.param}"), pki), Mint(pki)


def test_iso20_chains_valid(pki20):
    pki, store, _ = pki20
    for purpose in ("contract", "secc", "oem", "cps"):
        leaf, subs = pki.chain(purpose)
        verdict = validate_chain(leaf, subs, purpose=purpose, store=store, at=validation_time(pki), variant=pki.variant)
        assert verdict.valid, verdict


def test_iso20_chain_refused_as_iso2(pki20):
    pki, store, _ = pki20
    leaf, subs = pki.chain("contract")
    verdict = validate_chain(leaf, subs, purpose="contract", store=store, at=validation_time(pki), variant="iso2")
    check(verdict, CHAIN, Failure.PROFILE)


def test_iso20_sub_ca_expired(pki20):
    pki, store, mint = pki20
    at = validation_time(pki)
    sub2, sub2_key = mint.cert("mo_sub_ca2", not_after=at - dt.timedelta(minutes=1))
    leaf, _ = mint.cert("contract_leaf", issuer=None, issuer_cert=sub2, issuer_key=sub2_key)
    verdict = validate_chain(leaf, [sub2, pki.cert("mo_sub_ca1")], purpose="contract", store=store, at=at)
    check(verdict, EXPIRED, Failure.EXPIRED)


def test_iso20_other_pki_same_names(pki20, tmp_path):
    pki, store, _ = pki20
    other = generate_test_pki(tmp_path / "other", variant=pki.variant)
    leaf, subs = other.chain("contract")
    check(validate_chain(leaf, subs, purpose="contract", store=store, at=validation_time(pki)), CHAIN, Failure.BROKEN_CHAIN)


def test_iso20_root_not_in_store(pki20, tmp_path):
    pki, _, _ = pki20
    store = TrustStore.init(tmp_path / "store")
    store.add_roots("v2g", [pki.v2g_root])
    leaf, subs = pki.chain("contract")
    check(validate_chain(leaf, subs, purpose="contract", store=store, at=validation_time(pki)), CHAIN, Failure.UNKNOWN_ROOT)


def test_iso20_path_length(pki20):
    pki, store, mint = pki20
    sub1, sub1_key = mint.cert("mo_sub_ca1", path_length=0)
    sub2, sub2_key = mint.cert("mo_sub_ca2", issuer=None, issuer_cert=sub1, issuer_key=sub1_key)
    leaf, _ = mint.cert("contract_leaf", issuer=None, issuer_cert=sub2, issuer_key=sub2_key)
    verdict = validate_chain(leaf, [sub2, sub1], purpose="contract", store=store, at=validation_time(pki))
    assert verdict.response_code == CHAIN and not verdict.valid


def test_iso20_root_expired(pki20, tmp_path):
    pki, _, mint = pki20
    at = validation_time(pki)
    root, root_key = mint.cert("mo_root", issuer=None, not_after=at - dt.timedelta(minutes=1))
    sub1, sub1_key = mint.cert("mo_sub_ca1", issuer=None, issuer_cert=root, issuer_key=root_key)
    sub2, sub2_key = mint.cert("mo_sub_ca2", issuer=None, issuer_cert=sub1, issuer_key=sub1_key)
    leaf, _ = mint.cert("contract_leaf", issuer=None, issuer_cert=sub2, issuer_key=sub2_key)
    store = TrustStore.init(tmp_path / "store")
    store.add_roots("mo", [root])
    check(validate_chain(leaf, [sub2, sub1], purpose="contract", store=store, at=at), EXPIRED, Failure.EXPIRED)


def test_at_must_be_aware(pki2, store2):
    leaf, subs = pki2.chain("contract")
    with pytest.raises(ValueError):
        validate_chain(leaf, subs, purpose="contract", store=store2, at=dt.datetime(2030, 1, 1))
