"""Our generated grammars against the grammars precompiled into EXIficient's jar (the
oracle), state by state: for every document element, the same states, the same
productions in the same order (so the same event codes and code widths), the same
element grammars, and compatible datatypes. A stronger check than comparing bytes:
it covers every path, including ones no vector or generated message takes.

The dump comes from tests/exi/grammar_dump/GrammarDump.java (ours), compiled against
the oracle's EXICodec.jar at test time.
"""

from __future__ import annotations

import json
import subprocess
from functools import lru_cache
from pathlib import Path

import pytest

from pnc_bridge.exi._generator import UNROLL_LIMIT, _fetcher
from pnc_bridge.exi._generator.grammar import (
    ELEMENT_CONTENT,
    FIRST_START_TAG,
    START_TAG,
    GrammarBuilder,
    State,
    _occ_of,
)
from pnc_bridge.exi._generator.xsd import ComplexType, SchemaSet
from tests.exi import oracle

pytestmark = pytest.mark.oracle

GRAMMAR_CLASS = {
    "apphand": "CommonAppProtocol",
    "din": "DINSpec_70121",
    "iso2": "ISO15118_2Grammar",
    "iso20-common": "ISO15118_20_V2G_CI_CommonMessages",
    "iso20-ac": "ISO15118_20_V2G_CI_AC",
    "iso20-dc": "ISO15118_20_V2G_CI_DC",
    "iso20-acdp": "ISO15118_20_V2G_CI_ACDP",
    "iso20-wpt": "ISO15118_20_V2G_CI_WPT",
    "xmldsig": "XMLDSIG_Core_Schema_Grammar",
}
KIND = {
    FIRST_START_TAG: "SCHEMA_INFORMED_FIRST_START_TAG_CONTENT",
    START_TAG: "SCHEMA_INFORMED_START_TAG_CONTENT",
    ELEMENT_CONTENT: "SCHEMA_INFORMED_ELEMENT_CONTENT",
}
EVENT = {"AT": "ATTRIBUTE", "SE": "START_ELEMENT", "SE_ANY": "START_ELEMENT_GENERIC", "EE": "END_ELEMENT", "CH": "CHARACTERS", "CH_MIXED": "CHARACTERS_GENERIC"}
DATATYPE = {
    "nbit": "NBIT_UNSIGNED_INTEGER", "uint": "UNSIGNED_INTEGER", "int": "INTEGER", "bool": "BOOLEAN",
    "string": "STRING", "hex": "BINARY_HEX", "b64": "BINARY_BASE64", "enum": "ENUMERATION",
}


@lru_cache(maxsize=None)
def _dump(schema: str) -> dict[int, dict]:
    oracle.require()
    jar = oracle.jar()
    out = Path(jar).parent / "grammar-dump-classes"
    src = Path(__file__).parent / "grammar_dump" / "GrammarDump.java"
    if not (out / "GrammarDump.class").is_file() or (out / "GrammarDump.class").stat().st_mtime < src.stat().st_mtime:
        out.mkdir(exist_ok=True)
        subprocess.run(["javac", "-nowarn", "-cp", str(jar), "-d", str(out), str(src)], check=True, capture_output=True)
    proc = subprocess.run(
        ["java", "-cp", f"{jar}:{out}", "GrammarDump", "com.siemens.ct.exi.main.generatedgrammar." + GRAMMAR_CLASS[schema]],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return {d["id"]: d for d in map(json.loads, proc.stdout.splitlines())}


def _compare_datatype(ours, theirs, where, problems):
    if theirs is None or ours is None:
        return
    if DATATYPE[ours.kind] != theirs["type"]:
        problems.append(f"{where}: datatype {ours.kind} vs {theirs['type']}")
    elif ours.kind == "nbit" and (str(ours.lo), str(ours.hi)) != (theirs["lo"], theirs["hi"]):
        problems.append(f"{where}: n-bit range {ours.lo}..{ours.hi} vs {theirs['lo']}..{theirs['hi']}")
    elif ours.kind == "enum" and len(ours.values) != theirs["n"]:
        problems.append(f"{where}: enumeration of {len(ours.values)} vs {theirs['n']}")


@pytest.mark.parametrize("schema", list(GRAMMAR_CLASS))
def test_grammars_equal_exificient(schema):
    G = _dump(schema)
    fetch = _fetcher()
    ss = SchemaSet(fetch.schema_file(schema))
    gb = GrammarBuilder(ss, UNROLL_LIMIT[schema])
    problems: list[str] = []
    doc = G[G[0]["prods"][0]["next"]]
    ours_roots = gb.global_elements()
    theirs_roots = [p for p in doc["prods"] if p["ev"] == "START_ELEMENT"]
    assert [d.name for d in ours_roots] == [(p["ns"], p["name"]) for p in theirs_roots]
    assert [p["ev"] for p in doc["prods"]][-1] == "START_ELEMENT_GENERIC"

    seen: set = set()

    def walk_type(t, gid: int, where: str):
        g = gb.grammar(t)
        walk(g, g.states[0], 1, gid, where)

    def walk(g, st: State, count: int, gid: int, where: str):
        key = (id(g), st.id, min(count, 10_000), gid)
        if key in seen or len(problems) > 20:
            return
        seen.add(key)
        theirs = G[gid]
        here = f"{where}[{st.label}]"
        if KIND[st.kind] != theirs["kind"]:
            problems.append(f"{here}: state kind {st.kind} vs {theirs['kind']}")
        ours_ev = [(EVENT[p.kind], p.element.name if p.element else (p.attr.name if p.attr else None)) for p in st.prods]
        theirs_ev = [(p["ev"], (p["ns"], p["name"]) if "name" in p else None) for p in theirs["prods"]]
        if ours_ev != theirs_ev:
            problems.append(f"{here}: productions\n   ours   {ours_ev}\n   theirs {theirs_ev}")
            return
        for p, q in zip(st.prods, theirs["prods"]):
            if p.kind in ("AT", "CH"):
                _compare_datatype(p.datatype, q.get("dt"), f"{here} {p.kind}", problems)
            if p.kind == "SE":
                t = p.element.type
                if isinstance(t, ComplexType):
                    walk_type(t, q["grammar"], f"{where}/{p.element.name[1]}")
                else:
                    walk(gb.grammar(t), gb.grammar(t).states[0], 1, q["grammar"], f"{where}/{p.element.name[1]}")
            if p.kind == "EE":
                continue
            if p.repeat:
                # counts only matter up to the leaf's bounds: cap them so loops terminate
                cap = max(st.leaf.min_occurs, st.leaf.grammar_max or 0) + 1
                nxt_count = min(count + 1, cap)
                occ = _occ_of(st.leaf, nxt_count)
                nxt = next(s for s in g.states if s.leaf is st.leaf and s.occ == occ)
                walk(g, nxt, nxt_count, q["next"], where)
            elif p.next is not None:
                walk(g, p.next, 1 if p.next.leaf is not st.leaf else count, q["next"], where)

    for d, p in zip(ours_roots, theirs_roots):
        t = d.type
        if isinstance(t, ComplexType):
            walk_type(t, p["grammar"], d.name[1])
        else:
            walk(gb.grammar(t), gb.grammar(t).states[0], 1, p["grammar"], d.name[1])
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize("schema", list(GRAMMAR_CLASS))
def test_fragment_grammar_equals_exificient(schema):
    """FragmentContent (EXI 8.5.2): every element qname in the same order, then SE(*), ED;
    elements declared with different types use the relaxed element fragment grammar,
    whose attribute list must match too (ISO 15118-2's eMAID is signed that way)."""
    G = _dump(schema)
    frag = next(g for g in G.values() if g["kind"] == "SCHEMA_INFORMED_FRAGMENT_CONTENT")
    fetch = _fetcher()
    gb = GrammarBuilder(SchemaSet(fetch.schema_file(schema)), UNROLL_LIMIT[schema])
    ours = gb.fragment_elements()
    theirs = [p for p in frag["prods"] if p["ev"] == "START_ELEMENT"]
    assert [qn for qn, _, _ in ours] == [(p["ns"], p["name"]) for p in theirs]
    assert [p["ev"] for p in frag["prods"][len(theirs):]] == ["START_ELEMENT_GENERIC", "END_DOCUMENT"]
    attrs = gb.fragment_attributes()
    for (qn, decls, unique), p in zip(ours, theirs):
        relaxed = G[p["grammar"]]
        if unique:
            continue
        at = [(q["ns"], q["name"]) for q in relaxed["prods"] if q["ev"] == "ATTRIBUTE"]
        assert at == [a for a, _ in attrs], qn
        assert [q["dt"]["type"] for q in relaxed["prods"] if q["ev"] == "ATTRIBUTE"] == [DATATYPE[dt.kind] for _, dt in attrs]
