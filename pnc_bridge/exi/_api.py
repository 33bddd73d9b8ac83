"""decode / encode for whole EXI documents of a named schema."""

from __future__ import annotations

import importlib
from types import ModuleType

from pnc_bridge.exi._runtime import ExiDecodeError, ExiEncodeError, Reader, Writer

#: schema names accepted by decode/encode, and their codec modules
SCHEMAS: dict[str, str] = {
    "apphand": "apphand",
    "din": "din",
    "iso2": "iso2",
    "iso20-common": "iso20_common",
    "iso20-ac": "iso20_ac",
    "iso20-dc": "iso20_dc",
    "iso20-acdp": "iso20_acdp",
    "iso20-wpt": "iso20_wpt",
    "xmldsig": "xmldsig",
}

_codecs: dict[str, ModuleType] = {}

#: EXI header of every ISO 15118 message: distinguishing bits 10, no options, version 1
EXI_HEADER = 0x80
#: default cap on one message. Real messages stay below 10 kB (CertificateInstallationRes
#: ~6 kB), but schema-maximal ones (ServiceDetailRes with 255 x 16 parameters) are larger;
#: memory use is bounded by the input size either way. The V2GTP layer caps payloads too.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class UnknownSchemaError(ValueError):
    pass


def codec(schema: str) -> ModuleType:
    mod = _codecs.get(schema)
    if mod is None:
        name = SCHEMAS.get(schema)
        if name is None:
            raise UnknownSchemaError(f"unknown schema {schema!r}; one of: {', '.join(SCHEMAS)}")
        mod = importlib.import_module(f"pnc_bridge.exi._generated.{name}")
        _codecs[schema] = mod
    return mod


def decode(schema: str, data: bytes, *, strict: bool = True, max_size: int = MAX_MESSAGE_BYTES):
    """Decode one EXI document (the V2GTP payload, EXI header included) of ``schema``
    into its typed message (``V2G_Message`` for DIN/ISO 15118-2, the message itself for
    ISO 15118-20 and the handshake).

    ``strict=False`` accepts values outside their XSD range or length facets (as some
    real vehicles send) instead of raising. Raises ``ExiDecodeError`` for anything else
    that is not a valid document of the schema; never another exception.
    """
    mod = codec(schema)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("data must be bytes")
    if len(data) > max_size:
        raise ExiDecodeError(0, f"message of {len(data)} bytes exceeds the {max_size}-byte limit")
    r = Reader(data, strict)
    if not data:
        raise ExiDecodeError(0, "empty input")
    header = r.bits(8)
    if header != EXI_HEADER:
        if header >> 6 != 0b10:
            raise ExiDecodeError(0, f"not an EXI body header (first byte {header:#04x}, expected 0x80)")
        if header & 0x20:
            raise ExiDecodeError(2, "EXI options in the header are not used by ISO 15118 and not supported")
        raise ExiDecodeError(3, "unsupported EXI format version")
    try:
        return mod._decode_document(r)
    except ExiDecodeError:
        raise
    except RecursionError:
        raise ExiDecodeError(r.pos, "nesting too deep") from None
    except Exception as exc:  # a generator bug must still surface as a decode error
        raise ExiDecodeError(r.pos, f"internal decoder error: {type(exc).__name__}: {exc}") from exc


def root_element(schema: str, message) -> tuple[str, int, object]:
    mod = codec(schema)
    choices = mod.ROOTS.get(type(message))
    if not choices:
        raise ExiEncodeError(
            type(message).__name__, f"is not a document element of schema {schema!r}"
        )
    return choices[0]


def encode(schema: str, message, *, root: str | None = None) -> bytes:
    """Encode a typed message as one EXI document of ``schema`` (header included).

    ``root`` names the document element where more than one global element has the
    message's type. Raises ``ExiEncodeError`` when the message does not conform to the
    schema (missing required parts, values outside their facets, wrong types).
    """
    mod = codec(schema)
    choices = mod.ROOTS.get(type(message))
    if not choices:
        raise ExiEncodeError(type(message).__name__, f"is not a document element of schema {schema!r}")
    if root is not None:
        choices = [c for c in choices if c[0] == root]
        if not choices:
            raise ExiEncodeError(type(message).__name__, f"cannot be encoded as element {root!r}")
    elif len(choices) > 1:
        raise ExiEncodeError(
            type(message).__name__,
            f"is the type of several document elements ({', '.join(c[0] for c in choices)}); pass root=",
        )
    _, code, enc = choices[0]
    w = Writer()
    w.bits(EXI_HEADER, 8)
    w.bits(code, mod.DOC_BITS)
    try:
        enc(w, message)
    except ExiEncodeError:
        raise
    except (AttributeError, TypeError) as exc:
        raise ExiEncodeError(type(message).__name__, f"malformed message object: {exc}") from exc
    return w.getvalue()


def _fragment_entry(mod, message, element):
    if element is not None:
        if isinstance(element, str):
            hits = [(qn, e) for qn, e in mod.FRAGMENT_ELEMENTS.items() if qn[1] == element]
        else:
            hits = [(tuple(element), mod.FRAGMENT_ELEMENTS.get(tuple(element)))] if tuple(element) in mod.FRAGMENT_ELEMENTS else []
        hits = [(qn, e) for qn, e in hits if type(message) in e[3]]
    else:
        hits = [(qn, e) for qn, e in mod.FRAGMENT_ELEMENTS.items() if type(message) in e[3]]
    if not hits:
        raise ExiEncodeError(type(message).__name__, "is not the type of an element of this schema")
    if len(hits) > 1:
        raise ExiEncodeError(
            type(message).__name__,
            f"is the type of several elements ({', '.join(q[1] for q, _ in hits)}); pass element=",
        )
    return hits[0]


def encode_fragment(schema: str, message, *, element: str | tuple[str, str] | None = None) -> bytes:
    """Encode one element as an EXI fragment of ``schema`` (EXI header, the element in
    the schema-informed fragment grammar, ED): the byte string over which ISO 15118
    computes XML-DSig digests ([V2G2-771]: canonicalization by EXI). ``element`` names
    the element (local name or (namespace, name)) where the type has several."""
    from pnc_bridge.exi._support import encode_relaxed

    mod = codec(schema)
    qn, (code, enc, relaxed, _classes) = _fragment_entry(mod, message, element)
    w = Writer()
    w.bits(EXI_HEADER, 8)
    w.bits(code, mod.FRAGMENT_BITS)
    try:
        if relaxed:
            encode_relaxed(w, mod, message)
        elif enc is None:
            raise ExiEncodeError(qn[1], "fragments of simple-typed elements are not supported")
        else:
            enc(w, message)
    except ExiEncodeError:
        raise
    except (AttributeError, TypeError) as exc:
        raise ExiEncodeError(type(message).__name__, f"malformed message object: {exc}") from exc
    w.bits(mod.FRAGMENT_ED, mod.FRAGMENT_BITS)
    return w.getvalue()
