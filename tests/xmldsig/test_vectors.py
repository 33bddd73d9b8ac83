"""Real signatures from real sessions: every signed message in ../shared/exi-vectors
(ISO 15118-2 Plug & Charge between a dSPACE DS5366 and RISE V2G; a Josev SECC's signed
SalesTariff) checked by ``pnc_bridge.xmldsig`` with the certificate of the same session.

The set of signed captures, the signer of each kind and the dangling ones come from
tests/exi/test_fragments.py (which checks the raw digests and signatures); here the
verdicts of the verifier are checked, and that one flipped bit anywhere in a signed
message gives the named failure exactly when it changes signed content.
"""

from __future__ import annotations

import random

import pytest
from cryptography import x509

from pnc_bridge import exi, xmldsig
from pnc_bridge.xmldsig import Standard
from tests.exi.test_fragments import DANGLING, RESOLVED, SIGNED, SIGNER, _session_certs

try:
    from tests.exi.vectors import ALL_VECTORS, load

    ALL_ISO2 = load(ALL_VECTORS, ("iso2",))
except FileNotFoundError:  # pragma: no cover - shared/ missing
    ALL_ISO2 = []


def _decode(v):
    return exi.decode(v["ns"], bytes.fromhex(v["hex"]))


def signer_certs(v) -> list[bytes]:
    """The certificates that may have signed capture ``v``: its own chain when it carries
    one, else the session's (PaymentDetailsReq's contract certificate)."""
    msg = _decode(v)
    kind = xmldsig.kind_of(msg)
    if kind is not None and kind.in_message is not None:
        return [kind.in_message(msg)[0]]
    if v["msg"] in SIGNER:
        return _session_certs(v, SIGNER[v["msg"]])
    # the DS5366 repeats its last (contract-key) signature header on later requests
    return _session_certs(v, SIGNER["AuthorizationReq"])


def _verdict(msg, certs):
    verdicts = [xmldsig.verify_message(msg, c) for c in certs]
    valid = [x for x in verdicts if x.valid]
    return valid[0] if valid else verdicts[0]


CHECKABLE = [v for v in SIGNED if v["msg"] != "ChargeParameterDiscoveryRes"]
IDS = [f"{v['msg']}-{v['id']}" for v in CHECKABLE]


def test_the_captures_hold_every_kind_the_table_names_for_iso2(shared_dir):
    kinds = {v["msg"] for v in SIGNED}
    assert {name for std, name in xmldsig.KINDS if std is Standard.ISO15118_2} <= kinds
    assert len(CHECKABLE) >= 15


@pytest.mark.parametrize("v", CHECKABLE, ids=IDS)
def test_captured_signature_verdict(v):
    msg = _decode(v)
    verdict = _verdict(msg, signer_certs(v))
    if v["id"] in DANGLING:
        # a valid signature over SignedInfo whose reference names no element of this message
        assert isinstance(verdict, xmldsig.MissingReference), verdict
        assert verdict.uri == msg.header.signature.signed_info.reference[0].uri
        assert xmldsig.response_code(verdict, msg) == "FAILED_SignatureError"
        return
    assert verdict == xmldsig.Valid(
        tuple(r.uri for r in msg.header.signature.signed_info.reference), xmldsig.ECDSA_SHA256
    )
    assert xmldsig.response_code(verdict, msg) is None
    kind = xmldsig.kind_of(msg)
    # the table's parts are exactly what the real signers referenced
    covered = {q[1] for i, q, _ in xmldsig.iter_identified(msg) if "#" + i in verdict.references}
    assert covered == set(kind.parts)


@pytest.mark.parametrize("v", [v for v in RESOLVED if v["msg"] == "ChargeParameterDiscoveryRes"])
def test_signed_sales_tariff_digests(v):
    """Josev's SECC signs the SalesTariff with a key whose certificate is not in the
    capture: the digests are checked, and a certificate of another signer is refused."""
    msg = _decode(v)
    suite = xmldsig.suite_for("iso2")
    parts = {i: (q, p) for i, q, p in xmldsig.iter_identified(msg)}
    for ref in msg.header.signature.signed_info.reference:
        q, p = parts[ref.uri[1:]]
        assert q[1] == "SalesTariff"
        assert xmldsig.digest("iso2", q, p, suite.digest_methods[ref.digest_method.algorithm]) == ref.digest_value
    other = signer_certs(next(c for c in CHECKABLE if c["msg"] == "AuthorizationReq"))[0]
    assert isinstance(xmldsig.verify_message(msg, other), xmldsig.BadSignature)


@pytest.mark.parametrize("v", [v for v in CHECKABLE if v["id"] not in DANGLING], ids=lambda v: f"{v['msg']}-{v['id']}")
def test_captured_algorithms_are_the_iso2_suite(v):
    si = _decode(v).header.signature.signed_info
    suite = xmldsig.suite_for("iso2")
    assert si.canonicalization_method.algorithm in suite.canonicalization
    assert si.signature_method.algorithm in suite.signature_methods
    for ref in si.reference:
        assert [t.algorithm for t in ref.transforms.transform] == [xmldsig.CANONICAL_EXI]
        assert ref.digest_method.algorithm == suite.default_digest


def test_a_certificate_of_another_session_is_refused(shared_dir):
    auth = [v for v in CHECKABLE if v["msg"] == "AuthorizationReq"]
    by_cert = {signer_certs(v)[0]: v for v in auth}
    assert len(by_cert) >= 2, "need two sessions with different contract certificates"
    (c1, v1), (c2, v2) = list(by_cert.items())[:2]
    assert isinstance(xmldsig.verify_message(_decode(v1), c2), xmldsig.BadSignature)
    # and the helper the SECC calls says the same
    assert isinstance(xmldsig.verify_authorization_req(_decode(v2), c1), xmldsig.BadSignature)
    assert xmldsig.verify_authorization_req(_decode(v2), x509.load_der_x509_certificate(c2)).valid


# --------------------------------------------------------------------------- #
# one flipped bit                                                             #
# --------------------------------------------------------------------------- #

#: at most this many bit positions per capture (all of them for the small ones)
MAX_FLIPS = 1500


def _signed_content(msg):
    """What a signature protects: SignedInfo, SignatureValue and each referenced part."""
    sig = msg.header.signature
    parts = {}
    for ident, qname, part in xmldsig.iter_identified(msg):
        parts.setdefault("#" + ident, []).append((qname, part))
    return sig.signed_info, sig.signature_value, {r.uri: parts.get(r.uri) for r in sig.signed_info.reference}


@pytest.mark.parametrize("v", [v for v in CHECKABLE if v["id"] not in DANGLING], ids=lambda v: f"{v['msg']}-{v['id']}")
def test_one_flipped_bit_fails_exactly_when_signed_content_changes(v):
    data = bytes.fromhex(v["hex"])
    certs = signer_certs(v)
    msg = _decode(v)
    cert = next(c for c in certs if xmldsig.verify_message(msg, c).valid)
    si0, sv0, parts0 = _signed_content(msg)
    bits = range(8, len(data) * 8)  # the EXI header byte is not part of the document
    if len(bits) > MAX_FLIPS:
        bits = sorted(random.Random(int(v["id"], 16)).sample(bits, MAX_FLIPS))
    seen = {"decode error": 0, "Valid": 0}
    for bit in bits:
        flipped = bytearray(data)
        flipped[bit // 8] ^= 0x80 >> (bit % 8)
        try:
            new = exi.decode("iso2", bytes(flipped))
        except exi.ExiDecodeError:
            seen["decode error"] += 1
            continue
        verdict = xmldsig.verify_message(new, cert)
        seen[verdict.name] = seen.get(verdict.name, 0) + 1
        if new.header.signature is None:
            assert isinstance(verdict, xmldsig.NoSignature), bit
            continue
        si, sv, parts = _signed_content(new)
        where = f"bit {bit}: {verdict}"
        if (si, sv) != (si0, sv0):
            assert isinstance(
                verdict, (xmldsig.BadSignature, xmldsig.UnknownAlgorithm, xmldsig.MalformedSignature)
            ), where
        elif parts != parts0:
            changed = [uri for uri in parts if parts[uri] != parts0[uri]]
            if any(parts[uri] is None for uri in changed):
                assert isinstance(verdict, (xmldsig.MissingReference, xmldsig.DigestMismatch)), where
            else:
                assert verdict == xmldsig.DigestMismatch(changed[0]), where
        else:
            assert verdict.valid, where
    # the sweep did reach each kind of outcome it claims to check
    assert seen["Valid"] + seen["decode error"] < len(bits), seen
    assert seen.get("DigestMismatch", 0) or seen.get("BadSignature", 0), seen


@pytest.mark.parametrize("v", [v for v in CHECKABLE if v["id"] not in DANGLING][:1], ids=lambda v: v["id"])
def test_flip_in_signature_value_and_digest_value(v):
    msg = _decode(v)
    cert = next(c for c in signer_certs(v) if xmldsig.verify_message(msg, c).valid)
    for target in ("signature_value", "digest_value"):
        m = _decode(v)
        s = m.header.signature
        if target == "signature_value":
            val = bytearray(s.signature_value.value)
            val[10] ^= 0x01
            s.signature_value.value = bytes(val)
        else:
            val = bytearray(s.signed_info.reference[0].digest_value)
            val[0] ^= 0x01
            s.signed_info.reference[0].digest_value = bytes(val)
        assert isinstance(xmldsig.verify_message(m, cert), xmldsig.BadSignature), target
