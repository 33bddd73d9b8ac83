"""An ISO 15118-20 Certificate Provisioning Service stand-in for the rig: answers an EV's -20
CertificateInstallationReq (EXI, as OCPP Get15118EVCertificate passes it in ``exiRequest``)
with a signed CertificateInstallationRes (the ``exiResponse``), from a -20 test PKI.

What it does, as a CPS does for ISO 15118-20:

1. decodes the request (``iso20-common``), validates the OEM provisioning chain the request
   carries against the test PKI's OEM root and checks the EV's signature over
   OEMProvisioningCertificateChain with it;
2. takes the test PKI's contract chain (P-521) and encrypts the contract private key for the
   EV's OEM provisioning key (see *key transport* below);
3. signs SignedInstallationData with the CPS leaf key (``pnc_bridge.xmldsig``, ecdsa-sha512)
   and sends the CPS chain along.

**Key transport is the rig's own.** The standard fixes the sizes (``DHPublicKey`` 133 bytes:
an uncompressed P-521 point; ``SECP521_EncryptedPrivateKey`` 94 bytes, which fits a 12-byte
AES-GCM nonce, the 66-byte private scalar and a 16-byte tag), but the key derivation's
inputs are not in public material we could check, and ``pnc_bridge.pki`` does not implement
-20 key transport for that reason (see its ``_contract_key`` docstring). The rig's EV and
this stand-in agree on: ECDH on P-521 with an ephemeral key, ConcatKDF (SHA-512, 256 bits,
OtherInfo :data:`RIG_OTHER_INFO`), AES-256-GCM. It interoperates with nobody but the rig; it
lives here, in one place, so that the standard's exact inputs replace it in one change.
X448 (Ed448 test PKIs) is not provided: the answer is ``WARNING_NoCertificateAvailable``.
A refused request gets a response with a FAILED / WARNING code and placeholder parts.
"""

from __future__ import annotations

import datetime as dt
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from pnc_bridge import exi, xmldsig
from pnc_bridge.messages import iso20 as m
from pnc_bridge.pki import TestPki, validate_chain

__all__ = ["RIG_OTHER_INFO", "answer_certificate_installation_20", "rig_decrypt_contract_key", "rig_encrypt_contract_key"]

#: ConcatKDF OtherInfo of the rig's key transport (not the standard's; see the module docstring)
RIG_OTHER_INFO = b"pnc-bridge rig ISO 15118-20 contract key transport"
_NONCE = 12
_SCALAR = 66  # P-521 private scalar, big endian


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _kek(private: ec.EllipticCurvePrivateKey, peer: ec.EllipticCurvePublicKey) -> bytes:
    shared = private.exchange(ec.ECDH(), peer)
    return ConcatKDFHash(hashes.SHA512(), 32, RIG_OTHER_INFO).derive(shared)


def rig_encrypt_contract_key(contract_key: ec.EllipticCurvePrivateKey, recipient: ec.EllipticCurvePublicKey) -> tuple[bytes, bytes]:
    """(DHPublicKey 133 bytes, SECP521_EncryptedPrivateKey 94 bytes) of the rig's scheme."""
    if not isinstance(getattr(recipient, "curve", None), ec.SECP521R1) or not isinstance(getattr(contract_key, "curve", None), ec.SECP521R1):
        raise ValueError("the rig's -20 key transport is defined for P-521 keys only")
    ephemeral = ec.generate_private_key(ec.SECP521R1())
    nonce = os.urandom(_NONCE)
    scalar = contract_key.private_numbers().private_value.to_bytes(_SCALAR, "big")
    sealed = nonce + AESGCM(_kek(ephemeral, recipient)).encrypt(nonce, scalar, None)
    return ephemeral.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint), sealed


def rig_decrypt_contract_key(dh_public_key: bytes, sealed: bytes, recipient_key: ec.EllipticCurvePrivateKey,
                             expected_public_key: ec.EllipticCurvePublicKey | None = None) -> ec.EllipticCurvePrivateKey:
    """The EV's side of :func:`rig_encrypt_contract_key`; ``ValueError`` when it does not open
    or does not match the contract certificate's key."""
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP521R1(), dh_public_key)
    try:
        scalar = AESGCM(_kek(recipient_key, peer)).decrypt(sealed[:_NONCE], sealed[_NONCE:], None)
    except Exception as exc:  # InvalidTag: wrong key or altered data
        raise ValueError(f"contract key does not decrypt: {type(exc).__name__}") from None
    key = ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP521R1())
    if expected_public_key is not None and key.public_key().public_numbers() != expected_public_key.public_numbers():
        raise ValueError("the decrypted key does not belong to the contract certificate")
    return key


def _refusal(code: m.ResponseCode, session_id: bytes) -> bytes:
    res = m.CertificateInstallationRes(
        header=m.MessageHeader(session_id=session_id, time_stamp=0), response_code=code, evse_processing=m.Processing.Finished,
        cps_certificate_chain=m.CertificateChain(certificate=b""),
        signed_installation_data=m.SignedInstallationData(
            id="ID1", contract_certificate_chain=m.ContractCertificateChain(
                certificate=b"", sub_certificates=m.SubCertificates(certificate=[b""])),
            ecdh_curve=m.EcdhCurve.SECP521, dh_public_key=bytes(133), secp521_encrypted_private_key=bytes(94)),
        remaining_contract_certificate_chains=0,
    )
    return exi.encode("iso20-common", res)


def answer_certificate_installation_20(exi_request: bytes, pki: TestPki, *, at: dt.datetime | None = None) -> bytes:
    """The EXI CertificateInstallationRes for a -20 ``exi_request``."""
    at = at or dt.datetime.now(dt.timezone.utc)
    try:
        request = exi.decode("iso20-common", exi_request, strict=False)
    except exi.ExiDecodeError:
        return _refusal(m.ResponseCode.FAILED, bytes(8))
    if not isinstance(request, m.CertificateInstallationReq):
        return _refusal(m.ResponseCode.FAILED, getattr(getattr(request, "header", None), "session_id", bytes(8)))
    session_id = request.header.session_id
    oem = request.oem_provisioning_certificate_chain
    chain = [oem.certificate, *(oem.sub_certificates.certificate if oem.sub_certificates else [])]
    verdict = validate_chain(chain[0], chain[1:], purpose="oem", store=[pki.oem_root], at=at)
    if not verdict.valid:
        return _refusal(m.ResponseCode.WARNING_CertificateValidationError, session_id)
    if not xmldsig.verify_message(request).valid:
        return _refusal(m.ResponseCode.FAILED_SignatureError, session_id)
    try:
        recipient = x509.load_der_x509_certificate(chain[0]).public_key()
        dh_public, sealed = rig_encrypt_contract_key(pki.key("contract_leaf"), recipient)  # type: ignore[arg-type]
    except ValueError:
        return _refusal(m.ResponseCode.WARNING_NoCertificateAvailable, session_id)
    leaf, sub_cas = pki.chain("contract")
    cps_leaf, cps_subs = pki.chain("cps")
    response = m.CertificateInstallationRes(
        header=m.MessageHeader(session_id=session_id, time_stamp=int(at.timestamp())),
        response_code=m.ResponseCode.OK, evse_processing=m.Processing.Finished,
        cps_certificate_chain=m.CertificateChain(certificate=_der(cps_leaf),
                                                 sub_certificates=m.SubCertificates(certificate=[_der(c) for c in cps_subs])),
        signed_installation_data=m.SignedInstallationData(
            id="ID1",
            contract_certificate_chain=m.ContractCertificateChain(
                certificate=_der(leaf), sub_certificates=m.SubCertificates(certificate=[_der(c) for c in sub_cas])),
            ecdh_curve=m.EcdhCurve.SECP521, dh_public_key=dh_public, secp521_encrypted_private_key=sealed,
        ),
        remaining_contract_certificate_chains=0,
    )
    return exi.encode("iso20-common", xmldsig.sign_message(response, pki.key("cps_leaf")))
