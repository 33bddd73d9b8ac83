"""The PKI trust store behind the OCPP ``CertificateStore`` port (``TrustStoreCertificates``)
and behind the SECC's TLS (``TrustStoreCredentials``): directly, and through the station's
handlers with the ``hil.csms`` emulator sending InstallCertificate, GetInstalledCertificateIds,
DeleteCertificate and CertificateSigned as a CSMS would."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hil.demo_rig import BridgeRig, make_trust_store
from pnc_bridge.bridge import TrustStoreCertificates, TrustStoreCredentials
from pnc_bridge.link.tls import TlsProfile
from pnc_bridge.ocpp import CertificateHashData, certificate_hash_data
from pnc_bridge.pki import LeafSlot, RootKind, TrustStore, generate_test_pki
from pnc_bridge.pki._profiles import HIERARCHY
from pnc_bridge.pki._testpki import issue
from tests.bridge.conftest import run

NOW = dt.datetime.now(dt.timezone.utc)


def pem(*certs: x509.Certificate) -> str:
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)


def test_roots_install_list_delete(test_pki, tmp_path):
    port = TrustStoreCertificates(TrustStore.init(tmp_path / "trust"), max_entries=3)
    assert port.install_root("MORootCertificate", pem(test_pki.mo_root), NOW) == ("Accepted", None)
    assert port.install_root("V2GRootCertificate", pem(test_pki.v2g_root), NOW) == ("Accepted", None)
    assert port.install_root("MORootCertificate", pem(test_pki.mo_root), NOW) == ("Accepted", None)  # M05.FR.17: replace
    # not a root / not a CA / expired / unknown use / two at once
    assert port.install_root("MORootCertificate", pem(test_pki.cert("mo_sub_ca1")), NOW) == ("Rejected", "InvalidCertificate")
    assert port.install_root("MORootCertificate", pem(test_pki.contract_leaf), NOW) == ("Rejected", "InvalidCertificate")
    later = test_pki.mo_root.not_valid_after_utc + dt.timedelta(days=1)
    assert port.install_root("MORootCertificate", pem(test_pki.oem_root), later) == ("Rejected", "InvalidCertificate")
    assert port.install_root("ManufacturerRootCertificate", pem(test_pki.oem_root), NOW) == ("Rejected", "UnsupportedParam")
    assert port.install_root("CSMSRootCertificate", pem(test_pki.csms_root, test_pki.oem_root), NOW)[0] == "Rejected"
    assert port.install_root("CSMSRootCertificate", "not a certificate", NOW) == ("Rejected", "InvalidCertificate")
    assert port.install_root("CSMSRootCertificate", pem(test_pki.csms_root), NOW) == ("Accepted", None)
    assert port.install_root("OEMRootCertificate", pem(test_pki.oem_root), NOW) == ("Rejected", "OutOfStorage")
    assert port.count() == 3

    listed = {i.certificate_type: i.hash_data for i in port.installed()}
    assert listed["MORootCertificate"] == certificate_hash_data(test_pki.mo_root, test_pki.mo_root)
    assert [i.certificate_type for i in port.installed(["V2GRootCertificate"])] == ["V2GRootCertificate"]
    assert port.csms_root_pem() == pem(test_pki.csms_root)

    assert port.delete(listed["MORootCertificate"]) == "Accepted"
    assert port.delete(listed["MORootCertificate"]) == "NotFound"
    assert port.delete(CertificateHashData("SHA256", "00", "00", "1")) == "NotFound"
    assert {r.kind for r in port.store.roots()} == {RootKind.V2G, RootKind.CSMS}


def test_v2g_certificate_csr_and_certificate_signed(test_pki, tmp_path):
    store = make_trust_store(tmp_path / "trust", test_pki)
    port = TrustStoreCertificates(store)
    credentials = TrustStoreCredentials(store)
    (before,) = credentials(TlsProfile.ISO15118_2)
    assert before.chain[0] == test_pki.secc_leaf and before.root == test_pki.v2g_root

    csr = x509.load_pem_x509_csr(port.create_csr("V2GCertificate", common_name="SECC-NEW", organization="Acme",
                                                 country="DE").encode())
    assert csr.subject.rfc4514_string() == "DC=CPO,C=DE,O=Acme,CN=SECC-NEW"
    template = HIERARCHY["secc_leaf"][0].replace(common_name="SECC-NEW")
    sub2, sub1 = test_pki.cert("cpo_sub_ca2"), test_pki.cert("cpo_sub_ca1")
    signed = issue(template, public_key=csr.public_key(), issuer=sub2, issuer_key=test_pki.key("cpo_sub_ca2"),
                   not_before=NOW - dt.timedelta(minutes=5))
    # a chain for another key is refused and changes nothing
    stranger = issue(template, public_key=test_pki.key("oem_prov_leaf").public_key(), issuer=sub2,
                     issuer_key=test_pki.key("cpo_sub_ca2"), not_before=NOW - dt.timedelta(minutes=5))
    assert port.install_signed("V2GCertificate", pem(stranger, sub2, sub1), NOW) == ("Rejected", "InvalidCertificate")
    assert port.install_signed("V2GCertificate", pem(signed, sub2, sub1), NOW) == ("Accepted", None)
    (after,) = credentials(TlsProfile.ISO15118_2)  # the next TLS connection uses it, no restart
    assert after.chain[0] == signed

    (chain,) = port.installed(["V2GCertificateChain"])
    assert chain.hash_data == certificate_hash_data(signed, sub2) and len(chain.children) == 2
    assert port.delete(chain.hash_data) == "Accepted"
    assert store.leaf(LeafSlot.SECC) is None and credentials(TlsProfile.ISO15118_2) == []


def test_charging_station_certificate_for_profile_3(test_pki, tmp_path):
    store = TrustStore.init(tmp_path / "trust")
    port = TrustStoreCertificates(store)
    assert port.tls_client_files() is None and not port.charging_station_certificate_valid(NOW)
    store.add_roots(RootKind.CSMS, [test_pki.csms_root])
    store.install_leaf(LeafSlot.CHARGING_STATION, [test_pki.cert("charging_station")], test_pki.key("charging_station"))
    chain_path, key_path = port.tls_client_files()
    assert chain_path.read_bytes().startswith(b"-----BEGIN CERTIFICATE") and key_path.exists()
    assert port.charging_station_certificate_valid(NOW)
    # M04.FR.06: the certificate the station connects with cannot be deleted
    hash_data = certificate_hash_data(test_pki.cert("charging_station"), test_pki.csms_root)
    assert port.delete(hash_data) == "Failed"


def test_the_csms_manages_the_trust_store_over_ocpp(test_pki, tmp_path):
    other = generate_test_pki(tmp_path / "other")

    async def main():
        async with BridgeRig(tmp_path / "rig", test_pki) as rig:
            call = rig.csms.call_json
            installed = await call("DEMO-CS-1", "InstallCertificate",
                                   {"certificateType": "MORootCertificate", "certificate": pem(other.mo_root)})
            listing = await call("DEMO-CS-1", "GetInstalledCertificateIds", {"certificateType": ["MORootCertificate"]})
            mine = certificate_hash_data(test_pki.mo_root, test_pki.mo_root)
            deleted = await call("DEMO-CS-1", "DeleteCertificate", {"certificateHashData": {
                "hashAlgorithm": "SHA256", "issuerNameHash": mine.issuer_name_hash, "issuerKeyHash": mine.issuer_key_hash,
                "serialNumber": mine.serial_number}})
            return installed, listing, deleted, rig

    installed, listing, deleted, rig = run(main())
    assert installed["status"] == "Accepted" and deleted["status"] == "Accepted"
    assert len(listing["certificateHashDataChain"]) == 2
    mo = rig.trust_store.roots(RootKind.MO)
    assert [r.certificate for r in mo] == [other.mo_root]  # the store the SECC validates contracts with
    assert rig.csms.invalid_frames() == []


def test_the_iso15118_20_secc_certificate_through_ocpp_21(test_pki, tmp_path):
    """OCPP 2.1: TriggerMessage SignV2G20Certificate -> SignCertificate (V2G20Certificate, a
    secp521r1 CSR) -> the CPO CA signs -> CertificateSigned installs it into the secc20 slot,
    the TLS 1.3 credential uses it, and its OCSP status is asked for at once (M06). Every
    frame schema-checked by the emulator against the official OCPP 2.1 schemas."""
    from cryptography.hazmat.primitives.asymmetric import ec

    pki20 = generate_test_pki(tmp_path / "pki20", variant="iso20")
    sub2, sub1 = pki20.cert("cpo_sub_ca2"), pki20.cert("cpo_sub_ca1")

    async def main():
        async with BridgeRig(tmp_path / "rig", test_pki, pki20=pki20, v2g={"protocols": ["iso20-dc", "iso2"]},
                             csms={"subprotocols": ["ocpp2.1"]},
                             iso15118={"secc_id": "DEACME0001", "organization_name": "Acme CPO", "country_name": "DE"}) as rig:
            call = rig.csms.call_json
            await rig.wait_for(lambda r: len(r.calls("GetCertificateStatus")) >= 6)  # both chains at start
            triggered = await call("DEMO-CS-1", "TriggerMessage", {"requestedMessage": "SignV2G20Certificate"})
            request = await rig.wait_for(lambda r: next(
                (c for c in r.calls("SignCertificate") if c.get("certificateType") == "V2G20Certificate"), None))
            csr = x509.load_pem_x509_csr(request["csr"].encode())
            template = HIERARCHY["secc_leaf"][0].replace(common_name="SECC-20-NEW",
                                                         ocsp_url="http://127.0.0.1:8080/ocsp/cpo_sub_ca2")
            signed = issue(template, public_key=csr.public_key(), issuer=sub2, issuer_key=pki20.key("cpo_sub_ca2"),
                           not_before=NOW - dt.timedelta(minutes=5))
            answer = await call("DEMO-CS-1", "CertificateSigned",
                                {"certificateType": "V2G20Certificate", "certificateChain": pem(signed, sub2, sub1)})
            serial = format(signed.serial_number, "x")
            await rig.wait_for(lambda r: any(c["ocspRequestData"]["serialNumber"] == serial
                                             for c in r.calls("GetCertificateStatus")))
            credentials = TrustStoreCredentials(rig.trust_store)
            return triggered, csr, answer, signed, credentials(TlsProfile.ISO15118_20), rig

    triggered, csr, answer, signed, creds20, rig = run(main())
    assert triggered["status"] == "Accepted" and answer["status"] == "Accepted"
    assert isinstance(csr.public_key(), ec.EllipticCurvePublicKey) and csr.public_key().curve.name == "secp521r1"
    assert csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "DEACME0001"
    assert rig.trust_store.leaf(LeafSlot.SECC20).certificate == signed
    assert rig.trust_store.leaf(LeafSlot.SECC).certificate == test_pki.secc_leaf  # the -2 one untouched
    assert [c.chain[0] for c in creds20] == [signed]
    assert rig.csms.invalid_frames() == []
