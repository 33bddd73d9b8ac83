"""CSR for OCPP SignCertificate, and installing the chain that CertificateSigned returns.

Rules of this module:

- The key of a CSR is stored in the trust store as the slot's *pending* key the moment
  the CSR is made, so a restart between SignCertificate and CertificateSigned loses
  nothing. The certificate in use stays in place until the new one is installed.
- A returned chain is installed only if its leaf carries the pending key (or the key in
  use, for a re-issue) and it validates for the slot's purpose against the store; the
  answer is OCPP's ``CertificateSignedStatusEnumType`` (``Accepted``/``Rejected``) with
  a reason for the security log.
- Subject of the CSR: CN, O and C from the device model (``ISO15118Ctrlr.SeccId``,
  ``ISO15118Ctrlr.OrganizationName``, ``ISO15118Ctrlr.CountryName`` for the V2G
  certificate; the charging station's identity and ``SecurityCtrlr.OrganizationName``
  for the charging-station certificate); the V2G certificate also carries DC=CPO, as
  the SECC certificate profile has it.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from pnc_bridge.pki._certio import PkiInputError, load_certificates, public_key_der
from pnc_bridge.pki._profiles import Purpose, Variant, new_key, signature_hash
from pnc_bridge.pki._store import LeafSlot, TrustStore
from pnc_bridge.pki._validate import Verdict, validate_chain

#: OCPP SignCertificateRequest.csr maxLength.
CSR_MAX_LENGTH = 5500


class CertificateSigningUse(StrEnum):
    """OCPP ``CertificateSigningUseEnumType``."""

    ChargingStationCertificate = "ChargingStationCertificate"
    V2GCertificate = "V2GCertificate"
    #: OCPP 2.1: the ISO 15118-20 SECC certificate (secp521r1 / Ed448, TLS 1.3), slot secc20
    V2G20Certificate = "V2G20Certificate"


SLOT: dict[CertificateSigningUse, LeafSlot] = {
    CertificateSigningUse.ChargingStationCertificate: LeafSlot.CHARGING_STATION,
    CertificateSigningUse.V2GCertificate: LeafSlot.SECC,
    CertificateSigningUse.V2G20Certificate: LeafSlot.SECC20,
}
PURPOSE: dict[LeafSlot, Purpose] = {
    LeafSlot.SECC: Purpose.SECC,
    LeafSlot.SECC20: Purpose.SECC,
    LeafSlot.CHARGING_STATION: Purpose.CHARGING_STATION,
}


class CsrError(ValueError):
    """The CSR cannot be made from what was given (e.g. an empty common name)."""


def create_csr(
    store: TrustStore,
    use: CertificateSigningUse | str,
    *,
    common_name: str,
    organization: str,
    country: str | None = None,
    variant: Variant | str = Variant.ISO2,
) -> str:
    """Make a new key and a PEM CSR for ``use``; the key becomes the slot's pending key.

    ``variant`` picks the key type of a V2G certificate (``iso2``: secp256r1, ``iso20``:
    secp521r1, ``iso20-ed448``); a V2G20Certificate is never secp256r1 (``iso2`` means
    ``iso20`` there); a charging-station certificate always gets secp256r1.
    Returns the PEM text for ``SignCertificateRequest.csr``.
    """
    use = CertificateSigningUse(use)
    if not common_name.strip():
        raise CsrError("commonName is empty (ISO15118Ctrlr.SeccId / the charging station identity)")
    if not organization.strip():
        raise CsrError("organizationName is empty")
    if country is not None and (len(country) != 2 or not country.isalpha()):
        raise CsrError(f"countryName must be 2 letters (ISO 3166-1), got {country!r}")
    v2g = use in (CertificateSigningUse.V2GCertificate, CertificateSigningUse.V2G20Certificate)
    if use is CertificateSigningUse.V2G20Certificate and Variant(variant) is Variant.ISO2:
        variant = Variant.ISO20
    key = new_key(Variant(variant) if v2g else Variant.OCPP)
    attributes = [
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
    ]
    if country:
        attributes.append(x509.NameAttribute(NameOID.COUNTRY_NAME, country.upper()))
    if v2g:
        attributes.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "CPO"))
    builder = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name(attributes))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=v2g and Variant(variant) is Variant.ISO2,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    csr = builder.sign(key, signature_hash(key))  # type: ignore[arg-type]
    pem = csr.public_bytes(serialization.Encoding.PEM).decode("ascii")
    if len(pem) > CSR_MAX_LENGTH:
        raise CsrError(f"CSR is {len(pem)} characters, OCPP allows {CSR_MAX_LENGTH}")
    store.set_pending_key(SLOT[use], key)
    return pem


class CertificateSignedStatus(StrEnum):
    """OCPP ``CertificateSignedStatusEnumType``."""

    Accepted = "Accepted"
    Rejected = "Rejected"


@dataclass(frozen=True)
class InstallResult:
    status: CertificateSignedStatus
    reason: str
    verdict: Verdict | None = field(default=None, repr=False)

    @property
    def accepted(self) -> bool:
        return self.status is CertificateSignedStatus.Accepted


def install_signed(
    store: TrustStore,
    use: CertificateSigningUse | str,
    certificate_chain: str | bytes,
    *,
    at: _dt.datetime,
) -> InstallResult:
    """Check and install the chain of a CertificateSignedRequest (PEM, leaf first).

    A root at the end of the chain is accepted and left out. Returns ``Rejected`` with the
    reason when the chain is malformed, its leaf does not carry the pending (or current)
    key, or it does not validate at ``at``; the certificate in use is then untouched.
    """
    use = CertificateSigningUse(use)
    slot = SLOT[use]
    data = certificate_chain.encode() if isinstance(certificate_chain, str) else certificate_chain
    try:
        certs = load_certificates(data, source="certificateChain")
    except PkiInputError as exc:
        return InstallResult(CertificateSignedStatus.Rejected, str(exc))
    if len(certs) > 1 and certs[-1].subject == certs[-1].issuer:
        certs = certs[:-1]
    leaf, sub_cas = certs[0], certs[1:]
    snapshot = store.snapshot()
    leaf_key = public_key_der(leaf.public_key())
    candidates = [snapshot.pending_keys.get(slot)]
    if (current := snapshot.leaves.get(slot)) is not None:
        candidates.append(current.key)
    key = next((k for k in candidates if k is not None and public_key_der(k.public_key()) == leaf_key), None)
    if key is None:
        return InstallResult(
            CertificateSignedStatus.Rejected,
            "the certificate's public key matches neither the key of the last CSR nor the key in use",
        )
    verdict = validate_chain(leaf, sub_cas, purpose=PURPOSE[slot], store=store, at=at)
    if not verdict.valid:
        return InstallResult(CertificateSignedStatus.Rejected, verdict.reason, verdict)
    store.install_leaf(slot, [leaf, *sub_cas], key)
    return InstallResult(CertificateSignedStatus.Accepted, verdict.reason, verdict)
