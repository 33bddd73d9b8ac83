"""Messages built from the generated models' metadata, for property and differential tests.

- ``strategy(cls)``: a hypothesis strategy for valid-looking instances of a message class
  (facets respected; choice conflicts are filtered by the encoder in the tests).
- ``maximal(cls)``: a deterministic instance with every optional part present, lists at
  their maximum size (within a global budget), strings and binaries at maximum length.
"""

from __future__ import annotations

import enum

from hypothesis import strategies as st

from pnc_bridge import exi

# XML-safe characters (the oracle speaks XML), no surrogates, no control characters,
# no leading/trailing whitespace issues: whitespace is allowed inside the text only.
_TEXT = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp"))


def _int_bounds(facets):
    lo, hi = facets if facets else (None, None)
    return (lo if lo is not None else -(2**63)), (hi if hi is not None else 2**64 - 1)


def value_strategy(vt, facets, depth: int, nonempty: bool):
    if isinstance(vt, tuple):
        return st.one_of(*[strategy(c, depth + 1) for _, c in vt])
    if isinstance(vt, type) and issubclass(vt, enum.Enum):
        return st.sampled_from(list(vt))
    if isinstance(vt, type):
        return strategy(vt, depth + 1)
    if vt == "int":
        lo, hi = _int_bounds(facets)
        return st.integers(lo, hi)
    if vt == "bool":
        return st.booleans()
    mn, mx = facets if facets else (None, None)
    mn = mn or 0
    if nonempty:
        mn = max(mn, 1)
    mx = min(mx if mx is not None else 40, 40)
    if vt == "str":
        return st.text(_TEXT, min_size=mn, max_size=max(mn, mx)).filter(lambda s: s == s.strip() or not s.strip() == "")
    return st.binary(min_size=mn, max_size=max(mn, mx))


_cache: dict = {}


def strategy(cls, depth: int = 0, *, nonempty: bool = True):
    """Instances of ``cls``. ``nonempty`` avoids empty strings/binaries, whose EXI form
    differs between EXIficient (second-level EE) and devices (zero-length value)."""
    key = (cls, depth > 6, nonempty)
    if key in _cache:
        return _cache[key]
    kw = {}
    for name, _xml, _ns, kind, is_list, vt, optional, occurs, facets in cls._exi_fields:
        vs = value_strategy(vt, facets, depth, nonempty)
        if is_list:
            mn, mx = occurs
            cap = 0 if depth > 6 else 3
            kw[name] = st.lists(vs, min_size=mn, max_size=max(mn, min(mx if mx is not None else cap, cap)))
        elif optional:
            kw[name] = st.none() | vs if depth <= 6 else st.none()
        else:
            kw[name] = vs
    s = st.builds(lambda **k: _make(cls, k), **kw)
    _cache[key] = s
    return s


def _make(cls, values):
    obj = object.__new__(cls)
    for f in cls._exi_fields:
        setattr(obj, f[0], values[f[0]])
    return obj


# --------------------------------------------------------------------------- #
# maximal messages                                                            #
# --------------------------------------------------------------------------- #


class _Budget:
    def __init__(self, n: int) -> None:
        self.left = n


def _max_value(vt, facets, budget: _Budget, salt: int):
    if isinstance(vt, tuple):
        return maximal(vt[salt % len(vt)][1], budget, salt)
    if isinstance(vt, type) and issubclass(vt, enum.Enum):
        members = list(vt)
        return members[salt % len(members)]
    if isinstance(vt, type):
        return maximal(vt, budget, salt)
    if vt == "int":
        lo, hi = _int_bounds(facets)
        return hi if salt % 2 else lo
    if vt == "bool":
        return bool(salt % 2)
    mn, mx = facets if facets else (None, None)
    n = mx if mx is not None else 64
    n = max(n, mn or 0, 1)
    if vt == "str":
        return "".join(chr(0x41 + (salt + i) % 26) for i in range(n))
    return bytes((salt + i) % 256 for i in range(n))


def maximal(cls, budget: _Budget | None = None, salt: int = 0):
    budget = budget or _Budget(20000)
    values = {}
    for i, (name, _xml, _ns, kind, is_list, vt, optional, occurs, facets) in enumerate(cls._exi_fields):
        if is_list:
            mn, mx = occurs
            n = mx if mx is not None else 4
            if budget.left < n:
                n = mn
            budget.left -= n
            values[name] = [_max_value(vt, facets, budget, salt + i + j) for j in range(n)]
        else:
            budget.left -= 1
            values[name] = _max_value(vt, facets, budget, salt + i)
    return _make(cls, values)


def make_encodable(schema: str, msg, root: str | None = None, tries: int = 200):
    """Drop alternatives the encoder rejects (choices) until the message encodes."""
    for _ in range(tries):
        try:
            exi.encode(schema, msg, root=root)
            return msg
        except exi.ExiEncodeError as exc:
            cls_name, _, field = exc.path.partition(".")
            if not field:
                raise
            if not _drop(msg, cls_name, field):
                raise
    raise AssertionError("could not make the message encodable")


def _drop(obj, cls_name: str, field: str, seen=None) -> bool:
    seen = seen if seen is not None else set()
    if id(obj) in seen or not hasattr(type(obj), "_exi_fields"):
        return False
    seen.add(id(obj))
    hit = False
    if type(obj).__name__ == cls_name and hasattr(obj, field):
        cur = getattr(obj, field)
        if isinstance(cur, list):
            if cur:
                cur.pop()
                hit = True
        elif cur is not None:
            setattr(obj, field, None)
            hit = True
    for f in type(obj)._exi_fields:
        v = getattr(obj, f[0])
        for item in v if isinstance(v, list) else [v]:
            if hasattr(type(item), "_exi_fields"):
                hit = _drop(item, cls_name, field, seen) or hit
    return hit
