"""The XML-DSig algorithms each standard names, and which grammar encodes what.

Rules of this module:

- One table per standard (:data:`SUITES`). A URI that is not in the signing standard's
  table is an unknown algorithm for that standard, even if another standard knows it:
  an ISO 15118-2 message signed with ecdsa-sha512 is as wrong as one signed with RSA.
- The byte strings that are hashed and signed are EXI fragments ("canonical EXI"):
  each referenced element in the grammar of the message's own schema, ``SignedInfo``
  in the grammar of the XML-DSig schema alone (:attr:`Suite.signed_info_schema`).
- Where a URI comes from is said next to it. No public ISO 15118-20 capture carries a
  signature, so the -20 entries rest on the RFCs that define the URIs and on the
  public implementations named there; the -2 entries are also what every signed
  message in ../shared/exi-vectors carries (tests/xmldsig/test_vectors.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448

#: EXI canonicalization (W3C "Canonical EXI"): CanonicalizationMethod of SignedInfo and
#: the one Transform of every Reference, in both standards.
CANONICAL_EXI = "http://www.w3.org/TR/canonical-exi/"

#: RFC 4051 / RFC 9231 section 2.3.6 (ECDSA), the -2 signature method.
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
#: RFC 4051 / RFC 9231 section 2.3.6: the -20 ECDSA suite (secp521r1). Used for -20 by
#: OpenChargingCloud's ISO 15118-20 code (V2GSignature.ECDSA_SHA512) and by the public
#: libcbv2g-based -20 verifiers (``encode_iso20_xmldsigFragment`` + SHA-512).
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
#: RFC 9231 section 2.3.12 (pure EdDSA, RFC 8032 Ed448, empty context): the -20 Ed448
#: suite. Same URI in OpenChargingCloud's -20 stack (V2GSignature.EDDSA_ED448), which
#: also signs the SignedInfo fragment directly with pure Ed448. ``#eddsa-ed448ph`` is a
#: different (pre-hashed) algorithm and is not accepted.
EDDSA_ED448 = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed448"

#: XML Encryption 1.0 section 5.7.2: SHA-256 digest (-2; Josev security.py, RISE V2G,
#: and every captured -2 signature).
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
#: XML Encryption 1.0 section 5.7.3: SHA-512 digest, used by -20 for the references of
#: both suites (OpenChargingCloud V2GSignature.SHA512; libcbv2g-based -20 verifiers).
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"


class Standard(str, Enum):
    """The standard whose XML-DSig profile applies (chosen by the message schema)."""

    ISO15118_2 = "ISO 15118-2"
    ISO15118_20 = "ISO 15118-20"


class KeyType(str, Enum):
    SECP256R1 = "secp256r1"
    SECP521R1 = "secp521r1"
    ED448 = "Ed448"


@dataclass(frozen=True)
class SignatureMethod:
    """One SignatureMethod: the key it needs, the hash ECDSA uses (None for pure EdDSA)
    and the length of the raw SignatureValue (r || s for ECDSA, as ISO 15118 sends it)."""

    uri: str
    key: KeyType
    hash: type[hashes.HashAlgorithm] | None
    value_length: int


@dataclass(frozen=True)
class Suite:
    """What one standard allows in a Signature."""

    standard: Standard
    signature_methods: dict[str, SignatureMethod]
    digest_methods: dict[str, type[hashes.HashAlgorithm]]
    #: the DigestMethod a signer writes
    default_digest: str
    canonicalization: frozenset[str] = field(default=frozenset({CANONICAL_EXI}))
    transforms: frozenset[str] = field(default=frozenset({CANONICAL_EXI}))
    #: the EXI schema whose own fragment grammar encodes SignedInfo. For -2 this is what
    #: every captured signature verifies with; for -20 it is what Josev (security.py
    #: create_signature: ``to_exi(signed_info, Namespace.XML_DSIG)``, also for its -20
    #: states) and EVerest libcbv2g (``encode_iso20_xmldsigFragment``, a fragment of the
    #: XML-DSig schema alone, next to the -20 message-schema ``encode_iso20_exiFragment``)
    #: do. Encoding it in the -20 message schema's fragment grammar instead changes only
    #: the first event code (the element's position among all qnames of the schema set).
    signed_info_schema: str = "xmldsig"


_P256 = SignatureMethod(ECDSA_SHA256, KeyType.SECP256R1, hashes.SHA256, 64)
_P521 = SignatureMethod(ECDSA_SHA512, KeyType.SECP521R1, hashes.SHA512, 132)
_ED448 = SignatureMethod(EDDSA_ED448, KeyType.ED448, None, 114)

SUITES: dict[Standard, Suite] = {
    Standard.ISO15118_2: Suite(
        Standard.ISO15118_2,
        signature_methods={ECDSA_SHA256: _P256},
        digest_methods={SHA256: hashes.SHA256},
        default_digest=SHA256,
    ),
    Standard.ISO15118_20: Suite(
        Standard.ISO15118_20,
        signature_methods={ECDSA_SHA512: _P521, EDDSA_ED448: _ED448},
        digest_methods={SHA512: hashes.SHA512},
        default_digest=SHA512,
    ),
}

#: message schema -> standard. DIN SPEC 70121 has no Plug & Charge, but its header
#: declares the same xmldsig Signature as ISO 15118-2's; one that shows up is held to -2.
STANDARD_OF_SCHEMA: dict[str, Standard] = {
    "din": Standard.ISO15118_2,
    "iso2": Standard.ISO15118_2,
    "iso20-common": Standard.ISO15118_20,
    "iso20-ac": Standard.ISO15118_20,
    "iso20-dc": Standard.ISO15118_20,
    "iso20-acdp": Standard.ISO15118_20,
    "iso20-wpt": Standard.ISO15118_20,
}


def suite_for(schema: str) -> Suite:
    """The suite of a message schema; ``ValueError`` for a schema without signatures."""
    try:
        return SUITES[STANDARD_OF_SCHEMA[schema]]
    except KeyError:
        raise ValueError(
            f"schema {schema!r} carries no message signatures; one of: {', '.join(STANDARD_OF_SCHEMA)}"
        ) from None


def key_type(key: object) -> KeyType | None:
    """The ISO 15118 key type of a public or private key, None for any other key."""
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return {"secp256r1": KeyType.SECP256R1, "secp521r1": KeyType.SECP521R1}.get(key.curve.name)
    if isinstance(key, (ed448.Ed448PublicKey, ed448.Ed448PrivateKey)):
        return KeyType.ED448
    return None


def describe_key(key: object) -> str:
    kt = key_type(key)
    if kt is not None:
        return kt.value
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        return key.curve.name
    return type(key).__name__.lstrip("_")
