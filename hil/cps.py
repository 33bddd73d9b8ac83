"""A Certificate Provisioning Service stand-in for the rig: answers an EV's
CertificateInstallationReq / CertificateUpdateReq (EXI, as OCPP Get15118EVCertificate passes
it in ``exiRequest``) with a signed CertificateInstallationRes / CertificateUpdateRes (the
``exiResponse``), from a test PKI.

What it does, as a CPS does for ISO 15118-2:

1. decodes the request and checks the EV's signature over it (OEM provisioning key for an
   installation, the old contract key for an update);
2. takes the test PKI's contract certificate chain (MO Sub-CA 2, Sub-CA 1) and encrypts the
   contract private key for the EV (``pnc_bridge.pki.encrypt_contract_private_key``, to the
   OEM provisioning key or the old contract key);
3. signs ContractSignatureCertChain, ContractSignatureEncryptedPrivateKey, DHpublickey and
   eMAID with the CPS leaf key and sends the CPS chain along.

A refused request gets a response with ``FAILED_SignatureError`` / ``FAILED_NoCertificateAvailable``
and empty parts, as a CPS would send it. Used by ``hil.secc_rig``; the CSMS emulator can use
it for Get15118EVCertificate the same way.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from pnc_bridge import exi, xmldsig
from pnc_bridge.messages import iso2 as m
from pnc_bridge.pki import TestPki, encrypt_contract_private_key

__all__ = ["answer_certificate_request"]


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _empty(res_type: type, code: m.ResponseCode, session_id: bytes) -> bytes:
    body = res_type(
        response_code=code,
        sa_provisioning_certificate_chain=m.CertificateChain(certificate=b""),
        contract_signature_cert_chain=m.CertificateChain(certificate=b""),
        contract_signature_encrypted_private_key=m.ContractSignatureEncryptedPrivateKey(id="ID2", value=b""),
        dh_publickey=m.DiffieHellmanPublickey(id="ID3", value=b""),
        e_maid=m.EMAID(id="ID4", value="ZZ00000000000Z"),
    )
    return exi.encode("iso2", m.V2G_Message(header=m.MessageHeader(session_id=session_id), body=m.Body(body_element=body)))


def answer_certificate_request(exi_request: bytes, pki: TestPki) -> bytes:
    """The EXI CertificateInstallationRes / CertificateUpdateRes for ``exi_request``."""
    try:
        request = exi.decode("iso2", exi_request, strict=False)
    except exi.ExiDecodeError:
        return _empty(m.CertificateInstallationRes, m.ResponseCode.FAILED, bytes(1))
    body = request.body.body_element
    session_id = request.header.session_id
    if isinstance(body, m.CertificateInstallationReq):
        res_type, signer = m.CertificateInstallationRes, body.oem_provisioning_cert
    elif isinstance(body, m.CertificateUpdateReq):
        res_type, signer = m.CertificateUpdateRes, body.contract_signature_cert_chain.certificate
    else:
        return _empty(m.CertificateInstallationRes, m.ResponseCode.FAILED, session_id)
    if not xmldsig.verify_message(request, signer).valid:
        return _empty(res_type, m.ResponseCode.FAILED_SignatureError, session_id)
    try:
        recipient = x509.load_der_x509_certificate(signer).public_key()
        encrypted = encrypt_contract_private_key(pki.key("contract_leaf"), recipient)
    except ValueError:
        return _empty(res_type, m.ResponseCode.FAILED_NoCertificateAvailable, session_id)
    leaf, sub_cas = pki.chain("contract")
    cps_leaf, cps_subs = pki.chain("cps")
    contract_chain = m.CertificateChain(
        id="ID1", certificate=_der(leaf), sub_certificates=m.SubCertificates(certificate=[_der(c) for c in sub_cas])
    )
    key_part = m.ContractSignatureEncryptedPrivateKey(id="ID2", value=encrypted.encrypted_private_key)
    dh_part = m.DiffieHellmanPublickey(id="ID3", value=encrypted.dh_public_key)
    emaid_part = m.EMAID(id="ID4", value=pki.emaid)
    response = res_type(
        response_code=m.ResponseCode.OK,
        sa_provisioning_certificate_chain=m.CertificateChain(
            certificate=_der(cps_leaf), sub_certificates=m.SubCertificates(certificate=[_der(c) for c in cps_subs])
        ),
        contract_signature_cert_chain=contract_chain,
        contract_signature_encrypted_private_key=key_part,
        dh_publickey=dh_part,
        e_maid=emaid_part,
    )
    message = m.V2G_Message(header=m.MessageHeader(session_id=session_id), body=m.Body(body_element=response))
    return exi.encode("iso2", xmldsig.sign_message(message, pki.key("cps_leaf")))
