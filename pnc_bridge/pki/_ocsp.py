"""OCSP: read a DER OCSP response for one certificate, and build responses for tests.

Rules of this module:

- ``cryptography`` parses OCSP responses and computes CertIDs but does not verify a
  response's signature or freshness; :func:`check_ocsp_response` does both (RFC 6960
  4.2.2.2: signed by the issuer itself or by a responder certificate that the issuer
  issued with the id-kp-OCSPSigning EKU; ``thisUpdate <= at <= nextUpdate``).
- A response that cannot be trusted raises :class:`OcspError`; it never yields "good"
  or "revoked". The validator then treats the certificate as having no response at hand.
- Time is passed in (``at``, UTC).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from pnc_bridge.pki._profiles import signature_hash


class OcspStatus(StrEnum):
    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class OcspError(ValueError):
    """The OCSP response is malformed, not signed by an authorised responder, or stale."""


@dataclass(frozen=True)
class OcspResult:
    status: OcspStatus
    this_update: _dt.datetime
    next_update: _dt.datetime | None
    revocation_time: _dt.datetime | None = None
    revocation_reason: str | None = None


_STATUS = {
    ocsp.OCSPCertStatus.GOOD: OcspStatus.GOOD,
    ocsp.OCSPCertStatus.REVOKED: OcspStatus.REVOKED,
    ocsp.OCSPCertStatus.UNKNOWN: OcspStatus.UNKNOWN,
}


def _cert_id(cert: x509.Certificate, issuer: x509.Certificate, algorithm: hashes.HashAlgorithm):
    # The CertID hashes as RFC 6960 defines them, computed by cryptography's request builder.
    return ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, algorithm).build()


def _verify_signature(public_key: object, signature: bytes, data: bytes, algorithm) -> None:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(algorithm))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
    elif isinstance(public_key, (ed448.Ed448PublicKey, ed25519.Ed25519PublicKey)):
        public_key.verify(signature, data)
    else:
        raise OcspError(f"unsupported responder key type {type(public_key).__name__}")


def _responder_key(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: _dt.datetime):
    issuer_key_sha1 = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest  # type: ignore[arg-type]
    if response.responder_name == issuer.subject or response.responder_key_hash == issuer_key_sha1:
        return issuer.public_key()
    for candidate in response.certificates:
        named = (
            response.responder_name == candidate.subject
            or response.responder_key_hash
            == x509.SubjectKeyIdentifier.from_public_key(candidate.public_key()).digest  # type: ignore[arg-type]
        )
        if not named:
            continue
        try:
            candidate.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise OcspError("the delegated OCSP responder certificate is not issued by the CA") from None
        try:
            eku = candidate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise OcspError("the delegated OCSP responder certificate lacks id-kp-OCSPSigning")
        if not (candidate.not_valid_before_utc <= at <= candidate.not_valid_after_utc):
            raise OcspError("the delegated OCSP responder certificate is not valid at the validation time")
        return candidate.public_key()
    raise OcspError("the OCSP response is signed by neither the CA nor a responder it authorised")


def check_ocsp_response(
    response_der: bytes, cert: x509.Certificate, issuer: x509.Certificate, *, at: _dt.datetime
) -> OcspResult | None:
    """Status of ``cert`` according to ``response_der``, or ``None`` if the response is
    about other certificates. Raises :class:`OcspError` if it is about ``cert`` but cannot
    be trusted (unsuccessful, bad signature, unauthorised responder, not current at ``at``).
    """
    try:
        response = ocsp.load_der_ocsp_response(response_der)
    except ValueError as exc:
        raise OcspError(f"malformed OCSP response ({exc})") from None
    if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise OcspError(f"OCSP responder answered {response.response_status.name}")
    match = None
    for single in response.responses:
        wanted = _cert_id(cert, issuer, single.hash_algorithm)
        if (
            single.serial_number == wanted.serial_number
            and single.issuer_key_hash == wanted.issuer_key_hash
            and single.issuer_name_hash == wanted.issuer_name_hash
        ):
            match = single
            break
    if match is None:
        return None
    key = _responder_key(response, issuer, at)
    try:
        _verify_signature(key, response.signature, response.tbs_response_bytes, response.signature_hash_algorithm)
    except InvalidSignature:
        raise OcspError("the OCSP response signature does not verify") from None
    this_update = match.this_update_utc
    next_update = match.next_update_utc
    if this_update > at:
        raise OcspError(f"the OCSP response is from the future (thisUpdate {this_update.isoformat()})")
    if next_update is not None and next_update < at:
        raise OcspError(f"the OCSP response is stale (nextUpdate {next_update.isoformat()})")
    reason = match.revocation_reason.name if match.revocation_reason is not None else None
    return OcspResult(
        _STATUS[match.certificate_status],
        this_update,
        next_update,
        match.revocation_time_utc,
        reason,
    )


def build_ocsp_response(
    cert: x509.Certificate,
    issuer: x509.Certificate,
    responder_key: CertificateIssuerPrivateKeyTypes,
    *,
    status: OcspStatus | str,
    this_update: _dt.datetime,
    next_update: _dt.datetime | None,
    revocation_time: _dt.datetime | None = None,
    responder_cert: x509.Certificate | None = None,
) -> bytes:
    """A signed DER OCSP response about ``cert`` (for tests and the HIL rig's CSMS).

    Signed by ``responder_key``: the issuer's key, or a delegated responder's key with its
    ``responder_cert`` included.
    """
    status = OcspStatus(status)
    cert_status = {
        OcspStatus.GOOD: ocsp.OCSPCertStatus.GOOD,
        OcspStatus.REVOKED: ocsp.OCSPCertStatus.REVOKED,
        OcspStatus.UNKNOWN: ocsp.OCSPCertStatus.UNKNOWN,
    }[status]
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=cert,
        issuer=issuer,
        algorithm=hashes.SHA256(),
        cert_status=cert_status,
        this_update=this_update,
        next_update=next_update,
        revocation_time=(revocation_time or this_update) if status is OcspStatus.REVOKED else None,
        revocation_reason=x509.ReasonFlags.key_compromise if status is OcspStatus.REVOKED else None,
    )
    signer = responder_cert or issuer
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer)
    if responder_cert is not None:
        builder = builder.certificates([responder_cert])
    response = builder.sign(responder_key, signature_hash(responder_key))  # type: ignore[arg-type]
    return response.public_bytes(serialization.Encoding.DER)
