"""OCSP responses: parsing, responder authorisation, freshness; and the root a peer sends."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID

from pnc_bridge.pki import OcspError, OcspStatus, build_ocsp_response, check_ocsp_response, validate_chain

from .conftest import Mint, make_store, validation_time


def _window(at):
    return {"this_update": at - dt.timedelta(hours=1), "next_update": at + dt.timedelta(hours=1)}


@pytest.mark.parametrize("status", list(OcspStatus))
def test_status_round_trip(any_pki, status):
    leaf, subs = any_pki.chain("contract")
    at = validation_time(any_pki)
    der = build_ocsp_response(leaf, subs[0], any_pki.key("mo_sub_ca2"), status=status, **_window(at))
    result = check_ocsp_response(der, leaf, subs[0], at=at)
    assert result.status is status
    assert (result.revocation_time is not None) == (status is OcspStatus.REVOKED)


def test_response_about_another_certificate_is_not_applied(pki2):
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    der = build_ocsp_response(subs[0], subs[1], pki2.key("mo_sub_ca1"), status="revoked", **_window(at))
    assert check_ocsp_response(der, leaf, subs[0], at=at) is None


def test_stale_and_future_responses_are_refused(pki2):
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    der = build_ocsp_response(leaf, subs[0], pki2.key("mo_sub_ca2"), status="revoked", **_window(at))
    with pytest.raises(OcspError, match="stale"):
        check_ocsp_response(der, leaf, subs[0], at=at + dt.timedelta(hours=2))
    with pytest.raises(OcspError, match="future"):
        check_ocsp_response(der, leaf, subs[0], at=at - dt.timedelta(hours=2))


def test_delegated_responder(pki2):
    mint = Mint(pki2)
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    responder, responder_key = mint.cert(
        "contract_leaf", issuer="mo_sub_ca2", common_name="MO OCSP responder",
        extended_key_usage=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    )
    der = build_ocsp_response(leaf, subs[0], responder_key, status="revoked", responder_cert=responder, **_window(at))
    assert check_ocsp_response(der, leaf, subs[0], at=at).status is OcspStatus.REVOKED
    # Without the OCSPSigning EKU the same responder is not authorised.
    plain, plain_key = mint.cert("contract_leaf", issuer="mo_sub_ca2", common_name="Not a responder")
    der = build_ocsp_response(leaf, subs[0], plain_key, status="revoked", responder_cert=plain, **_window(at))
    with pytest.raises(OcspError, match="OCSPSigning"):
        check_ocsp_response(der, leaf, subs[0], at=at)


def test_garbage_is_an_ocsp_error(pki2):
    leaf, subs = pki2.chain("contract")
    with pytest.raises(OcspError, match="malformed"):
        check_ocsp_response(b"\x30\x00", leaf, subs[0], at=validation_time(pki2))


def test_revocation_in_an_ed448_chain(tmp_path):
    from pnc_bridge.pki import generate_test_pki

    pki = generate_test_pki(tmp_path / "pki", variant="iso20-ed448")
    store = make_store(tmp_path / "store", pki)
    leaf, subs = pki.chain("contract")
    at = validation_time(pki)
    der = build_ocsp_response(leaf, subs[0], pki.key("mo_sub_ca2"), status="revoked", **_window(at))
    verdict = validate_chain(leaf, subs, purpose="contract", store=store, at=at, ocsp_responses=[der])
    assert verdict.response_code == "FAILED_CertificateRevoked"


def test_peer_sent_root_is_ignored_not_trusted(pki2, store2, tmp_path):
    leaf, subs = pki2.chain("contract")
    at = validation_time(pki2)
    assert validate_chain(leaf, [*subs, pki2.mo_root], purpose="contract", store=store2, at=at).valid
    # Sending the root does not make it trusted.
    from pnc_bridge.pki import TrustStore

    empty = TrustStore.init(tmp_path / "empty")
    verdict = validate_chain(leaf, [*subs, pki2.mo_root], purpose="contract", store=empty, at=at)
    assert not verdict.valid and verdict.response_code == "FAILED_CertChainError"
