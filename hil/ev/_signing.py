"""XML-DSig over EXI for the rig: sign message parts (EV, CPS stand-in) and check signatures
(the rig's SECC ports).

How ISO 15118-2 signs (checked on every signed vector in tests/exi/test_fragments.py): each
``Reference URI="#Id"`` digests, with SHA-256, the EXI fragment of the element carrying that
``Id`` in the message schema's grammar; the signature is ECDSA-SHA256 (raw r||s) over the EXI
fragment of ``SignedInfo`` in the XML-DSig schema's own grammar.

This is the rig's minimal copy until ``pnc_bridge.xmldsig`` (sign/verify helpers with verdict
values, issue 3) lands; then the EV emulator and ``hil.secc_rig`` use that and this goes.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from pnc_bridge import exi
from pnc_bridge.messages import xmldsig as ds

__all__ = ["C14N_EXI", "ECDSA_SHA256", "SHA256", "find_by_id", "sign", "verify"]

C14N_EXI = "http://www.w3.org/TR/canonical-exi/"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def find_by_id(obj: Any, wanted: str, name: str | None = None) -> Iterator[tuple[str | None, Any]]:
    """(element local name, part) of every message part whose ``Id`` is ``wanted``."""
    fields = getattr(type(obj), "_exi_fields", None)
    if fields is None:
        return
    if getattr(obj, "id", None) == wanted:
        yield name, obj
    for f in fields:
        v = getattr(obj, f[0])
        for item in v if isinstance(v, list) else [v]:
            yield from find_by_id(item, wanted, f[1])


def _fragment(schema: str, name: str | None, part: Any) -> bytes:
    return exi.encode_fragment(schema, part, element=name if name not in (None, "BodyElement") else None)


def sign(schema: str, parts: list[tuple[str | None, Any]], key: ec.EllipticCurvePrivateKey) -> ds.Signature:
    """A ``Signature`` over ``parts`` ((element name or None for a body element, part with an
    ``id``)) with a P-256 key, as ISO 15118-2 puts it into the message header."""
    references = [
        ds.Reference(
            uri=f"#{part.id}",
            transforms=ds.Transforms(transform=[ds.Transform(algorithm=C14N_EXI)]),
            digest_method=ds.DigestMethod(algorithm=SHA256),
            digest_value=hashlib.sha256(_fragment(schema, name, part)).digest(),
        )
        for name, part in parts
    ]
    signed_info = ds.SignedInfo(
        canonicalization_method=ds.CanonicalizationMethod(algorithm=C14N_EXI),
        signature_method=ds.SignatureMethod(algorithm=ECDSA_SHA256),
        reference=references,
    )
    der = key.sign(exi.encode_fragment("xmldsig", signed_info), ec.ECDSA(hashes.SHA256()))
    r, s = utils.decode_dss_signature(der)
    return ds.Signature(signed_info=signed_info, signature_value=ds.SignatureValue(value=r.to_bytes(32, "big") + s.to_bytes(32, "big")))


def verify(schema: str, message: Any, certificate_der: bytes) -> tuple[bool, str]:
    """Check the header signature of ``message`` (a decoded V2G_Message) with the public key
    of ``certificate_der``. Returns (valid, reason); never raises on message content."""
    signature = getattr(message.header, "signature", None)
    if signature is None:
        return False, "no Signature in the header"
    info = signature.signed_info
    if info.signature_method.algorithm != ECDSA_SHA256:
        return False, f"unknown SignatureMethod {info.signature_method.algorithm}"
    if not info.reference:
        return False, "no Reference"
    for ref in info.reference:
        if ref.digest_method.algorithm != SHA256:
            return False, f"unknown DigestMethod {ref.digest_method.algorithm}"
        hits = list(find_by_id(message.body, (ref.uri or "").lstrip("#")))
        if len(hits) != 1:
            return False, f"Reference {ref.uri} does not name exactly one element"
        name, part = hits[0]
        try:
            digest = hashlib.sha256(_fragment(schema, name, part)).digest()
        except exi.ExiEncodeError as exc:
            return False, f"cannot canonicalize {ref.uri}: {exc}"
        if digest != ref.digest_value:
            return False, f"digest of {ref.uri} does not match"
    raw = signature.signature_value.value
    if len(raw) != 64:
        return False, f"SignatureValue has {len(raw)} bytes, not 64"
    try:
        key = x509.load_der_x509_certificate(certificate_der).public_key()
    except ValueError as exc:
        return False, f"signer certificate unreadable: {exc}"
    if not isinstance(key, ec.EllipticCurvePublicKey):
        return False, "signer key is not an EC key"
    der = utils.encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        key.verify(der, exi.encode_fragment("xmldsig", info), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False, "signature does not verify"
    return True, "valid"
