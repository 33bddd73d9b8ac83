"""Sign with test-PKI keys, send through the EXI codec, verify: ISO 15118-2 with P-256,
ISO 15118-20 with P-521/SHA-512 and with Ed448, for every signed message kind; and every
named failure, produced on purpose.
"""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed448, utils

from pnc_bridge import exi, xmldsig
from pnc_bridge.messages import iso20
from pnc_bridge.messages import xmldsig as ds
from pnc_bridge.xmldsig import Standard
from tests.xmldsig.conftest import CASE_IDS, CASES, validation_time
from tests.xmldsig.messages import GEN_CHALLENGE, der, signer_chain, signer_key, unsigned


def _wire(msg, schema):
    """Through the codec and back, as the peer sees it."""
    return exi.decode(schema, exi.encode(schema, msg))


def _signed(pki, std, name):
    kind = xmldsig.KINDS[(std, name)]
    msg = xmldsig.sign_message(unsigned(std, name, pki), signer_key(std, name, pki))
    return _wire(msg, kind.schema), kind


@pytest.mark.parametrize("variant,std,name", CASES, ids=CASE_IDS)
def test_sign_then_verify(pkis, variant, std, name):
    pki = pkis[variant]
    msg, kind = _signed(pki, std, name)
    verdict = xmldsig.verify_message(msg, signer_chain(std, name, pki))
    expected_method = {
        "iso2": xmldsig.ECDSA_SHA256, "iso20": xmldsig.ECDSA_SHA512, "iso20-ed448": xmldsig.EDDSA_ED448
    }[variant]
    assert verdict == xmldsig.Valid(verdict.references, expected_method)
    assert len(verdict.references) == len(kind.parts)
    assert xmldsig.response_code(verdict, msg) is None
    si = msg.header.signature.signed_info
    assert {r.digest_method.algorithm for r in si.reference} == {xmldsig.suite_for(kind.schema).default_digest}
    if kind.in_message is not None:  # the message carries its signer: no certificate needed
        assert xmldsig.verify_message(msg).valid
    # the leaf alone, as DER or as a certificate object, works the same
    assert xmldsig.verify_message(msg, signer_chain(std, name, pki)[0]).valid


@pytest.mark.parametrize("variant,std,name", CASES, ids=CASE_IDS)
def test_chain_validated_against_the_store(pkis, stores, variant, std, name):
    pki = pkis[variant]
    msg, kind = _signed(pki, std, name)
    chain = signer_chain(std, name, pki)
    at = validation_time(pki)
    assert xmldsig.verify_message(msg, chain, store=stores[variant], at=at).valid
    # another PKI's trust store does not know this signer's root
    other = stores["iso2" if variant != "iso2" else "iso20"]
    verdict = xmldsig.verify_message(msg, chain, store=other, at=at)
    assert isinstance(verdict, xmldsig.CertificateInvalid) and verdict.chain_code == "FAILED_CertChainError"
    expired = xmldsig.verify_message(msg, chain, store=stores[variant], at=at.replace(year=at.year + 50))
    assert isinstance(expired, xmldsig.CertificateInvalid) and expired.chain_code == "FAILED_CertificateExpired"
    code = xmldsig.response_code(verdict, msg)
    if std is Standard.ISO15118_2 and not name.endswith("Res"):
        assert code == "FAILED_CertChainError"
    else:
        assert code == kind.failure


@pytest.mark.parametrize("variant,std,name", CASES, ids=CASE_IDS)
def test_another_key_of_the_same_type_is_a_bad_signature(pkis, variant, std, name):
    pki = pkis[variant]
    kind = xmldsig.KINDS[(std, name)]
    msg = _wire(xmldsig.sign_message(unsigned(std, name, pki), pki.key("secc_leaf")), kind.schema)
    verdict = xmldsig.verify_message(msg, signer_chain(std, name, pki))
    assert verdict == xmldsig.BadSignature()
    assert xmldsig.response_code(verdict, msg) == kind.failure


def _leaves(obj, path=()):
    """(path, parent, field name) of every scalar value under ``obj``."""
    for f in type(obj)._exi_fields:
        v = getattr(obj, f[0])
        if v is None:
            continue
        items = list(enumerate(v)) if isinstance(v, list) else [(None, v)]
        for i, item in items:
            if hasattr(type(item), "_exi_fields"):
                yield from _leaves(item, (*path, f[0] if i is None else f"{f[0]}[{i}]"))
            elif f[1] != "Id":
                yield (*path, f[0]), obj, f[0], i


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value ^ 1
    if isinstance(value, (bytes, bytearray)):
        b = bytearray(value or b"\0")
        b[len(b) // 2] ^= 0x01
        return bytes(b)
    if isinstance(value, str):
        return value[:-1] + chr(ord(value[-1]) ^ 1) if value else "x"
    members = list(type(value))
    return members[(members.index(value) + 1) % len(members)]


@pytest.mark.parametrize("variant,std,name", CASES, ids=CASE_IDS)
def test_every_value_of_every_signed_part_is_protected(pkis, variant, std, name):
    """Change any one value inside a signed part: DigestMismatch naming that reference."""
    pki = pkis[variant]
    msg, kind = _signed(pki, std, name)
    chain = signer_chain(std, name, pki)
    refs = {ident: uri for uri in (r.uri for r in msg.header.signature.signed_info.reference) for ident in [uri[1:]]}
    checked = 0
    for ident, _qname, part in list(xmldsig.iter_identified(msg)):
        if ident not in refs:
            continue
        for path, parent, field, index in list(_leaves(part)):
            m = copy.deepcopy(msg)
            # the same leaf in the copy
            target = next(p for i, _, p in xmldsig.iter_identified(m) if i == ident)
            for step in path[:-1]:
                attr, _, idx = step.partition("[")
                target = getattr(target, attr)
                if idx:
                    target = target[int(idx[:-1])]
            old = getattr(target, field)
            if index is None:
                setattr(target, field, _changed(old))
            else:
                old[index] = _changed(old[index])
            try:
                exi.encode(kind.schema, m)
            except exi.ExiEncodeError:
                continue  # the change left the value's facets: not a message a peer can send
            assert xmldsig.verify_message(m, chain) == xmldsig.DigestMismatch(refs[ident]), path
            checked += 1
    assert checked >= len(kind.parts)


@pytest.mark.parametrize("variant,std,name", CASES, ids=CASE_IDS)
def test_signed_info_changes(pkis, variant, std, name):
    pki = pkis[variant]
    msg, kind = _signed(pki, std, name)
    chain = signer_chain(std, name, pki)
    suite = xmldsig.suite_for(kind.schema)

    def check(mutate, expected):
        m = copy.deepcopy(msg)
        mutate(m.header.signature)
        assert xmldsig.verify_message(m, chain) == expected

    def flip_digest(s):
        d = bytearray(s.signed_info.reference[0].digest_value)
        d[-1] ^= 0x80
        s.signed_info.reference[0].digest_value = bytes(d)

    check(flip_digest, xmldsig.BadSignature())

    def flip_value(s):
        d = bytearray(s.signature_value.value)
        d[3] ^= 0x04
        s.signature_value.value = bytes(d)

    check(flip_value, xmldsig.BadSignature())

    def rename_uri(s):
        s.signed_info.reference[0].uri = "#elsewhere"

    check(rename_uri, xmldsig.BadSignature())  # SignedInfo is authenticated before it is used
    other_std = "ISO 15118-20" if std is Standard.ISO15118_2 else "ISO 15118-2"
    foreign = next(iter(xmldsig.SUITES[Standard(other_std)].signature_methods))

    def foreign_method(s):
        s.signed_info.signature_method.algorithm = foreign

    check(foreign_method, xmldsig.UnknownAlgorithm(foreign))

    def foreign_digest(s):
        s.signed_info.reference[-1].digest_method.algorithm = "http://www.w3.org/2000/09/xmldsig#sha1"

    check(foreign_digest, xmldsig.UnknownAlgorithm("http://www.w3.org/2000/09/xmldsig#sha1"))

    def c14n(s):
        s.signed_info.canonicalization_method.algorithm = "http://www.w3.org/2001/10/xml-exc-c14n#"

    check(c14n, xmldsig.UnknownAlgorithm("http://www.w3.org/2001/10/xml-exc-c14n#"))

    def transform(s):
        s.signed_info.reference[0].transforms.transform[0].algorithm = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

    check(transform, xmldsig.UnknownAlgorithm("http://www.w3.org/2000/09/xmldsig#enveloped-signature"))

    def no_transforms(s):
        s.signed_info.reference[0].transforms = None

    m = copy.deepcopy(msg)
    no_transforms(m.header.signature)
    assert isinstance(xmldsig.verify_message(m, chain), xmldsig.MalformedSignature)

    def truncated(s):
        s.signature_value.value = s.signature_value.value[:-1]

    m = copy.deepcopy(msg)
    truncated(m.header.signature)
    verdict = xmldsig.verify_message(m, chain)
    assert isinstance(verdict, xmldsig.MalformedSignature) and "bytes" in verdict.reason
    assert xmldsig.response_code(verdict, m) == kind.failure
    assert suite.signature_methods[msg.header.signature.signed_info.signature_method.algorithm]


@pytest.mark.parametrize("variant", ["iso2", "iso20"])
def test_a_der_signature_value_is_malformed(pkis, variant):
    """ISO 15118 sends r || s; a DER-encoded ECDSA signature is a common interop bug."""
    pki = pkis[variant]
    std = Standard.ISO15118_2 if variant == "iso2" else Standard.ISO15118_20
    msg, kind = _signed(pki, std, "AuthorizationReq")
    raw = msg.header.signature.signature_value.value
    half = len(raw) // 2
    msg.header.signature.signature_value.value = utils.encode_dss_signature(
        int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
    )
    verdict = xmldsig.verify_message(msg, signer_chain(std, "AuthorizationReq", pki))
    assert isinstance(verdict, xmldsig.MalformedSignature) and "not DER" in verdict.reason


def test_the_signature_method_must_fit_the_key(pkis):
    ecdsa = pkis["iso20"]
    eddsa = pkis["iso20-ed448"]
    msg, _ = _signed(ecdsa, Standard.ISO15118_20, "AuthorizationReq")
    verdict = xmldsig.verify_message(msg, der(eddsa.contract_leaf))
    assert isinstance(verdict, xmldsig.BadSignature) and "secp521r1" in verdict.reason and "Ed448" in verdict.reason
    # a P-256 certificate for an ISO 15118-2 signature method is fine; a P-521 one is not
    msg2, _ = _signed(pkis["iso2"], Standard.ISO15118_2, "AuthorizationReq")
    assert isinstance(xmldsig.verify_message(msg2, der(ecdsa.contract_leaf)), xmldsig.BadSignature)


def test_signing_refuses_keys_the_standard_does_not_use(pkis):
    with pytest.raises(ValueError, match="secp521r1"):
        xmldsig.sign_message(unsigned(Standard.ISO15118_2, "AuthorizationReq", pkis["iso2"]), pkis["iso20"].key("contract_leaf"))
    with pytest.raises(ValueError, match="secp256r1"):
        xmldsig.sign_message(unsigned(Standard.ISO15118_20, "AuthorizationReq", pkis["iso20"]), pkis["iso2"].key("contract_leaf"))
    with pytest.raises(ValueError, match="secp384r1"):
        xmldsig.sign_message(unsigned(Standard.ISO15118_2, "AuthorizationReq", pkis["iso2"]), ec.generate_private_key(ec.SECP384R1()))


def test_no_signature(pkis):
    pki = pkis["iso2"]
    msg = unsigned(Standard.ISO15118_2, "AuthorizationReq", pki)
    verdict = xmldsig.verify_authorization_req(msg, der(pki.contract_leaf))
    assert verdict == xmldsig.NoSignature()
    assert xmldsig.response_code(verdict, msg) == "FAILED_SignatureError"
    assert verdict.as_dict() == {"verdict": "NoSignature", "valid": False}


def test_missing_and_duplicate_ids(pkis):
    pki = pkis["iso20"]
    msg, _ = _signed(pki, Standard.ISO15118_20, "AuthorizationReq")
    chain = signer_chain(Standard.ISO15118_20, "AuthorizationReq", pki)
    m = copy.deepcopy(msg)
    m.pnc_areq_authorization_mode.id = "renamed"
    assert xmldsig.verify_message(m, chain) == xmldsig.MissingReference("#id1")
    # -2: two elements carrying the referenced Id
    pki2 = pkis["iso2"]
    res, _ = _signed(pki2, Standard.ISO15118_2, "CertificateInstallationRes")
    res.body.body_element.sa_provisioning_certificate_chain.id = "ID1"
    verdict = xmldsig.verify_message(res)
    assert isinstance(verdict, xmldsig.MalformedSignature) and "ID1" in verdict.reason


def test_a_signature_that_leaves_out_a_part_is_unsigned_part(pkis):
    pki = pkis["iso2"]
    msg = unsigned(Standard.ISO15118_2, "CertificateInstallationRes", pki)
    sig = xmldsig.sign(msg, "iso2", ["ID1", "ID2", "ID3"], pki.key("cps_leaf"))  # not eMAID
    verdict = xmldsig.verify_certificate_installation_res(_wire(xmldsig.with_signature(msg, sig), "iso2"))
    assert verdict == xmldsig.UnsignedPart("eMAID")
    # the low-level check without a requirement accepts it
    assert xmldsig.verify(xmldsig.with_signature(msg, sig), "iso2", der(pki.cert("cps_leaf"))).valid


@pytest.mark.parametrize("variant", ["iso2", "iso20", "iso20-ed448"])
def test_gen_challenge(pkis, variant):
    pki = pkis[variant]
    std = Standard.ISO15118_2 if variant == "iso2" else Standard.ISO15118_20
    unsigned_msg = unsigned(std, "AuthorizationReq", pki)
    msg = _wire(xmldsig.sign_authorization_req(unsigned_msg, pki.key("contract_leaf")), xmldsig.KINDS[(std, "AuthorizationReq")].schema)
    cert = der(pki.contract_leaf) if std is Standard.ISO15118_2 else None
    assert xmldsig.verify_authorization_req(msg, cert, gen_challenge=GEN_CHALLENGE).valid
    verdict = xmldsig.verify_authorization_req(msg, cert, gen_challenge=bytes(16))
    assert verdict == xmldsig.ChallengeInvalid()
    expected = "FAILED_ChallengeInvalid" if std is Standard.ISO15118_2 else "WARNING_ChallengeInvalid"
    assert xmldsig.response_code(verdict, msg) == expected


def test_helpers_sign_only_their_own_kind_and_leave_the_input_alone(pkis):
    pki = pkis["iso2"]
    auth = unsigned(Standard.ISO15118_2, "AuthorizationReq", pki)
    auth.body.body_element.id = None  # the signer names it
    signed = xmldsig.sign_authorization_req(auth, pki.key("contract_leaf"))
    assert auth.header.signature is None and auth.body.body_element.id is None
    assert signed.body.body_element.id == "ID1"
    assert xmldsig.verify_authorization_req(_wire(signed, "iso2"), pki.contract_leaf).valid
    metering = unsigned(Standard.ISO15118_2, "MeteringReceiptReq", pki)
    with pytest.raises(TypeError, match="AuthorizationReq"):
        xmldsig.sign_authorization_req(metering, pki.key("contract_leaf"))
    with pytest.raises(TypeError):
        xmldsig.verify_certificate_installation_res(metering)
    signed_m = xmldsig.sign_metering_receipt_req(metering, pki.key("contract_leaf"))
    assert xmldsig.verify_metering_receipt_req(_wire(signed_m, "iso2"), pki.contract_leaf).valid
    with pytest.raises(ValueError, match="PaymentDetailsReq"):
        xmldsig.verify_authorization_req(signed)
    pki20 = pkis["iso20"]
    conf = xmldsig.sign_metering_receipt_req(unsigned(Standard.ISO15118_20, "MeteringConfirmationReq", pki20), pki20.key("contract_leaf"))
    verdict = xmldsig.verify_metering_receipt_req(_wire(conf, "iso20-common"), pki20.contract_leaf)
    assert verdict.valid
    conf.signed_metering_data.meter_info.charged_energy_reading_wh += 1
    verdict = xmldsig.verify_metering_receipt_req(conf, pki20.contract_leaf)
    assert verdict == xmldsig.DigestMismatch("#id1")
    assert xmldsig.response_code(verdict, conf) == "FAILED_MeteringSignatureNotValid"


def test_certificate_update_res_helper(pkis, stores):
    pki = pkis["iso2"]
    msg, _ = _signed(pki, Standard.ISO15118_2, "CertificateUpdateRes")
    assert xmldsig.verify_certificate_update_res(msg, store=stores["iso2"], at=validation_time(pki)).valid
    with pytest.raises(ValueError, match="at"):
        xmldsig.verify_certificate_installation_res(msg, store=stores["iso2"])


def test_unreadable_signer_certificates(pkis):
    pki = pkis["iso20"]
    msg, _ = _signed(pki, Standard.ISO15118_20, "CertificateInstallationRes")
    verdict = xmldsig.verify_message(msg, b"\x30\x03\x02\x01\x01")
    assert isinstance(verdict, xmldsig.CertificateInvalid)
    msg.cps_certificate_chain.certificate = b"not a certificate"
    assert isinstance(xmldsig.verify_certificate_installation_res(msg), xmldsig.CertificateInvalid)
    assert xmldsig.response_code(xmldsig.verify_certificate_installation_res(msg), msg) == "FAILED"


def test_ed448_is_pure_eddsa_over_the_signed_info_fragment(pkis):
    """The -20 Ed448 value is RFC 8032 Ed448 (no pre-hash, empty context) over the octets of
    SignedInfo's EXI fragment: checked with the raw primitive, not through our verifier."""
    pki = pkis["iso20-ed448"]
    msg, _ = _signed(pki, Standard.ISO15118_20, "AuthorizationReq")
    sig = msg.header.signature
    octets = exi.encode_fragment("xmldsig", sig.signed_info)
    public = pki.contract_leaf.public_key()
    assert isinstance(public, ed448.Ed448PublicKey)
    public.verify(sig.signature_value.value, octets)
    assert len(sig.signature_value.value) == 114


def test_p521_value_is_r_and_s_of_66_bytes(pkis):
    pki = pkis["iso20"]
    msg, _ = _signed(pki, Standard.ISO15118_20, "MeteringConfirmationReq")
    sig = msg.header.signature
    raw = sig.signature_value.value
    assert len(raw) == 132
    octets = exi.encode_fragment("xmldsig", sig.signed_info)
    from cryptography.hazmat.primitives import hashes

    pki.contract_leaf.public_key().verify(
        utils.encode_dss_signature(int.from_bytes(raw[:66], "big"), int.from_bytes(raw[66:], "big")),
        octets,
        ec.ECDSA(hashes.SHA512()),
    )


def test_signature_on_a_message_that_signs_nothing(pkis):
    """A -20 DC message may carry a header Signature; its references can only dangle."""
    pki = pkis["iso20"]
    auth, _ = _signed(pki, Standard.ISO15118_20, "AuthorizationReq")
    req = iso20.DC_WeldingDetectionReq(header=auth.header, ev_processing=iso20.Processing.Finished)
    req = _wire(req, "iso20-dc")
    verdict = xmldsig.verify(req, "iso20-dc", der(pki.contract_leaf))
    assert verdict == xmldsig.MissingReference("#id1")
    assert xmldsig.response_code(verdict, req) == "FAILED_SignatureError"
    with pytest.raises(ValueError, match="schema="):
        xmldsig.verify_message(req)


def test_misuse_raises(pkis):
    with pytest.raises(ValueError, match="apphand"):
        xmldsig.verify(unsigned(Standard.ISO15118_2, "AuthorizationReq", pkis["iso2"]), "apphand", b"")
    with pytest.raises(TypeError):
        xmldsig.verify(ds.SignedInfo(canonicalization_method=None, signature_method=None), "iso2", b"")
    with pytest.raises(TypeError, match="signer"):
        xmldsig.verify(xmldsig.sign_message(unsigned(Standard.ISO15118_2, "AuthorizationReq", pkis["iso2"]), pkis["iso2"].key("contract_leaf")), "iso2", 42)
