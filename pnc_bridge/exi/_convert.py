"""Typed messages to and from XML and JSON-ready dicts.

Driven by the ``_exi_fields`` table of each generated class: (python name, XML local
name, XML namespace, kind, is_list, value type). XML follows the XSD exactly (it
validates against the schema); the dict form keys elements by their XML local name,
attributes as ``"@Name"`` and simple content as ``"#value"``, with binaries as hex
(hexBinary) or base64 (base64Binary) text, as in XML.

Conversion checks structure and lexical values; facets and occurrence rules are
checked by encoding (``validate``), in one place: the generated encoder.
"""

from __future__ import annotations

import base64
import binascii
import enum
from functools import lru_cache

from lxml import etree

from pnc_bridge.exi._api import codec, encode
from pnc_bridge.exi._runtime import ExiEncodeError

XSI = "http://www.w3.org/2001/XMLSchema-instance"

#: prefixes used when writing XML (any prefix is accepted when reading)
PREFIXES = {
    "urn:iso:15118:2:2010:AppProtocol": "app",
    "urn:din:70121:2012:MsgDef": "v2gci_d",
    "urn:din:70121:2012:MsgHeader": "v2gci_h",
    "urn:din:70121:2012:MsgBody": "v2gci_b",
    "urn:din:70121:2012:MsgDataTypes": "v2gci_t",
    "urn:iso:15118:2:2013:MsgDef": "v2gci_d",
    "urn:iso:15118:2:2013:MsgHeader": "v2gci_h",
    "urn:iso:15118:2:2013:MsgBody": "v2gci_b",
    "urn:iso:15118:2:2013:MsgDataTypes": "v2gci_t",
    "urn:iso:std:iso:15118:-20:CommonTypes": "ct",
    "urn:iso:std:iso:15118:-20:CommonMessages": "cm",
    "urn:iso:std:iso:15118:-20:AC": "ac",
    "urn:iso:std:iso:15118:-20:DC": "dc",
    "urn:iso:std:iso:15118:-20:ACDP": "acdp",
    "urn:iso:std:iso:15118:-20:WPT": "wpt",
    "http://www.w3.org/2000/09/xmldsig#": "ds",
}


class MessageFormatError(ValueError):
    """XML or JSON input that does not describe a message of the schema."""


# --------------------------------------------------------------------------- #
# simple values                                                               #
# --------------------------------------------------------------------------- #


def _lex_out(vt, v) -> str:
    if vt == "bool":
        return "true" if v else "false"
    if vt == "hex":
        return bytes(v).hex().upper()
    if vt == "b64":
        return base64.b64encode(bytes(v)).decode("ascii")
    if isinstance(vt, type) and issubclass(vt, enum.Enum):
        return v.value if isinstance(v, enum.Enum) else str(v)
    return str(v)


def _lex_in(vt, text: str, where: str):
    try:
        if vt == "int":
            return int(text.strip())
        if vt == "bool":
            t = text.strip()
            if t in ("true", "1"):
                return True
            if t in ("false", "0"):
                return False
            raise ValueError(f"not a boolean: {t!r}")
        if vt == "hex":
            return bytes.fromhex(text.strip())
        if vt == "b64":
            return base64.b64decode("".join(text.split()), validate=True)
        if vt == "str":
            return text
        if isinstance(vt, type) and issubclass(vt, enum.Enum):
            return vt(text.strip())
    except (ValueError, binascii.Error) as exc:
        raise MessageFormatError(f"{where}: {exc}") from None
    raise MessageFormatError(f"{where}: unsupported value type {vt!r}")


def _json_out(vt, v):
    if vt in ("int", "bool", "str"):
        return v
    return _lex_out(vt, v)


def _json_in(vt, v, where: str):
    if vt == "int":
        if type(v) is not int:
            raise MessageFormatError(f"{where}: expected an integer, got {v!r}")
        return v
    if vt == "bool":
        if type(v) is not bool:
            raise MessageFormatError(f"{where}: expected true/false, got {v!r}")
        return v
    if not isinstance(v, str):
        raise MessageFormatError(f"{where}: expected a string, got {v!r}")
    return _lex_in(vt, v, where)


# --------------------------------------------------------------------------- #
# field lookup tables                                                         #
# --------------------------------------------------------------------------- #


@lru_cache(maxsize=None)
def _child_map(cls) -> dict:
    """(namespace, local) of a child element -> (field, is_list, value class or type)."""
    out = {}
    for name, xml, ns, kind, is_list, vt, *_ in cls._exi_fields:
        if kind != "elem":
            continue
        if isinstance(vt, tuple):
            for qn, mcls in vt:
                out[qn] = (name, is_list, mcls)
        else:
            out[(ns, xml)] = (name, is_list, vt)
    return out


def _member_name(vt: tuple, value) -> tuple[str, str]:
    for qn, mcls in vt:
        if type(value) is mcls:
            return qn
    raise MessageFormatError(
        f"{type(value).__name__} is not one of {', '.join(q[1] for q, _ in vt)}"
    )


def _new(cls, values: dict):
    obj = object.__new__(cls)
    for name, _xml, _ns, _kind, is_list, _vt, *_ in cls._exi_fields:
        setattr(obj, name, values.get(name, [] if is_list else None))
    return obj


def _root(schema: str, message, root: str | None) -> tuple[str, str]:
    mod = codec(schema)
    names = [qn for qn, cls in mod.ROOT_ELEMENTS.items() if cls is type(message)]
    if root is not None:
        names = [qn for qn in names if qn[1] == root]
    if not names:
        raise MessageFormatError(f"{type(message).__name__} is not a document element of {schema!r}")
    if len(names) > 1:
        raise MessageFormatError(f"{type(message).__name__}: several document elements; pass root=")
    return names[0]


# --------------------------------------------------------------------------- #
# XML                                                                         #
# --------------------------------------------------------------------------- #


def to_xml(schema: str, message, *, root: str | None = None, pretty: bool = False) -> str:
    """The message as an XML document (no declaration) that validates against the XSD."""
    ns, local = _root(schema, message, root)
    nsmap = {p: u for u, p in PREFIXES.items() if u.startswith(ns.rsplit(":", 1)[0]) or u == ns}
    nsmap.setdefault("ds", "http://www.w3.org/2000/09/xmldsig#")
    el = etree.Element(etree.QName(ns or None, local), nsmap={p: u for p, u in nsmap.items()})
    _fill_xml(el, message)
    return etree.tostring(el, encoding="unicode", pretty_print=pretty)


def _fill_xml(el, obj) -> None:
    try:
        _fill_xml_fields(el, obj)
    except ValueError as exc:
        if isinstance(exc, MessageFormatError):
            raise
        # e.g. NUL characters: valid in EXI strings, not representable in XML 1.0
        raise MessageFormatError(f"{type(obj).__name__}: value not representable in XML 1.0: {exc}") from None


def _fill_xml_fields(el, obj) -> None:
    for name, xml, ns, kind, is_list, vt, *_ in type(obj)._exi_fields:
        v = getattr(obj, name)
        if v is None:
            continue
        if kind == "attr":
            el.set(etree.QName(ns, xml) if ns else xml, _lex_out(vt, v))
        elif kind == "value":
            el.text = _lex_out(vt, v)
        else:
            for item in v if is_list else (v,):
                if isinstance(vt, tuple):
                    cns, clocal = _member_name(vt, item)
                    child = etree.SubElement(el, etree.QName(cns or None, clocal))
                    _fill_xml_fields(child, item)
                else:
                    child = etree.SubElement(el, etree.QName(ns or None, xml))
                    if isinstance(vt, type) and hasattr(vt, "_exi_fields"):
                        _fill_xml_fields(child, item)
                    else:
                        child.text = _lex_out(vt, item)


def from_xml(schema: str, xml, *, validate: bool = True):
    """Parse an XML document of ``schema`` into its typed message. With ``validate``
    (the default) the message is also checked against every XSD facet and occurrence
    rule; raises ``MessageFormatError`` or ``ExiEncodeError``."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    try:
        el = etree.fromstring(xml, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False))
    except etree.XMLSyntaxError as exc:
        raise MessageFormatError(f"not well-formed XML: {exc}") from None
    q = etree.QName(el)
    mod = codec(schema)
    cls = mod.ROOT_ELEMENTS.get((q.namespace or "", q.localname))
    if cls is None:
        raise MessageFormatError(f"<{q.localname}> ({q.namespace}) is not a document element of {schema!r}")
    msg = _read_xml(el, cls, q.localname)
    if validate:
        encode(schema, msg, root=q.localname)
    return msg


def _read_xml(el, cls, path: str):
    values: dict = {}
    fields = cls._exi_fields
    attrs = {(ns, xml): (name, vt) for name, xml, ns, kind, _l, vt, *_ in fields if kind == "attr"}
    for key, text in el.attrib.items():
        aq = etree.QName(key)
        if aq.namespace == XSI:
            raise MessageFormatError(f"{path}: xsi attributes are not supported")
        hit = attrs.get((aq.namespace or "", aq.localname))
        if hit is None:
            raise MessageFormatError(f"{path}: unexpected attribute {aq.localname}")
        values[hit[0]] = _lex_in(hit[1], text, f"{path}@{aq.localname}")
    value_field = next((f for f in fields if f[3] == "value"), None)
    if value_field is not None:
        values[value_field[0]] = _lex_in(value_field[5], el.text or "", path)
    children = _child_map(cls)
    for child in el:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        cq = etree.QName(child)
        hit = children.get((cq.namespace or "", cq.localname))
        cpath = f"{path}/{cq.localname}"
        if hit is None:
            raise MessageFormatError(f"{cpath}: element not expected in {cls.__name__}")
        name, is_list, vt = hit
        if isinstance(vt, type) and hasattr(vt, "_exi_fields"):
            v = _read_xml(child, vt, cpath)
        else:
            if len(child):
                raise MessageFormatError(f"{cpath}: simple value with child elements")
            v = _lex_in(vt, child.text or "", cpath)
        if is_list:
            values.setdefault(name, []).append(v)
        elif name in values:
            raise MessageFormatError(f"{cpath}: element occurs more than once")
        else:
            values[name] = v
    if value_field is None and (el.text or "").strip():
        raise MessageFormatError(f"{path}: unexpected text content")
    return _new(cls, values)


# --------------------------------------------------------------------------- #
# JSON-ready dicts                                                            #
# --------------------------------------------------------------------------- #


def to_dict(schema: str, message, *, root: str | None = None) -> dict:
    """``{"<document element>": {...}}`` with XML names as keys (see module doc)."""
    ns, local = _root(schema, message, root)
    return {local: _obj_dict(message)}


def _obj_dict(obj) -> dict:
    out: dict = {}
    for name, xml, ns, kind, is_list, vt, *_ in type(obj)._exi_fields:
        v = getattr(obj, name)
        if v is None or (is_list and not v):
            continue
        if kind == "attr":
            out["@" + xml] = _json_out(vt, v)
        elif kind == "value":
            out["#value"] = _json_out(vt, v)
        elif isinstance(vt, tuple):
            for item in v if is_list else (v,):
                key = _member_name(vt, item)[1]
                if is_list:
                    out.setdefault(key, []).append(_obj_dict(item))
                else:
                    out[key] = _obj_dict(item)
        elif isinstance(vt, type) and hasattr(vt, "_exi_fields"):
            out[xml] = [_obj_dict(i) for i in v] if is_list else _obj_dict(v)
        else:
            out[xml] = [_json_out(vt, i) for i in v] if is_list else _json_out(vt, v)
    return out


def from_dict(schema: str, data: dict, *, validate: bool = True):
    """Inverse of ``to_dict``; raises ``MessageFormatError`` or ``ExiEncodeError``."""
    if not isinstance(data, dict) or len(data) != 1:
        raise MessageFormatError('expected one key: {"<document element>": {...}}')
    (local, body), = data.items()
    mod = codec(schema)
    matches = [cls for (ns, ln), cls in mod.ROOT_ELEMENTS.items() if ln == local]
    if not matches:
        raise MessageFormatError(f"{local!r} is not a document element of {schema!r}")
    msg = _dict_obj(body, matches[0], local)
    if validate:
        encode(schema, msg, root=local)
    return msg


def _dict_obj(d, cls, path: str):
    if not isinstance(d, dict):
        raise MessageFormatError(f"{path}: expected an object")
    values: dict = {}
    by_key: dict = {}
    for name, xml, ns, kind, is_list, vt, *_ in cls._exi_fields:
        if kind == "attr":
            by_key["@" + xml] = (name, False, vt)
        elif kind == "value":
            by_key["#value"] = (name, False, vt)
        elif isinstance(vt, tuple):
            for (mns, mlocal), mcls in vt:
                by_key[mlocal] = (name, is_list, mcls)
        else:
            by_key[xml] = (name, is_list, vt)
    for key, v in d.items():
        hit = by_key.get(key)
        cpath = f"{path}/{key}"
        if hit is None:
            raise MessageFormatError(f"{cpath}: not a field of {cls.__name__}")
        name, is_list, vt = hit
        items = v if is_list else [v]
        if is_list and not isinstance(v, list):
            raise MessageFormatError(f"{cpath}: expected a list")
        conv = []
        for item in items:
            if isinstance(vt, type) and hasattr(vt, "_exi_fields"):
                conv.append(_dict_obj(item, vt, cpath))
            else:
                conv.append(_json_in(vt, item, cpath))
        if is_list:
            values.setdefault(name, []).extend(conv)
        else:
            if name in values:
                raise MessageFormatError(f"{cpath}: more than one alternative given")
            values[name] = conv[0]
    return _new(cls, values)


def validate(schema: str, message, *, root: str | None = None) -> None:
    """Raise ``ExiEncodeError`` unless the message conforms to every XSD facet and
    occurrence rule of ``schema`` (the check the encoder makes)."""
    encode(schema, message, root=root)


__all__ = [
    "MessageFormatError",
    "ExiEncodeError",
    "from_dict",
    "from_xml",
    "to_dict",
    "to_xml",
    "validate",
]
