"""The one table (``_kinds.KINDS``): its names are the standards' names, its parts exist
and carry Ids in the XSD, and every verdict maps to a ResponseCode the standard has.
Plus: whatever a peer puts into a Signature, the verifier answers with a verdict."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pnc_bridge import xmldsig
from pnc_bridge.exi._api import codec
from pnc_bridge.messages import iso2, iso20
from pnc_bridge.messages import xmldsig as ds
from pnc_bridge.xmldsig import Standard, _verdict
from tests.exi.gen import strategy
from tests.xmldsig.messages import signer_chain, signer_key, unsigned

ENUM = {Standard.ISO15118_2: iso2.ResponseCode, Standard.ISO15118_20: iso20.ResponseCode}
VERDICTS = [
    xmldsig.NoSignature(),
    xmldsig.UnknownAlgorithm("urn:x"),
    xmldsig.MalformedSignature("x"),
    xmldsig.BadSignature(),
    xmldsig.MissingReference("#x"),
    xmldsig.DigestMismatch("#x"),
    xmldsig.UnsignedPart("x"),
    xmldsig.CertificateInvalid("x", "FAILED_CertChainError"),
    xmldsig.CertificateInvalid("x"),
    xmldsig.ChallengeInvalid(),
]


def test_every_verdict_type_is_exported_and_listed():
    classes = {c for c in vars(_verdict).values() if isinstance(c, type) and issubclass(c, _verdict._Verdict)}
    classes.discard(_verdict._Verdict)
    assert classes == {type(v) for v in VERDICTS} | {xmldsig.Valid}
    assert all(getattr(xmldsig, c.__name__) is c for c in classes)


@pytest.mark.parametrize("key", sorted(xmldsig.KINDS, key=str), ids=lambda k: f"{k[0].name}-{k[1]}")
def test_kind_names_parts_and_codes_are_the_standards(key, pkis):
    kind = xmldsig.KINDS[key]
    std, name = key
    enum = ENUM[std]
    for code in (kind.failure, kind.challenge):
        if code is not None:
            assert code in enum.__members__, code
    # the message class exists under that name, and each part is an element with an Id
    model = iso2 if std is Standard.ISO15118_2 else iso20
    assert hasattr(model, name)
    with_id = {
        qn[1]
        for qn, (_c, _e, _r, classes) in codec(kind.schema).FRAGMENT_ELEMENTS.items()
        if any(any(f[1] == "Id" and f[3] == "attr" for f in c._exi_fields) for c in classes)
    }
    assert set(kind.parts) <= with_id
    # every verdict becomes a code of this standard (None only for Valid)
    msg = unsigned(std, name, pkis["iso2" if std is Standard.ISO15118_2 else "iso20"])
    for verdict in VERDICTS:
        code = xmldsig.response_code(verdict, msg)
        assert code in enum.__members__, (verdict, code)
    assert xmldsig.response_code(xmldsig.Valid(("#a",), xmldsig.ECDSA_SHA256), msg) is None


def test_verdicts_are_json_values():
    for verdict in [*VERDICTS, xmldsig.Valid(("#ID1",), xmldsig.ECDSA_SHA256)]:
        d = verdict.as_dict()
        assert d["verdict"] == type(verdict).__name__ and d["valid"] is verdict.valid
        json.dumps(d)
        assert dataclasses.is_dataclass(verdict)
        with pytest.raises(dataclasses.FrozenInstanceError):
            verdict.x = 1  # type: ignore[attr-defined]


def test_the_suites_are_disjoint():
    """A -2 method is unknown to -20 and the other way round (see _algorithms)."""
    s2, s20 = xmldsig.SUITES[Standard.ISO15118_2], xmldsig.SUITES[Standard.ISO15118_20]
    assert not set(s2.signature_methods) & set(s20.signature_methods)
    assert not set(s2.digest_methods) & set(s20.digest_methods)
    assert s2.signed_info_schema == s20.signed_info_schema == "xmldsig"


_SIGNED: dict = {}


def _valid_message(pkis, variant):
    if variant not in _SIGNED:
        std = Standard.ISO15118_2 if variant == "iso2" else Standard.ISO15118_20
        pki = pkis[variant]
        msg = xmldsig.sign_message(unsigned(std, "AuthorizationReq", pki), signer_key(std, "AuthorizationReq", pki))
        _SIGNED[variant] = (msg, signer_chain(std, "AuthorizationReq", pki), "iso2" if variant == "iso2" else "iso20-common")
    return _SIGNED[variant]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_any_signature_content_gives_a_verdict(pkis, data):
    """Arbitrary Signature elements (any URIs, values, lengths, references, KeyInfo) in a
    message: a verdict, never an exception, and never Valid."""
    variant = data.draw(st.sampled_from(["iso2", "iso20", "iso20-ed448"]))
    msg, chain, schema = _valid_message(pkis, variant)
    m = xmldsig.with_signature(msg, data.draw(strategy(ds.Signature)))
    if data.draw(st.booleans()):  # keep real algorithms, so the later checks are reached
        real = msg.header.signature.signed_info
        si = m.header.signature.signed_info
        si.canonicalization_method, si.signature_method = real.canonicalization_method, real.signature_method
        for ref in si.reference:
            ref.transforms, ref.digest_method = real.reference[0].transforms, real.reference[0].digest_method
    verdict = xmldsig.verify_message(m, chain, schema=schema)
    assert not verdict.valid
    assert isinstance(xmldsig.response_code(verdict, m), str)
