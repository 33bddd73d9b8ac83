"""Signed Plug & Charge messages built from a test PKI (keys generated at test time), for
the round-trip tests, the EXIficient differential tests and benchmarks/xmldsig_bench.py.

``unsigned(standard, name, pki)`` builds the message before signing; ``signer_key(name,
pki)`` is the key the standard's signer uses; ``SIGNED_KINDS`` lists them all.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.serialization import Encoding

from pnc_bridge.messages import iso2, iso20
from pnc_bridge.messages import xmldsig as ds
from pnc_bridge.xmldsig import KINDS, Standard

SESSION_ID = bytes.fromhex("4a1f00c0ffee0042")
GEN_CHALLENGE = bytes(range(16))
#: every (standard, message) whose signature the table knows
SIGNED_KINDS = sorted(KINDS, key=lambda k: (k[0].value, k[1]))

#: the test-PKI certificate whose key signs each kind
SIGNER = {"contract": "contract_leaf", "oem": "oem_prov_leaf", "cps": "cps_leaf"}


def der(cert) -> bytes:
    return cert.public_bytes(Encoding.DER)


def signer_key(standard: Standard, name: str, pki):
    return pki.key(SIGNER[KINDS[(standard, name)].signer])


def signer_chain(standard: Standard, name: str, pki) -> list[bytes]:
    leaf, subs = pki.chain(KINDS[(standard, name)].signer)
    return [der(leaf), *(der(s) for s in subs)]


def _root_ids(pki, mod):
    root = pki.v2g_root
    return mod.ListOfRootCertificateIDs(
        root_certificate_id=[ds.X509IssuerSerial(x509_issuer_name=root.issuer.rfc4514_string(), x509_serial_number=root.serial_number)]
    )


def _iso2(body) -> iso2.V2G_Message:
    return iso2.V2G_Message(header=iso2.MessageHeader(session_id=SESSION_ID), body=iso2.Body(body_element=body))


def _iso2_chain(pki, purpose: str, ident: str | None = None) -> iso2.CertificateChain:
    leaf, subs = pki.chain(purpose)
    return iso2.CertificateChain(
        id=ident, certificate=der(leaf), sub_certificates=iso2.SubCertificates(certificate=[der(s) for s in subs])
    )


def _iso20_header() -> iso20.MessageHeader:
    return iso20.MessageHeader(session_id=SESSION_ID, time_stamp=1_767_225_600)


def _iso20_chain(pki, purpose: str, cls=iso20.CertificateChain, **kw):
    leaf, subs = pki.chain(purpose)
    return cls(certificate=der(leaf), sub_certificates=iso20.SubCertificates(certificate=[der(s) for s in subs]), **kw)


def unsigned(standard: Standard, name: str, pki):
    """The message ``name`` of ``standard`` as its sender builds it, before signing."""
    if standard is Standard.ISO15118_2:
        if name == "AuthorizationReq":
            return _iso2(iso2.AuthorizationReq(id="ID1", gen_challenge=GEN_CHALLENGE))
        if name == "MeteringReceiptReq":
            return _iso2(
                iso2.MeteringReceiptReq(
                    id="id1",
                    session_id=SESSION_ID,
                    sa_schedule_tuple_id=1,
                    meter_info=iso2.MeterInfo(meter_id="DE*PNC*M0001", meter_reading=123_456, t_meter=1_767_225_600),
                )
            )
        if name == "CertificateInstallationReq":
            return _iso2(
                iso2.CertificateInstallationReq(
                    id="ID1", oem_provisioning_cert=der(pki.cert("oem_prov_leaf")), list_of_root_certificate_ids=_root_ids(pki, iso2)
                )
            )
        if name == "CertificateUpdateReq":
            return _iso2(
                iso2.CertificateUpdateReq(
                    id="ID1",
                    contract_signature_cert_chain=_iso2_chain(pki, "contract"),
                    e_maid=pki.emaid,
                    list_of_root_certificate_ids=_root_ids(pki, iso2),
                )
            )
        if name in ("CertificateInstallationRes", "CertificateUpdateRes"):
            cls = getattr(iso2, name)
            extra = {"retry_counter": 0} if name == "CertificateUpdateRes" else {}
            return _iso2(
                cls(
                    response_code=iso2.ResponseCode.OK,
                    sa_provisioning_certificate_chain=_iso2_chain(pki, "cps"),
                    contract_signature_cert_chain=_iso2_chain(pki, "contract", "ID1"),
                    contract_signature_encrypted_private_key=iso2.ContractSignatureEncryptedPrivateKey(id="ID2", value=bytes(range(48))),
                    dh_publickey=iso2.DiffieHellmanPublickey(id="ID3", value=b"\x04" + bytes(range(64))),
                    e_maid=iso2.EMAID(id="ID4", value=pki.emaid),
                    **extra,
                )
            )
    else:
        if name == "AuthorizationReq":
            return iso20.AuthorizationReq(
                header=_iso20_header(),
                selected_authorization_service=iso20.Authorization.PnC,
                pnc_areq_authorization_mode=iso20.PnC_AReqAuthorizationMode(
                    id="id1",
                    gen_challenge=GEN_CHALLENGE,
                    contract_certificate_chain=_iso20_chain(pki, "contract", iso20.ContractCertificateChain),
                ),
            )
        if name == "MeteringConfirmationReq":
            return iso20.MeteringConfirmationReq(
                header=_iso20_header(),
                signed_metering_data=iso20.SignedMeteringData(
                    id="id1",
                    session_id=SESSION_ID,
                    meter_info=iso20.MeterInfo(meter_id="DE*PNC*M0001", charged_energy_reading_wh=42_000, meter_timestamp=1_767_225_600),
                    receipt=iso20.Receipt(time_anchor=1_767_225_600),
                    scheduled_smdt_control_mode=iso20.Scheduled_SMDTControlMode(selected_schedule_tuple_id=1),
                ),
            )
        if name == "CertificateInstallationReq":
            return iso20.CertificateInstallationReq(
                header=_iso20_header(),
                oem_provisioning_certificate_chain=_iso20_chain(pki, "oem", iso20.SignedCertificateChain, id="id1"),
                list_of_root_certificate_ids=_root_ids(pki, iso20),
                maximum_contract_certificate_chains=1,
                prioritized_ema_ids=iso20.EMAIDList(emaid=[pki.emaid]),
            )
        if name == "CertificateInstallationRes":
            ed448 = pki.variant.value == "iso20-ed448"
            return iso20.CertificateInstallationRes(
                header=_iso20_header(),
                response_code=iso20.ResponseCode.OK,
                evse_processing=iso20.Processing.Finished,
                cps_certificate_chain=_iso20_chain(pki, "cps"),
                signed_installation_data=iso20.SignedInstallationData(
                    id="id1",
                    contract_certificate_chain=_iso20_chain(pki, "contract", iso20.ContractCertificateChain),
                    ecdh_curve=iso20.EcdhCurve.X448 if ed448 else iso20.EcdhCurve.SECP521,
                    dh_public_key=bytes(133),
                    secp521_encrypted_private_key=None if ed448 else bytes(range(94)),
                    x448_encrypted_private_key=bytes(range(84)) if ed448 else None,
                ),
                remaining_contract_certificate_chains=0,
            )
    raise KeyError((standard, name))
