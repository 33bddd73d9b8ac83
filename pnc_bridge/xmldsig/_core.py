"""Sign and verify the XML-DSig ``Signature`` in an ISO 15118 message header.

Rules of this module:

- Pure functions over typed messages; no I/O, no clock. Keys and certificates come in
  as ``cryptography`` objects (or DER bytes for certificates).
- :func:`verify` never raises on anything a peer can send; every outcome is a verdict
  value (``_verdict``). It raises ``ValueError``/``TypeError`` only on misuse by our own
  code (a schema without signatures, an object that is not a message).
- Order of the checks, and why:
    1. a Signature is present;
    2. every algorithm URI is one the message's standard names (``_algorithms.SUITES``);
    3. the signer's key can make that signature, and the SignatureValue has its length;
    4. the signature over the EXI fragment of SignedInfo verifies. This authenticates
       SignedInfo before anything in it is used, so a change to SignedInfo is reported
       as ``BadSignature`` and a change to a signed element as ``DigestMismatch``;
    5. each Reference names one element of the message (``MissingReference`` when none
       carries the Id) and its digest over the element's EXI fragment (in the message
       schema's grammar) equals DigestValue;
    6. the signature covers the elements the caller requires (``UnsignedPart``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from pnc_bridge import exi
from pnc_bridge.messages import xmldsig as ds
from pnc_bridge.xmldsig._algorithms import (
    CANONICAL_EXI,
    ECDSA_SHA256,
    ECDSA_SHA512,
    EDDSA_ED448,
    KeyType,
    SignatureMethod,
    Suite,
    describe_key,
    key_type,
    suite_for,
)
from pnc_bridge.xmldsig._verdict import (
    BadSignature,
    CertificateInvalid,
    DigestMismatch,
    MalformedSignature,
    MissingReference,
    NoSignature,
    UnknownAlgorithm,
    UnsignedPart,
    Valid,
    Verdict,
)

#: SignatureMethod a signer uses for each key type
_METHOD_FOR_KEY = {KeyType.SECP256R1: ECDSA_SHA256, KeyType.SECP521R1: ECDSA_SHA512, KeyType.ED448: EDDSA_ED448}


# --------------------------------------------------------------------------- #
# Finding the signed parts                                                     #
# --------------------------------------------------------------------------- #


def _element_name(field_xml: tuple[str, str], value_type, item) -> tuple[str, str]:
    """(namespace, local name) of the element a field value is written as; for a
    substitution group, the member whose class the value has."""
    if isinstance(value_type, tuple):
        for qname, cls in value_type:
            if type(item) is cls:
                return qname
    return field_xml


def iter_elements(message) -> Iterator[tuple[tuple[str, str], object]]:
    """``(element qname, part)`` for every element of ``message`` whose type has an ``Id``
    attribute (set or not), outside the header's Signature, in document order."""

    def walk(obj, qname):
        fields = getattr(type(obj), "_exi_fields", None)
        if fields is None or isinstance(obj, ds.Signature):
            return
        if qname is not None and any(f[1] == "Id" and f[3] == "attr" for f in fields):
            yield qname, obj
        for name, xml, ns, kind, _is_list, vt, *_ in fields:
            if kind != "elem":
                continue
            value = getattr(obj, name)
            for item in value if isinstance(value, list) else (value,):
                if item is not None and hasattr(type(item), "_exi_fields"):
                    yield from walk(item, _element_name((ns, xml), vt, item))

    yield from walk(message, None)


def iter_identified(message) -> Iterator[tuple[str, tuple[str, str], object]]:
    """``(Id, element qname, part)`` for every element of ``message`` that carries an
    ``Id``, outside the header's Signature, in document order."""
    for qname, part in iter_elements(message):
        ident = getattr(part, "id", None)
        if isinstance(ident, str):
            yield ident, qname, part


def header_of(message):
    """The MessageHeader of an ISO 15118-2/DIN ``V2G_Message`` or an ISO 15118-20 message."""
    header = getattr(message, "header", None)
    if header is None or not hasattr(header, "signature"):
        raise TypeError(f"{type(message).__name__} is not an ISO 15118 message with a header")
    return header


def message_name(message) -> str:
    """The message's name as in the standard: the body element of a -2/DIN
    ``V2G_Message``, the message class of -20."""
    body = getattr(message, "body", None)
    if body is not None and hasattr(body, "body_element"):
        return type(body.body_element).__name__ if body.body_element is not None else "Body"
    return type(message).__name__


def _fragment(schema: str, qname: tuple[str, str], part) -> bytes:
    return exi.encode_fragment(schema, part, element=qname)


def digest(schema: str, qname: tuple[str, str], part, algorithm: type[hashes.HashAlgorithm]) -> bytes:
    """The DigestValue of one signed element: ``algorithm`` over its EXI fragment."""
    h = hashes.Hash(algorithm())
    h.update(_fragment(schema, qname, part))
    return h.finalize()


def signed_info_bytes(suite: Suite, signed_info: ds.SignedInfo) -> bytes:
    """The octets that are signed: SignedInfo as an EXI fragment of its own schema."""
    return exi.encode_fragment(suite.signed_info_schema, signed_info)


# --------------------------------------------------------------------------- #
# Signing                                                                      #
# --------------------------------------------------------------------------- #


def sign(message, schema: str, ids: Sequence[str], key, *, digest_method: str | None = None) -> ds.Signature:
    """A ``Signature`` over the parts of ``message`` whose ``Id`` is in ``ids`` (in that
    order), made with ``key`` (ISO 15118-2: a secp256r1 key; -20: secp521r1 or Ed448).

    The message is not changed; put the result into ``message.header.signature`` (or
    use :func:`with_signature`). Raises ``ValueError`` when an Id is missing or the key
    is not one the schema's standard signs with, ``ExiEncodeError`` when a part does not
    conform to its schema.
    """
    suite = suite_for(schema)
    kt = key_type(key)
    method_uri = _METHOD_FOR_KEY.get(kt) if kt else None
    if method_uri not in suite.signature_methods or not hasattr(key, "sign"):
        raise ValueError(f"{suite.standard.value} does not sign with a {describe_key(key)} key")
    method = suite.signature_methods[method_uri]
    digest_uri = digest_method or suite.default_digest
    if digest_uri not in suite.digest_methods:
        raise ValueError(f"{suite.standard.value} does not name the digest method {digest_uri}")
    parts: dict[str, list[tuple[tuple[str, str], object]]] = {}
    for ident, qname, part in iter_identified(message):
        parts.setdefault(ident, []).append((qname, part))
    references = []
    for ident in ids:
        found = parts.get(ident, [])
        if len(found) != 1:
            raise ValueError(f"{len(found)} elements of the message carry Id {ident!r}; expected one")
        qname, part = found[0]
        references.append(
            ds.Reference(
                uri="#" + ident,
                transforms=ds.Transforms(transform=[ds.Transform(algorithm=CANONICAL_EXI)]),
                digest_method=ds.DigestMethod(algorithm=digest_uri),
                digest_value=digest(schema, qname, part, suite.digest_methods[digest_uri]),
            )
        )
    if not references:
        raise ValueError("nothing to sign: give the Id of at least one part")
    signed_info = ds.SignedInfo(
        canonicalization_method=ds.CanonicalizationMethod(algorithm=CANONICAL_EXI),
        signature_method=ds.SignatureMethod(algorithm=method.uri),
        reference=references,
    )
    value = _sign_bytes(method, key, signed_info_bytes(suite, signed_info))
    return ds.Signature(signed_info=signed_info, signature_value=ds.SignatureValue(value=value))


def with_signature(message, signature: ds.Signature):
    """A copy of ``message`` whose header carries ``signature``."""
    out = copy.deepcopy(message)
    header_of(out).signature = signature
    return out


def _sign_bytes(method: SignatureMethod, key, data: bytes) -> bytes:
    if method.key is KeyType.ED448:
        return key.sign(data)
    r, s = utils.decode_dss_signature(key.sign(data, ec.ECDSA(method.hash())))
    half = method.value_length // 2
    return r.to_bytes(half, "big") + s.to_bytes(half, "big")


# --------------------------------------------------------------------------- #
# Verifying                                                                    #
# --------------------------------------------------------------------------- #


def signer_public_key(signer) -> tuple[object | None, str | None]:
    """``(public key, None)`` from a certificate, DER bytes, a chain (leaf first) or a
    public key; ``(None, reason)`` when the peer's certificate cannot be read."""
    if isinstance(signer, (list, tuple)):
        if not signer:
            return None, "empty certificate chain"
        signer = signer[0]
    if isinstance(signer, (bytes, bytearray, memoryview)):
        try:
            signer = x509.load_der_x509_certificate(bytes(signer))
        except ValueError as exc:
            return None, f"the signer certificate is not DER X.509 ({exc})"
    if isinstance(signer, x509.Certificate):
        try:
            return signer.public_key(), None
        except Exception as exc:  # unsupported or corrupt key encodings  # noqa: BLE001
            return None, f"the signer certificate's public key cannot be used ({exc})"
    if key_type(signer) is not None or hasattr(signer, "verify"):
        return signer, None
    raise TypeError(f"signer must be a certificate, DER bytes, a chain or a public key, not {type(signer).__name__}")


def verify(message, schema: str, signer, *, required: Iterable[str] = ()) -> Verdict:
    """Check the Signature in ``message``'s header with ``signer`` (the signer's
    certificate, its DER, a chain leaf first, or a public key).

    ``schema`` is the message's EXI schema (``iso2``, ``iso20-common``, ...): it picks
    the standard's algorithms and the grammar of the referenced elements. ``required``
    lists element local names (``AuthorizationReq``, ``PnC_AReqAuthorizationMode``) the
    signature must cover. Returns a verdict (``Valid`` or the first failure, in the
    order of the module docstring); never raises on peer input.
    """
    suite = suite_for(schema)
    sig = header_of(message).signature
    if sig is None:
        return NoSignature()
    key, why = signer_public_key(signer)
    if key is None:
        return CertificateInvalid(why)
    try:
        return _verify(message, schema, suite, sig, key, tuple(required))
    except (AttributeError, TypeError) as exc:
        # a structurally broken Signature object (built by hand, not decoded)
        return MalformedSignature(f"Signature is not well-formed: {exc}")


def _verify(message, schema: str, suite: Suite, sig: ds.Signature, key, required: tuple[str, ...]) -> Verdict:
    si = sig.signed_info
    # 2. algorithms
    if si.canonicalization_method.algorithm not in suite.canonicalization:
        return UnknownAlgorithm(si.canonicalization_method.algorithm)
    method = suite.signature_methods.get(si.signature_method.algorithm)
    if method is None:
        return UnknownAlgorithm(si.signature_method.algorithm)
    if si.signature_method.hmac_output_length is not None:
        return MalformedSignature("SignatureMethod carries HMACOutputLength; ISO 15118 signatures are not HMACs")
    if not si.reference:
        return MalformedSignature("SignedInfo has no Reference")
    for ref in si.reference:
        transforms = ref.transforms.transform if ref.transforms is not None else []
        if len(transforms) != 1:
            return MalformedSignature(
                f"Reference {ref.uri!r} has {len(transforms)} Transforms; ISO 15118 names exactly one, canonical EXI"
            )
        if transforms[0].algorithm not in suite.transforms:
            return UnknownAlgorithm(transforms[0].algorithm)
        if ref.digest_method.algorithm not in suite.digest_methods:
            return UnknownAlgorithm(ref.digest_method.algorithm)
    # 3. key and value shape
    if key_type(key) is not method.key:
        return BadSignature(f"{method.uri} needs a {method.key.value} key; the signer's key is {describe_key(key)}")
    value = sig.signature_value.value
    if len(value) != method.value_length:
        return MalformedSignature(
            f"SignatureValue has {len(value)} bytes; {method.uri.rsplit('#', 1)[-1]} gives {method.value_length}"
            + (" (r || s, not DER)" if method.key is not KeyType.ED448 else "")
        )
    # 4. the signature over SignedInfo
    try:
        signed = signed_info_bytes(suite, si)
    except exi.ExiEncodeError as exc:
        return MalformedSignature(f"SignedInfo cannot be canonicalized: {exc}")
    if not _signature_ok(method, key, value, signed):
        return BadSignature()
    # 5. references
    index: dict[str, list[tuple[tuple[str, str], object]]] = {}
    for ident, qname, part in iter_identified(message):
        index.setdefault(ident, []).append((qname, part))
    covered: set[str] = set()
    for ref in si.reference:
        uri = ref.uri
        if not uri or not uri.startswith("#") or len(uri) < 2:
            return MalformedSignature(f"Reference URI {uri!r} is not a same-message reference '#Id'")
        hits = index.get(uri[1:], [])
        if not hits:
            return MissingReference(uri)
        if len(hits) > 1:
            return MalformedSignature(f"Id {uri[1:]!r} is carried by {len(hits)} elements")
        qname, part = hits[0]
        try:
            actual = digest(schema, qname, part, suite.digest_methods[ref.digest_method.algorithm])
        except exi.ExiEncodeError as exc:
            return MalformedSignature(f"{qname[1]} ({uri}) cannot be canonicalized: {exc}")
        if actual != ref.digest_value:
            return DigestMismatch(uri)
        covered.add(qname[1])
    # 6. coverage
    for element in required:
        if element not in covered:
            return UnsignedPart(element)
    return Valid(tuple(r.uri for r in si.reference), method.uri)


def _signature_ok(method: SignatureMethod, key, value: bytes, data: bytes) -> bool:
    try:
        if method.key is KeyType.ED448:
            key.verify(value, data)
        else:
            half = method.value_length // 2
            r, s = int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big")
            if not (0 < r and 0 < s):
                return False
            key.verify(utils.encode_dss_signature(r, s), data, ec.ECDSA(method.hash()))
        return True
    except InvalidSignature:
        return False


__all__ = [
    "digest",
    "iter_elements",
    "header_of",
    "iter_identified",
    "message_name",
    "sign",
    "signed_info_bytes",
    "signer_public_key",
    "verify",
    "with_signature",
]
