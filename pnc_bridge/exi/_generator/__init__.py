"""The generator: XSDs (exi_schemas/) -> typed messages + EXI codecs.

Run ``pnc-bridge exi generate`` (or ``python -m pnc_bridge.exi._generator``).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from .codegen import CodecWriter, Models, inputs_doc, write_models
from .grammar import GrammarBuilder
from .xsd import SchemaSet

#: schema name -> codec module name
SCHEMAS = {
    "apphand": "apphand",
    "din": "din",
    "iso2": "iso2",
    "iso20-common": "iso20_common",
    "iso20-ac": "iso20_ac",
    "iso20-dc": "iso20_dc",
    "iso20-acdp": "iso20_acdp",
    "iso20-wpt": "iso20_wpt",
    # W3C XML-DSig alone: ISO 15118 encodes SignedInfo with this grammar for signing
    "xmldsig": "xmldsig",
}
MODEL_MODULES = ("apphand", "din", "iso2", "iso20", "xmldsig")

#: bounded repetitions above this many occurrences get a looping grammar state (see
#: GrammarBuilder); values established against EXIficient's ISO 15118 grammars
UNROLL_LIMIT = {
    "apphand": 128,
    "din": 128,  # DIN 70121 has no bounded repetitions above 1
    "iso2": 8,
    "iso20-common": 128,
    "iso20-ac": 128,
    "iso20-dc": 128,
    "iso20-acdp": 128,
    "iso20-wpt": 128,
    "xmldsig": 128,  # no bounded repetitions
}

PACKAGE = Path(__file__).resolve().parents[2]  # pnc_bridge/
REPO = PACKAGE.parent


def _fetcher():
    path = REPO / "exi_schemas" / "fetch_schemas.py"
    if not path.is_file():
        raise RuntimeError("exi_schemas/fetch_schemas.py not found: run the generator from a source checkout")
    spec = importlib.util.spec_from_file_location("_pnc_fetch_schemas", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


def generate(out_root: Path | None = None, *, log=print) -> dict[Path, str]:
    """Generate every module; return {path relative to the repo: text}. Writes files
    under ``out_root`` (the repo by default) unless ``out_root`` is False-y... see cli."""
    fetch = _fetcher()
    schema_dir = fetch.schema_dir()
    models = Models()
    outputs: dict[Path, str] = {}
    all_files: set[Path] = set()
    for name, module in SCHEMAS.items():
        entry = fetch.schema_file(name)
        schema = SchemaSet(entry)
        all_files.update(schema.files)
        gb = GrammarBuilder(schema, UNROLL_LIMIT[name])
        writer = CodecWriter(name, schema, gb, models)
        text = writer.write(inputs_doc(schema.files, schema_dir))
        outputs[Path("pnc_bridge/exi/_generated") / f"{module}.py"] = text
        log(f"  exi/_generated/{module}.py: {len(writer.grammars)} types")
    files = sorted(all_files)
    for module in MODEL_MODULES:
        text = write_models(models, module, inputs_doc(files, schema_dir))
        outputs[Path("pnc_bridge/messages/_generated") / f"{module}.py"] = text
        log(f"  messages/_generated/{module}.py")
    if out_root is not None:
        for rel, text in outputs.items():
            target = Path(out_root) / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".py.tmp")
            tmp.write_text(text)
            tmp.replace(target)
    return outputs
