"""CSR for SignCertificate and install of the CertificateSigned chain.

The CSR is checked by ``openssl req -verify`` (independent parser and signature check);
the "CSMS" that signs it is our test PKI's CPO Sub-CA 2 / CSMS root.
"""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from pnc_bridge.pki import (
    CertificateSignedStatus,
    CsrError,
    TrustStore,
    create_csr,
    fingerprint,
    install_signed,
)
from pnc_bridge.pki._certio import chain_pem
from pnc_bridge.pki._profiles import HIERARCHY
from pnc_bridge.pki._testpki import issue

from .conftest import OPENSSL, make_store, needs_openssl, validation_time


def _sign(pki, csr_pem: str, issuer: str, template_name: str):
    """What the CSMS / CPO CA would do with the CSR."""
    csr = x509.load_pem_x509_csr(csr_pem.encode())
    assert csr.is_signature_valid
    cn = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    template = HIERARCHY[template_name][0].replace(common_name=cn)
    return issue(template, public_key=csr.public_key(), issuer=pki.cert(issuer), issuer_key=pki.key(issuer),
                 not_before=pki.at - dt.timedelta(hours=1))


@pytest.fixture()
def store(pki2, tmp_path):
    return make_store(tmp_path / "store", pki2)


@needs_openssl
def test_v2g_csr_is_valid_for_openssl(store, tmp_path):
    pem = create_csr(store, "V2GCertificate", common_name="DE*ABC*E1234", organization="CPO Ltd", country="DE")
    (tmp_path / "csr.pem").write_text(pem)
    result = subprocess.run([OPENSSL, "req", "-in", str(tmp_path / "csr.pem"), "-verify", "-noout", "-text"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "verify OK" in result.stdout + result.stderr
    assert "CN = DE*ABC*E1234" in result.stdout and "DC = CPO" in result.stdout
    assert "prime256v1" in result.stdout and "Key Agreement" in result.stdout


def test_v2g_certificate_install_keeps_the_previous_one(pki2, store):
    at = validation_time(pki2)
    sub2, sub1 = pki2.cert("cpo_sub_ca2"), pki2.cert("cpo_sub_ca1")
    pem = create_csr(store, "V2GCertificate", common_name="SECC-1", organization="CPO")
    assert TrustStore(store.path).snapshot().pending_keys  # survives a restart between the two messages
    first = _sign(pki2, pem, "cpo_sub_ca2", "secc_leaf")
    result = install_signed(store, "V2GCertificate", chain_pem([first, sub2, sub1]), at=at)
    assert result.status is CertificateSignedStatus.Accepted, result.reason
    snapshot = store.snapshot()
    assert snapshot.leaves["secc"].certificate == first and not snapshot.pending_keys

    pem2 = create_csr(store, "V2GCertificate", common_name="SECC-1", organization="CPO")
    # Until the new certificate arrives the old one stays in use.
    assert store.leaf("secc").certificate == first
    second = _sign(pki2, pem2, "cpo_sub_ca2", "secc_leaf")
    result = install_signed(store, "V2GCertificate", chain_pem([second, sub2, sub1, pki2.v2g_root]), at=at)
    assert result.accepted, result.reason
    snapshot = store.snapshot()
    assert snapshot.leaves["secc"].certificate == second
    assert snapshot.previous["secc"].certificate == first
    assert fingerprint(snapshot.leaves["secc"].chain[-1]) == fingerprint(sub1)  # the root is not kept


def test_charging_station_certificate(pki2, store):
    pem = create_csr(store, "ChargingStationCertificate", common_name="CS0001", organization="CPO")
    cert = _sign(pki2, pem, "csms_root", "charging_station")
    result = install_signed(store, "ChargingStationCertificate", chain_pem([cert]), at=validation_time(pki2))
    assert result.accepted, result.reason
    assert store.leaf("charging-station").certificate == cert


def test_rejected_when_key_does_not_match(pki2, store):
    create_csr(store, "V2GCertificate", common_name="SECC-1", organization="CPO")
    chain = chain_pem([pki2.secc_leaf, pki2.cert("cpo_sub_ca2"), pki2.cert("cpo_sub_ca1")])  # another key
    result = install_signed(store, "V2GCertificate", chain, at=validation_time(pki2))
    assert result.status is CertificateSignedStatus.Rejected and "key" in result.reason
    assert store.leaf("secc") is None


def test_rejected_when_chain_does_not_validate(pki2, store):
    pem = create_csr(store, "V2GCertificate", common_name="SECC-1", organization="CPO")
    cert = _sign(pki2, pem, "cpo_sub_ca2", "secc_leaf")
    # Sub-CA 1 missing: no path to the V2G root.
    result = install_signed(store, "V2GCertificate", chain_pem([cert, pki2.cert("cpo_sub_ca2")]), at=validation_time(pki2))
    assert not result.accepted and result.verdict.response_code == "FAILED_CertChainError"
    # Expired at the given time.
    result = install_signed(store, "V2GCertificate", chain_pem([cert, pki2.cert("cpo_sub_ca2"), pki2.cert("cpo_sub_ca1")]),
                            at=cert.not_valid_after_utc + dt.timedelta(days=1))
    assert not result.accepted and result.verdict.response_code == "FAILED_CertificateExpired"
    assert store.snapshot().pending_keys  # still waiting for a good one


@pytest.mark.parametrize("chain", ["", "not a pem", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"])
def test_rejected_when_malformed(store, pki2, chain):
    result = install_signed(store, "V2GCertificate", chain, at=validation_time(pki2))
    assert result.status is CertificateSignedStatus.Rejected and result.reason


@pytest.mark.parametrize(
    "kwargs",
    [
        {"common_name": " ", "organization": "CPO"},
        {"common_name": "X", "organization": ""},
        {"common_name": "X", "organization": "CPO", "country": "DEU"},
    ],
)
def test_csr_input_errors(store, kwargs):
    with pytest.raises(CsrError):
        create_csr(store, "V2GCertificate", **kwargs)


def test_iso20_csr_key_types(store):
    for variant, marker in (("iso20", "secp521r1"), ("iso20-ed448", "Ed448")):
        pem = create_csr(store, "V2GCertificate", common_name="SECC", organization="CPO", variant=variant)
        key = x509.load_pem_x509_csr(pem.encode()).public_key()
        assert marker.lower() in (getattr(getattr(key, "curve", None), "name", "") or type(key).__name__).lower()


def test_v2g20_certificate_goes_to_its_own_slot(tmp_path_factory, tmp_path):
    """OCPP 2.1 V2G20Certificate: a secp521r1 key (even when asked for iso2) and, once signed by
    the -20 CPO Sub-CA, the ``secc20`` slot; the ISO 15118-2 certificate stays where it is."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from pnc_bridge.pki import generate_test_pki

    pki20 = generate_test_pki(tmp_path_factory.mktemp("pki20"), variant="iso20")
    store = make_store(tmp_path / "store20", pki20)
    pem = create_csr(store, "V2G20Certificate", common_name="SECC-20", organization="CPO")
    csr = x509.load_pem_x509_csr(pem.encode())
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey) and csr.public_key().curve.name == "secp521r1"
    cert = _sign(pki20, pem, "cpo_sub_ca2", "secc_leaf")
    chain = chain_pem([cert, pki20.cert("cpo_sub_ca2"), pki20.cert("cpo_sub_ca1")])
    result = install_signed(store, "V2G20Certificate", chain, at=validation_time(pki20))
    assert result.accepted, result.reason
    assert store.leaf("secc20").certificate == cert and store.leaf("secc") is None
    # the -2 use is unaffected and still P-256
    other = x509.load_pem_x509_csr(create_csr(store, "V2GCertificate", common_name="SECC-2", organization="CPO").encode())
    assert other.public_key().curve.name == "secp256r1"
