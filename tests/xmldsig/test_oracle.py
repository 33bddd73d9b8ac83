"""EXIficient-encoded fragments give the same digests as ours.

For generated messages of every signed kind (ISO 15118-2 and ISO 15118-20), the XML of
each Id-carrying element (cut out of the message's XML with lxml) is encoded by
EXIficient in fragment mode with the message schema's grammar, and SignedInfo with the
XML-DSig schema's grammar; the bytes, and so the digests and the signed octets, must be
ours. The signature we made is then checked over EXIficient's SignedInfo octets with
``cryptography`` directly. One JVM per schema and grammar.

The batch: the test-PKI messages of every kind (signed), schema-maximal messages, and a
reproducible hypothesis sample, each with every Id-carrying element given an Id.
"""

from __future__ import annotations

import copy

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, utils
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from lxml import etree

from pnc_bridge import exi, xmldsig
from pnc_bridge.exi._api import codec
from pnc_bridge.messages import iso2, iso20
from pnc_bridge.xmldsig import Standard
from pnc_bridge.xmldsig._core import iter_elements
from tests.exi import oracle
from tests.exi.gen import make_encodable, maximal, strategy, value_strategy
from tests.xmldsig.messages import SESSION_ID, unsigned

DS = "http://www.w3.org/2000/09/xmldsig#"
#: generated messages per schema
BATCH = 12

#: every element that carries an Id outside XML-DSig's own, per schema
SIGNED_PARTS = {
    "iso2": [
        "AuthorizationReq", "CertificateInstallationReq", "CertificateUpdateReq", "ContractSignatureCertChain",
        "ContractSignatureEncryptedPrivateKey", "DHpublickey", "MeteringReceiptReq", "SAProvisioningCertificateChain",
        "SalesTariff", "eMAID",
    ],
    "iso20-common": [
        "AbsolutePriceSchedule", "OEMProvisioningCertificateChain", "PnC_AReqAuthorizationMode",
        "PriceLevelSchedule", "SignedInstallationData", "SignedMeteringData",
    ],
}


def _as_message(schema, body):
    if schema == "iso2":
        return iso2.V2G_Message(header=iso2.MessageHeader(session_id=SESSION_ID), body=iso2.Body(body_element=body))
    return body


def _with_ids(msg):
    """Every Id-carrying element gets a unique Id, as a signer would give them."""
    for n, (_q, part) in enumerate(iter_elements(msg), 1):
        part.id = f"ID{n}"
    return msg


def _encodable(schema, msg) -> bool:
    """Drop generated choice conflicts; False when the message still does not encode."""
    try:
        make_encodable(schema, msg)
        return True
    except (exi.ExiEncodeError, AssertionError):
        return False


def _parts(schema, msg):
    """(Id, element qname, our fragment, XML of the element cut from the message XML)."""
    root = etree.fromstring(exi.to_xml(schema, msg).encode())
    by_id = {}
    for el in root.iter():
        for k, v in el.attrib.items():
            if etree.QName(k).localname == "Id":
                by_id[v] = el
    out = []
    for ident, qname, part in xmldsig.iter_identified(msg):
        el = by_id[ident]
        assert (etree.QName(el).namespace, etree.QName(el).localname) == qname
        out.append((ident, qname, exi.encode_fragment(schema, part, element=qname), etree.tostring(el).decode()))
    return out


def _signed_info_xml(schema, msg) -> str:
    root = etree.fromstring(exi.to_xml(schema, msg).encode())
    (el,) = root.iter(f"{{{DS}}}SignedInfo")
    return etree.tostring(el).decode()


def _price_levels(msg, data) -> None:
    """The other alternative of the -20 price schedule choice, drawn."""
    for _q, part in list(iter_elements(msg)):
        if isinstance(part, iso20.AbsolutePriceSchedule):
            holder = _holder(msg, part)
            holder.absolute_price_schedule = None
            holder.price_level_schedule = data.draw(strategy(iso20.PriceLevelSchedule))
            _fix_choices(holder.price_level_schedule, data)


#: messages that host signed parts the PKI-built kinds do not have (maximal forms), with
#: a change that makes a copy use the other alternative of a choice
HOSTS = {
    "iso2": [(iso2.ChargeParameterDiscoveryRes, None)],
    "iso20-common": [(iso20.ScheduleExchangeRes, None), (iso20.ScheduleExchangeRes, _price_levels)],
}
#: drawn variants of each signed part, per host message
DRAWS = 3


def _fix_choices(obj, data):
    """Exactly one alternative of each required choice. The models mark a choice member
    as optional with minOccurs 1; consecutive such fields are one choice."""
    fields = getattr(type(obj), "_exi_fields", None)
    if fields is None or type(obj).__module__.endswith("xmldsig"):
        return  # (XML-DSig's optional sequences look the same; they are not choices)
    group: list = []
    for f in (*fields, None):
        if f is not None and f[3] == "elem" and f[6] and not f[4] and f[7][0] == 1:
            group.append(f)
            continue
        if len(group) > 1:
            chosen = data.draw(st.sampled_from(group))
            for g in group:
                if g is not chosen:
                    setattr(obj, g[0], None)
            if getattr(obj, chosen[0]) is None:
                setattr(obj, chosen[0], data.draw(value_strategy(chosen[5], chosen[8], 6, True)))
        group = []
    for f in fields:
        v = getattr(obj, f[0])
        for item in v if isinstance(v, list) else [v]:
            _fix_choices(item, data)


def _holder(obj, part):
    """The object one of whose fields holds ``part``."""
    for f in getattr(type(obj), "_exi_fields", ()):
        v = getattr(obj, f[0])
        for item in v if isinstance(v, list) else [v]:
            if item is part:
                return obj
            found = _holder(item, part) if hasattr(type(item), "_exi_fields") else None
            if found is not None:
                return found
    return None


def _replace(obj, old, new) -> bool:
    for f in getattr(type(obj), "_exi_fields", ()):
        v = getattr(obj, f[0])
        if v is old:
            setattr(obj, f[0], new)
            return True
        items = v if isinstance(v, list) else [v]
        for i, item in enumerate(items):
            if item is old:
                v[i] = new
                return True
            if hasattr(type(item), "_exi_fields") and _replace(item, old, new):
                return True
    return False


def _batch(schema, data, real):
    """Hosts (the real kinds and maximal messages) and, for each signed part of each
    host, drawn variants of that part in its place."""
    hosts = list(real)
    for cls, tweak in HOSTS[schema]:
        m = _as_message(schema, maximal(cls))
        m.header.signature = None  # signed below
        _fix_choices(m, data)
        if tweak:
            tweak(m, data)
        if _encodable(schema, m):
            hosts.append(m)
    msgs = []
    for host in hosts:
        for index, (_q, part) in enumerate(list(iter_elements(host))):
            for _ in range(DRAWS):
                m = copy.deepcopy(host)
                target = list(iter_elements(m))[index][1]
                new = data.draw(strategy(type(part)))
                _fix_choices(new, data)
                assert _replace(m, target, new)
                msgs.append(m)
    msgs = [_with_ids(m) for m in hosts + msgs]
    return [m for m in msgs if _encodable(schema, m) and any(True for _ in xmldsig.iter_identified(m))]


def _compare_parts(schema, msgs) -> tuple[int, list[str]]:
    rows = [p for m in msgs for p in _parts(schema, m)]
    answers = oracle.run("encode", schema, [xml for *_, xml in rows], "--fragment")
    problems = []
    for (ident, qname, ours, xml), ans in zip(rows, answers):
        if "error" in ans:
            problems.append(f"{qname[1]}: EXIficient cannot encode the fragment: {ans['error'][:200]}")
            continue
        theirs = bytes.fromhex(ans["hex"])
        for algo in (hashes.SHA256, hashes.SHA512):
            h1, h2 = hashes.Hash(algo()), hashes.Hash(algo())
            h1.update(ours)
            h2.update(theirs)
            if h1.finalize() != h2.finalize():
                problems.append(f"{qname[1]} ({ident}): {algo.name} digests differ\n ours   {ours.hex()[:160]}\n oracle {theirs.hex()[:160]}")
                break
    return len(rows), problems


def _check_signed_info(schema, signed) -> list[str]:
    answers = oracle.run("encode", "xmldsig", [_signed_info_xml(schema, m) for m, _ in signed])
    suite = xmldsig.suite_for(schema)
    problems = []
    for (msg, public), ans in zip(signed, answers):
        sig = msg.header.signature
        if "error" in ans:
            problems.append(f"EXIficient cannot encode SignedInfo: {ans['error'][:200]}")
            continue
        theirs = bytes.fromhex(ans["hex"])
        if theirs != xmldsig.signed_info_bytes(suite, sig.signed_info):
            problems.append(f"SignedInfo differs\n ours   {xmldsig.signed_info_bytes(suite, sig.signed_info).hex()[:160]}\n oracle {theirs.hex()[:160]}")
            continue
        # our signature verifies over EXIficient's octets, checked with the primitive itself
        value = sig.signature_value.value
        if isinstance(public, ed448.Ed448PublicKey):
            public.verify(value, theirs)
        else:
            half = len(value) // 2
            algo = hashes.SHA256() if half == 32 else hashes.SHA512()
            public.verify(
                utils.encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big")),
                theirs,
                ec.ECDSA(algo),
            )
    return problems


def _sign_all(schema, msgs, keys):
    """Each message signed over all of its Id-carrying parts, cycling through ``keys``."""
    out = []
    for n, msg in enumerate(msgs):
        key = keys[n % len(keys)]
        ids = [i for i, _, _ in xmldsig.iter_identified(msg)]
        signed = xmldsig.with_signature(msg, xmldsig.sign(msg, schema, ids, key))
        out.append((signed, key.public_key()))
    return out


@pytest.mark.oracle
@pytest.mark.parametrize("schema", list(SIGNED_PARTS))
@seed(15118)
@settings(max_examples=1, deadline=None, database=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fragments_and_digests_equal_exificient(schema, data, pkis):
    oracle.require()
    std = xmldsig.suite_for(schema).standard
    variants = ("iso2",) if std is Standard.ISO15118_2 else ("iso20", "iso20-ed448")
    real = [unsigned(s, name, pkis[v]) for v in variants for s, name in xmldsig.KINDS if s is std]
    msgs = _batch(schema, data, real)
    n, problems = _compare_parts(schema, msgs)
    assert not problems, "\n".join(problems[:8])
    # every signed part of the schema was among them, real and drawn
    seen = {q[1] for m in msgs for _, q, _ in xmldsig.iter_identified(m)}
    assert set(SIGNED_PARTS[schema]) <= seen, set(SIGNED_PARTS[schema]) - seen
    assert n >= 3 * len(SIGNED_PARTS[schema])
    keys = [pkis[v].key("contract_leaf") for v in variants]
    problems = _check_signed_info(schema, _sign_all(schema, msgs, keys))
    assert not problems, "\n".join(problems[:8])


def test_only_common_messages_has_signed_parts_in_iso20():
    """ISO 15118-20 AC, DC, ACDP and WPT declare no element with an Id outside XML-DSig's
    own: their messages can carry a header Signature but have nothing of their own to
    reference. All signed -20 parts live in CommonMessages."""
    for schema in ("iso20-ac", "iso20-dc", "iso20-acdp", "iso20-wpt", "iso20-common"):
        own = sorted(
            qn[1]
            for qn, (_c, _e, _r, classes) in codec(schema).FRAGMENT_ELEMENTS.items()
            if qn[0] != DS and any(any(f[1] == "Id" and f[3] == "attr" for f in c._exi_fields) for c in classes)
        )
        if schema == "iso20-common":
            assert own == SIGNED_PARTS[schema]
        else:
            assert own == [], schema


def test_signed_info_in_the_message_schema_grammar_differs_only_in_the_event_code(pkis):
    """Why the grammar choice matters and how much: SignedInfo encoded as a fragment of the
    -20 message schema differs from the XML-DSig-schema fragment (the one signed) only in
    the width and value of the first event code and of ED: the element's position among
    the schema set's qnames. Everything between is the same bit string."""
    for variant in ("iso20", "iso20-ed448"):
        msg = xmldsig.sign_message(
            unsigned(Standard.ISO15118_20, "AuthorizationReq", pkis[variant]), pkis[variant].key("contract_leaf")
        )
        si = msg.header.signature.signed_info
        own = exi.encode_fragment("xmldsig", si)
        common = exi.encode_fragment("iso20-common", si)
        assert own != common
        bits = lambda b: "".join(f"{x:08b}" for x in b)  # noqa: E731
        own_bits, common_bits = bits(own), bits(common)
        w_own, w_common = codec("xmldsig").FRAGMENT_BITS, codec("iso20-common").FRAGMENT_BITS
        body = len(own_bits) - 8 - w_own - 8  # minus header, SE code, and at most ED + padding
        assert own_bits[8 + w_own : 8 + w_own + body] == common_bits[8 + w_common : 8 + w_common + body]
