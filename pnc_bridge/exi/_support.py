"""Helpers the generated codecs call on their cold paths (errors, schema deviations)."""

from __future__ import annotations

from pnc_bridge.exi._runtime import ExiDecodeError, ExiEncodeError, Reader

# Second-level events of a simple type's first state (no EE at the first level):
# EE, AT(xsi:type), AT(xsi:nil), AT(*), AT(*)[untyped], SE(*), CH[untyped]
_EV_SIMPLE_FIRST = ("EE", "AT_XSI_TYPE", "AT_XSI_NIL", "AT_ANY", "AT_INVALID", "SE_ANY", "CH")
# second level of an element-content state that has EE: SE(*), CH[untyped]
_EV_ELEM_EE = ("SE_ANY", "CH")

_DEVIATIONS = {
    "EE": "an element ended before its required content",
    "AT_XSI_TYPE": "xsi:type (type substitution)",
    "AT_XSI_NIL": "xsi:nil",
    "AT_ANY": "an attribute not declared in the schema",
    "AT_INVALID": "an attribute value outside its schema type",
    "SE_ANY": "an element not declared here in the schema",
    "CH": "character content not declared here in the schema",
}


def _second(r: Reader, nbits: int, events: tuple[str, ...], what: str) -> str:
    at = r.pos
    code = r.bits(nbits) if nbits else 0
    if code >= len(events):
        raise ExiDecodeError(at, f"{what}: second-level event code {code} out of range")
    return events[code]


def _escape(r: Reader, nbits: int, events: tuple[str, ...], what: str):
    ev = _second(r, nbits, events, what)
    raise ExiDecodeError(r.pos, f"{what}: schema-deviating content ({_DEVIATIONS[ev]}) is not accepted")


def _simple_escape_bits(r: Reader, nbits: int, events: tuple[str, ...], empty, what: str):
    ev = _second(r, nbits, events, what)
    if ev == "EE":
        if empty is None:
            raise ExiDecodeError(r.pos, f"{what}: empty content is not a valid value of its type")
        return empty
    raise ExiDecodeError(r.pos, f"{what}: schema-deviating content ({_DEVIATIONS[ev]}) is not accepted")


def _simple_escape(r: Reader, empty, what: str):
    """Escape at the first state of a simple-typed element. EXIficient writes an empty
    string or binary value as a second-level EE there; real devices write a zero-length
    value. Both decode to the empty value."""
    return _simple_escape_bits(r, 3, _EV_SIMPLE_FIRST, empty, what)


def _bad(path: str, value, expected: str):
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise ExiEncodeError(path, f"{shown} is not {expected}")


def _order(path: str, state: int, expect: dict[int, str]):
    raise ExiEncodeError(
        path, f"not allowed at this point of the message (the schema expects: {expect.get(state, '?')})"
    )


def encode_relaxed(w, mod, obj) -> None:
    """An element in the relaxed element fragment grammar (EXI 8.5.3), used where one
    qname is declared with different types (ISO 15118-2's eMAID). Attributes are typed
    as in the schema, simple content is an untyped (string) value."""
    from pnc_bridge.exi._convert import _lex_out

    bits0, ch0, ee0 = mod.RELAXED_EF0
    bits1, _ch1, ee1 = mod.RELAXED_EF1
    content = None
    for name, xml, ns, kind, _is_list, vt, *_ in type(obj)._exi_fields:
        v = getattr(obj, name)
        if v is None:
            continue
        if kind == "attr":
            code, dt = mod.RELAXED_ATTRIBUTES[(ns, xml)]
            w.bits(code, bits0)
            if dt == "string":
                w.string(_lex_out(vt, v))
            elif dt in ("uint",):
                w.uint(v)
            elif dt in ("int",):
                w.integer(v)
            else:
                raise ExiEncodeError(f"{type(obj).__name__}.{name}", f"attribute type {dt} not supported in a relaxed fragment")
        elif kind == "value":
            content = _lex_out(vt, v)
        else:
            raise ExiEncodeError(type(obj).__name__, "element content in a relaxed fragment is not supported")
    if content is None:
        w.bits(ee0, bits0)
        return
    w.bits(ch0, bits0)
    w.string(content)
    w.bits(ee1, bits1)
