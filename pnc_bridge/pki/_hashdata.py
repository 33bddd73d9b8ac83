"""OCPP certificate hash data (``CertificateHashDataType``, ``OCSPRequestDataType``).

Rules of this module (OCPP 2.0.1 Part 2, CertificateHashDataType, and the way the
OCPP ecosystem reads it):

- ``hashAlgorithm`` is ``SHA256``;
- ``issuerNameHash`` is the hash of the DER encoding of the certificate's *issuer* name,
  ``issuerKeyHash`` the hash of the issuer's public key (the value of the
  subjectPublicKey BIT STRING, without tag and length) - the CertID of RFC 6960, which
  ``cryptography``'s OCSP request builder computes for us;
- both hashes are lower-case hex; ``serialNumber`` is the serial in lower-case hex
  without leading zeroes;
- ``responderURL`` (only in ``OCSPRequestDataType``) is the certificate's OCSP responder
  from its authorityInfoAccess, unless given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp


@dataclass(frozen=True)
class CertificateHashData:
    hash_algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str
    responder_url: str | None = None

    def as_ocpp(self) -> dict[str, str]:
        """The OCPP JSON object (``responderURL`` only when known)."""
        data = {
            "hashAlgorithm": self.hash_algorithm,
            "issuerNameHash": self.issuer_name_hash,
            "issuerKeyHash": self.issuer_key_hash,
            "serialNumber": self.serial_number,
        }
        if self.responder_url is not None:
            data["responderURL"] = self.responder_url
        return data


def ocsp_responder_url(cert: x509.Certificate) -> str | None:
    """The first OCSP responder URL in the certificate's authorityInfoAccess, if any."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return None
    for description in aia:
        if description.access_method == x509.AuthorityInformationAccessOID.OCSP and isinstance(
            description.access_location, x509.UniformResourceIdentifier
        ):
            return description.access_location.value
    return None


def certificate_hash_data(
    cert: x509.Certificate, issuer_cert: x509.Certificate, responder_url: str | None = None
) -> CertificateHashData:
    """Hash data of ``cert``, issued by ``issuer_cert`` (the certificate itself for a root).

    Raises ``ValueError`` if ``issuer_cert``'s subject is not ``cert``'s issuer.
    """
    if issuer_cert.subject != cert.issuer:
        raise ValueError(
            f"{issuer_cert.subject.rfc4514_string()} is not the issuer of "
            f"{cert.subject.rfc4514_string()} (issuer {cert.issuer.rfc4514_string()})"
        )
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer_cert, hashes.SHA256()).build()
    return CertificateHashData(
        hash_algorithm="SHA256",
        issuer_name_hash=request.issuer_name_hash.hex(),
        issuer_key_hash=request.issuer_key_hash.hex(),
        serial_number=format(cert.serial_number, "x"),
        responder_url=responder_url if responder_url is not None else ocsp_responder_url(cert),
    )


def chain_hash_data(chain: Sequence[x509.Certificate]) -> list[CertificateHashData]:
    """Hash data of every certificate of ``chain`` (leaf first, each issued by the next;
    the last one is taken as self-issued), e.g. for ``iso15118CertificateHashData`` of an
    OCPP ``AuthorizeRequest``."""
    out = []
    for i, cert in enumerate(chain):
        issuer = chain[i + 1] if i + 1 < len(chain) else cert
        out.append(certificate_hash_data(cert, issuer))
    return out
