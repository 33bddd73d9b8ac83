"""Certificate profiles: what each certificate of an ISO 15118 / OCPP PKI must look like.

Rules of this module:

- Pure data plus small pure functions; no I/O. The test-PKI generator issues from these
  templates and the validator checks against the same tables, so a generated chain and the
  check it must pass cannot drift apart (one place per fact).
- ``pki/profiles.md`` describes the same profiles in prose for PKI admins.
- Algorithms: ISO 15118-2 uses secp256r1 with ecdsa-with-SHA256 for every certificate.
  ISO 15118-20 uses either secp521r1 with ecdsa-with-SHA512 or Ed448 (PureEdDSA).
  The OCPP certificates (CSMS server, charging station) follow the OCPP security profiles,
  where RSA >= 2048 and ECDSA are both in use; for those the web-PKI algorithm rules of
  ``cryptography``'s verifier apply unchanged.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


class Variant(StrEnum):
    """Which PKI profile a chain belongs to."""

    ISO2 = "iso2"  # ISO 15118-2: secp256r1 / ecdsa-with-SHA256
    ISO20 = "iso20"  # ISO 15118-20, ECDSA: secp521r1 / ecdsa-with-SHA512
    ISO20_ED448 = "iso20-ed448"  # ISO 15118-20, EdDSA: Ed448
    OCPP = "ocpp"  # OCPP security profiles 2-3 (CSMS server, charging-station client)


class Purpose(StrEnum):
    """What a chain is validated for; decides the trust anchors and the leaf's profile."""

    CONTRACT = "contract"  # contract certificate (PaymentDetailsReq, Authorize)
    SECC = "secc"  # SECC certificate (TLS server of the charger towards the EV)
    OEM = "oem"  # OEM provisioning certificate (CertificateInstallationReq)
    CPS = "cps"  # certificate provisioning service (signs CertificateInstallationRes)
    CSMS = "csms"  # CSMS TLS server certificate (OCPP security profiles 2 and 3)
    CHARGING_STATION = "charging-station"  # charging-station TLS client certificate (profile 3)


class RootKind(StrEnum):
    """Kinds of trust anchors the trust store holds, named after OCPP's certificate uses."""

    V2G = "v2g"  # OCPP V2GRootCertificate
    MO = "mo"  # OCPP MORootCertificate
    OEM = "oem"  # ISO 15118 OEM root (OCPP 2.1 OEMRootCertificate)
    CSMS = "csms"  # OCPP CSMSRootCertificate


#: OCPP ``GetCertificateIdUseEnumType`` / ``InstallCertificateUseEnumType`` name of each kind.
OCPP_CERTIFICATE_USE: dict[RootKind, str] = {
    RootKind.V2G: "V2GRootCertificate",
    RootKind.MO: "MORootCertificate",
    RootKind.OEM: "OEMRootCertificate",
    RootKind.CSMS: "CSMSRootCertificate",
}

#: Which roots anchor which purpose. A contract chain may end in an MO root or, where the
#: MO is part of the V2G PKI, in a V2G root; the CPS chain always ends in a V2G root.
ANCHORS: dict[Purpose, tuple[RootKind, ...]] = {
    Purpose.CONTRACT: (RootKind.MO, RootKind.V2G),
    Purpose.SECC: (RootKind.V2G,),
    Purpose.CPS: (RootKind.V2G,),
    Purpose.OEM: (RootKind.OEM,),
    Purpose.CSMS: (RootKind.CSMS,),
    Purpose.CHARGING_STATION: (RootKind.CSMS,),
}

#: ISO 15118-2 and -20 allow at most two sub-CAs between a leaf and its root.
MAX_SUB_CAS = 2

ISO_VARIANTS = frozenset({Variant.ISO2, Variant.ISO20, Variant.ISO20_ED448})

#: Key-usage bits by their ``cryptography`` attribute name.
KEY_USAGE_BITS = (
    "digital_signature",
    "content_commitment",  # nonRepudiation
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
)

_CA_USAGE = frozenset({"key_cert_sign", "crl_sign"})


@dataclass(frozen=True)
class LeafRule:
    """What a leaf of a given purpose must carry on top of the chain-wide rules."""

    key_usage: frozenset[str]  # bits that must be set
    extended_key_usage: x509.ObjectIdentifier | None = None  # required if EKU present
    emaid_in_cn: bool = False  # the subject CN is the EMAID (ISO 15118-2 Annex H)


LEAF_RULES: dict[Purpose, LeafRule] = {
    # digitalSignature signs AuthorizationReq / MeteringReceiptReq.
    Purpose.CONTRACT: LeafRule(frozenset({"digital_signature"}), emaid_in_cn=True),
    # keyAgreement: the ISO 15118-2 TLS suites include static ECDH.
    Purpose.SECC: LeafRule(frozenset({"digital_signature"})),
    # keyAgreement: the CPS encrypts the contract key by ECDH with this key.
    Purpose.OEM: LeafRule(frozenset({"digital_signature", "key_agreement"})),
    Purpose.CPS: LeafRule(frozenset({"digital_signature"})),
    Purpose.CSMS: LeafRule(frozenset({"digital_signature"}), ExtendedKeyUsageOID.SERVER_AUTH),
    Purpose.CHARGING_STATION: LeafRule(
        frozenset({"digital_signature"}), ExtendedKeyUsageOID.CLIENT_AUTH
    ),
}
#: ISO 15118-2 SECC certificates also need keyAgreement (static-ECDH TLS suites); -20 uses
#: TLS 1.3 only, where the certificate key signs and never agrees.
ISO2_SECC_KEY_USAGE = frozenset({"digital_signature", "key_agreement"})


# --------------------------------------------------------------------------- #
# Algorithms                                                                   #
# --------------------------------------------------------------------------- #


def key_algorithm(public_key: object) -> str:
    """A short, stable name for a public key's algorithm: ``secp256r1``, ``ed448``, ``rsa2048``."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.curve.name
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ed448"
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"rsa{public_key.key_size}"
    return type(public_key).__name__


#: (key algorithm, signature algorithm OID) pairs each ISO variant allows on every
#: certificate; the signature OID is the one the certificate is signed *with*, which
#: follows from its issuer's key.
_ECDSA_SHA256 = x509.SignatureAlgorithmOID.ECDSA_WITH_SHA256
_ECDSA_SHA512 = x509.SignatureAlgorithmOID.ECDSA_WITH_SHA512
_ED448 = x509.SignatureAlgorithmOID.ED448

ALGORITHMS: dict[Variant, dict[str, x509.ObjectIdentifier]] = {
    Variant.ISO2: {"secp256r1": _ECDSA_SHA256},
    Variant.ISO20: {"secp521r1": _ECDSA_SHA512},
    Variant.ISO20_ED448: {"ed448": _ED448},
}

ALGORITHM_TEXT: dict[Variant, str] = {
    Variant.ISO2: "ISO 15118-2 requires secp256r1 keys and ecdsa-with-SHA256 signatures",
    Variant.ISO20: "ISO 15118-20 (ECDSA) requires secp521r1 keys and ecdsa-with-SHA512 signatures",
    Variant.ISO20_ED448: "ISO 15118-20 (EdDSA) requires Ed448 keys and Ed448 signatures",
}


def variant_of_key(public_key: object) -> Variant | None:
    """The ISO variant a leaf key belongs to, or ``None`` when no ISO profile allows it."""
    name = key_algorithm(public_key)
    for variant, allowed in ALGORITHMS.items():
        if name in allowed:
            return variant
    return None


_KEY_FACTORIES: dict[Variant, Callable[[], CertificateIssuerPrivateKeyTypes]] = {
    Variant.ISO2: lambda: ec.generate_private_key(ec.SECP256R1()),
    Variant.ISO20: lambda: ec.generate_private_key(ec.SECP521R1()),
    Variant.ISO20_ED448: ed448.Ed448PrivateKey.generate,
    Variant.OCPP: lambda: ec.generate_private_key(ec.SECP256R1()),
}


def new_key(variant: Variant | str) -> CertificateIssuerPrivateKeyTypes:
    """A fresh private key of the type ``variant`` uses for every certificate."""
    return _KEY_FACTORIES[Variant(variant)]()


def signature_hash(key: CertificateIssuerPrivateKeyTypes) -> hashes.HashAlgorithm | None:
    """The hash that goes with a signing key: SHA-256/384/512 by curve, none for EdDSA."""
    if isinstance(key, (ed448.Ed448PrivateKey, ed25519.Ed25519PrivateKey)):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {384: hashes.SHA384(), 521: hashes.SHA512()}.get(key.curve.key_size, hashes.SHA256())
    return hashes.SHA256()



# --------------------------------------------------------------------------- #
# Templates the test PKI issues from                                           #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Template:
    """One certificate to issue. ``dataclasses.replace`` gives the mutations tests need."""

    common_name: str
    domain_component: str | None  # DC attribute (V2G, CPO, MO, OEM, CPS); None for OCPP
    ca: bool
    path_length: int | None
    key_usage: frozenset[str]
    validity: _dt.timedelta
    organization: str = "pnc-bridge test PKI"
    country: str = "DE"
    ocsp_url: str | None = None
    extended_key_usage: tuple[x509.ObjectIdentifier, ...] = ()
    dns_names: tuple[str, ...] = ()
    # Criticality of basicConstraints and keyUsage: both critical in ISO 15118 profiles.
    critical: bool = True

    def subject(self) -> x509.Name:
        attributes = [
            x509.NameAttribute(NameOID.COMMON_NAME, self.common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
            x509.NameAttribute(NameOID.COUNTRY_NAME, self.country),
        ]
        if self.domain_component is not None:
            attributes.append(x509.NameAttribute(NameOID.DOMAIN_COMPONENT, self.domain_component))
        return x509.Name(attributes)

    def replace(self, **changes: object) -> Template:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _days(n: int) -> _dt.timedelta:
    return _dt.timedelta(days=n)


_LEAF_SIG = frozenset({"digital_signature"})
_LEAF_SIG_KA = frozenset({"digital_signature", "key_agreement"})

#: The test hierarchy: name -> (template, issuer name or None for self-signed roots).
#: Validity periods are the test PKI's choice, in the order of magnitude the ISO 15118
#: ecosystem uses (long roots, short SECC and CPS leaves); see pki/profiles.md.
HIERARCHY: dict[str, tuple[Template, str | None]] = {
    "v2g_root": (Template("V2G Root CA", "V2G", True, None, _CA_USAGE, _days(3650)), None),
    "cpo_sub_ca1": (Template("CPO Sub-CA 1", "V2G", True, 1, _CA_USAGE, _days(1460)), "v2g_root"),
    "cpo_sub_ca2": (Template("CPO Sub-CA 2", "V2G", True, 0, _CA_USAGE, _days(365)), "cpo_sub_ca1"),
    "secc_leaf": (Template("SECC", "CPO", False, None, _LEAF_SIG_KA, _days(60)), "cpo_sub_ca2"),
    "mo_root": (Template("MO Root CA", "MO", True, None, _CA_USAGE, _days(3650)), None),
    "mo_sub_ca1": (Template("MO Sub-CA 1", "MO", True, 1, _CA_USAGE, _days(1460)), "mo_root"),
    "mo_sub_ca2": (Template("MO Sub-CA 2", "MO", True, 0, _CA_USAGE, _days(1460)), "mo_sub_ca1"),
    "contract_leaf": (
        Template(
            "EMAID",  # replaced by the generator's EMAID
            "MO",
            False,
            None,
            frozenset({"digital_signature", "content_commitment", "key_agreement"}),
            _days(730),
        ),
        "mo_sub_ca2",
    ),
    "oem_root": (Template("OEM Root CA", "OEM", True, None, _CA_USAGE, _days(3650)), None),
    "oem_sub_ca1": (Template("OEM Sub-CA 1", "OEM", True, 1, _CA_USAGE, _days(1460)), "oem_root"),
    "oem_sub_ca2": (Template("OEM Sub-CA 2", "OEM", True, 0, _CA_USAGE, _days(1460)), "oem_sub_ca1"),
    "oem_prov_leaf": (
        Template("PCID", "OEM", False, None, _LEAF_SIG_KA, _days(1460)),  # CN replaced by the PCID
        "oem_sub_ca2",
    ),
    "cps_sub_ca1": (Template("CPS Sub-CA 1", "CPS", True, 1, _CA_USAGE, _days(1460)), "v2g_root"),
    "cps_sub_ca2": (Template("CPS Sub-CA 2", "CPS", True, 0, _CA_USAGE, _days(730)), "cps_sub_ca1"),
    "cps_leaf": (Template("CPS", "CPS", False, None, _LEAF_SIG, _days(90)), "cps_sub_ca2"),
    "csms_root": (Template("CSMS Root CA", None, True, None, _CA_USAGE, _days(3650)), None),
    "csms_server": (
        Template(
            "localhost",
            None,
            False,
            None,
            _LEAF_SIG,
            _days(365),
            extended_key_usage=(ExtendedKeyUsageOID.SERVER_AUTH,),
            dns_names=("localhost",),
        ),
        "csms_root",
    ),
    "charging_station": (
        Template(
            "CS0001",  # OCPP: the charging station's identity
            None,
            False,
            None,
            _LEAF_SIG,
            _days(365),
            extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,),
        ),
        "csms_root",
    ),
}

#: Chains the generator writes, leaf first (as ISO 15118 and TLS send them), no root.
CHAINS: dict[Purpose, tuple[str, ...]] = {
    Purpose.SECC: ("secc_leaf", "cpo_sub_ca2", "cpo_sub_ca1"),
    Purpose.CONTRACT: ("contract_leaf", "mo_sub_ca2", "mo_sub_ca1"),
    Purpose.OEM: ("oem_prov_leaf", "oem_sub_ca2", "oem_sub_ca1"),
    Purpose.CPS: ("cps_leaf", "cps_sub_ca2", "cps_sub_ca1"),
    Purpose.CSMS: ("csms_server",),
    Purpose.CHARGING_STATION: ("charging_station",),
}

#: The root each chain ends in, and the store kind it belongs to.
CHAIN_ROOT: dict[Purpose, tuple[str, RootKind]] = {
    Purpose.SECC: ("v2g_root", RootKind.V2G),
    Purpose.CONTRACT: ("mo_root", RootKind.MO),
    Purpose.OEM: ("oem_root", RootKind.OEM),
    Purpose.CPS: ("v2g_root", RootKind.V2G),
    Purpose.CSMS: ("csms_root", RootKind.CSMS),
    Purpose.CHARGING_STATION: ("csms_root", RootKind.CSMS),
}

#: Certificates of the OCPP side; always issued with the OCPP key type (P-256).
OCPP_NAMES = frozenset({"csms_root", "csms_server", "charging_station"})
