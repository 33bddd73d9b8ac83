"""Every captured message in ../shared/exi-vectors, checked both ways against the
independent decoding (EXIficient) that ships with it:

- decoding gives the oracle's XML tree (namespaces and local names, attributes, values);
- re-encoding the decoded message gives the captured bytes (trailing 0x00 padding that
  some senders add to the EXI stream is ignored on both sides: EXI ends at the last
  event and padding is not part of the document);
- negative vectors (truncated or corrupted captures) raise ExiDecodeError.
"""

from __future__ import annotations

import pytest

from pnc_bridge import exi
from tests.exi.vectors import ALL_VECTORS, LENIENT, NOT_XML, SCHEMAS_2, SCHEMAS_20, canonical, load

try:
    CURATED = load()
except FileNotFoundError:  # pragma: no cover - shared/ missing
    CURATED = []


def _ids(vs):
    return [f"{v['ns']}-{v['msg']}-{v['id']}" for v in vs]


def check_vector(v: dict) -> None:
    data = bytes.fromhex(v["hex"])
    if v.get("negative"):
        with pytest.raises(exi.ExiDecodeError):
            exi.decode(v["ns"], data)
        return
    if v["id"] in LENIENT:
        with pytest.raises(exi.ExiDecodeError):
            exi.decode(v["ns"], data)  # strict decoding refuses it ...
        msg = exi.decode(v["ns"], data, strict=False)  # ... lenient decoding accepts it
        with pytest.raises(exi.ExiEncodeError):
            exi.encode(v["ns"], msg)
    else:
        msg = exi.decode(v["ns"], data)
        assert exi.encode(v["ns"], msg).rstrip(b"\0") == data.rstrip(b"\0")
    if v["id"] in NOT_XML:
        with pytest.raises(exi.MessageFormatError):
            exi.to_xml(v["ns"], msg)
        return
    ours = canonical(exi.to_xml(v["ns"], msg))
    theirs = canonical(v["xml"])
    assert ours == theirs


@pytest.mark.parametrize("v", [v for v in CURATED if v["ns"] in SCHEMAS_2], ids=_ids([v for v in CURATED if v["ns"] in SCHEMAS_2]))
def test_vector_iso2_din_apphand(v):
    check_vector(v)


@pytest.mark.parametrize("v", [v for v in CURATED if v["ns"] in SCHEMAS_20], ids=_ids([v for v in CURATED if v["ns"] in SCHEMAS_20]))
def test_vector_iso20(v):
    check_vector(v)


def test_all_vectors_corpus(shared_dir):
    """The full corpus (13404 messages): the same checks, reported together."""
    failures = []
    vectors = load(ALL_VECTORS)
    assert len(vectors) > 13000
    for v in vectors:
        try:
            check_vector(v)
        except BaseException as exc:  # collect, report all at the end
            if isinstance(exc, KeyboardInterrupt):
                raise
            failures.append(f"{v['ns']} {v['msg']} {v['id']}: {type(exc).__name__}: {str(exc)[:200]}")
    assert not failures, f"{len(failures)} of {len(vectors)} failed:\n" + "\n".join(failures[:30])


def test_vector_counts(shared_dir):
    """The curated set holds every namespace we claim to cover (a guard against an empty run)."""
    seen = {v["ns"] for v in CURATED}
    assert set(SCHEMAS_2) <= seen
    assert {"iso20-common", "iso20-ac", "iso20-dc"} <= seen
    assert sum(1 for v in CURATED if v.get("negative")) >= 18
