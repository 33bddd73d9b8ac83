"""Generate the typed OCPP models from the official OCPP JSON schemas.

Rules of this module:

- Input is the schema directory of one OCPP version as shipped in the pinned ``ocpp``
  package (``ocpp/v201/schemas``, ``ocpp/v21/schemas``); nothing is copied into the repo.
- Output is one module per version under ``pnc_bridge/ocpp/_generated/``, with a header
  that names this command and the SHA-256 of every input schema. The output depends only
  on the schema files, so regenerating is byte-for-byte reproducible; the drift test
  (``tests/ocpp/test_codegen.py``) regenerates into a temporary directory and compares.
- The models carry types only. Value constraints (maxLength, minimum, minItems, ...) stay
  in the official schemas, which check every payload in and out (``OcppProtocol``); one
  authority for constraints, and the device model's FieldLength variables can relax a
  length where the standard allows it.
- Names are mechanical. Classes keep the schema names (``AuthorizeRequest``,
  ``IdTokenType``, ``AuthorizationStatusEnumType``). Enum members are the enum values,
  with ``.`` and ``-`` turned into ``_`` (``MeasurandEnumType.Energy_Active_Import_Register``).
  Fields are the camelCase property names in snake_case by ``snake_name`` below, with the
  schema name kept as alias.

Run ``pnc-bridge ocpp generate`` (or ``python -m pnc_bridge.ocpp._codegen``) after
changing this file or the pinned ``ocpp`` version.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import keyword
import re
import sys
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import Any

#: OCPP versions we generate: module name -> (schema directory inside the ``ocpp`` package,
#: protocol version string).
VERSIONS: dict[str, tuple[str, str]] = {
    "v201": ("v201/schemas", "2.0.1"),
    "v21": ("v21/schemas", "2.1"),
}

#: Acronyms the schemas write in mixed case; each is one word in snake_case. Without this
#: list ``bulkSoC`` would become ``bulk_so_c``.
_ACRONYMS = ("SoC", "soC", "SoH", "soH", "CSMS", "EMAIDs", "V2X", "V2G", "VRef", "PF", "DC", "ID")

GENERATED_DIR = Path(__file__).resolve().parent / "_generated"


def snake_name(name: str) -> str:
    """The one rule from schema property names to Python field names.

    ``idToken`` -> ``id_token``, ``iso15118CertificateHashData`` ->
    ``iso15118_certificate_hash_data``, ``responderURL`` -> ``responder_url``,
    ``bulkSoC`` -> ``bulk_soc``, ``limit_L2`` -> ``limit_l2``.
    """
    for acronym in _ACRONYMS:
        name = name.replace(acronym, "_" + acronym.lower() + "_")
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"_+", "_", name).strip("_").lower()
    if keyword.iskeyword(name) or name.startswith("model_"):
        name += "_"
    return name


def enum_member_name(value: str) -> str:
    name = re.sub(r"[^0-9A-Za-z_]", "_", value)
    if name[0].isdigit():
        name = "_" + name
    if keyword.iskeyword(name) or name in ("name", "value"):
        name += "_"
    return name


def _clean_text(text: str | None) -> str:
    if not text:
        return ""
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def _strip_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_docs(v) for k, v in node.items() if k not in ("description", "javaType")}
    if isinstance(node, list):
        return [_strip_docs(v) for v in node]
    return node


@dataclass
class SchemaSet:
    """The parsed schema files of one version."""

    version: str
    files: dict[str, dict[str, Any]]  # file name -> parsed schema
    sha256: dict[str, str]  # file name -> hex digest of the file bytes
    definitions: dict[str, dict[str, Any]]  # merged, checked identical across files


def load_schema_dir(path: Path, version: str) -> SchemaSet:
    files: dict[str, dict[str, Any]] = {}
    digests: dict[str, str] = {}
    definitions: dict[str, dict[str, Any]] = {}
    seen_in: dict[str, str] = {}
    for file in sorted(path.iterdir(), key=lambda p: p.name):
        if file.suffix != ".json":
            continue
        raw = file.read_bytes()
        digests[file.name] = hashlib.sha256(raw).hexdigest()
        schema = json.loads(raw.decode("utf-8-sig"))
        files[file.name] = schema
        for name, definition in schema.get("definitions", {}).items():
            if name in definitions:
                if _strip_docs(definitions[name]) != _strip_docs(definition):
                    raise ValueError(
                        f"definition {name} differs between {seen_in[name]} and {file.name}"
                    )
                continue
            definitions[name] = definition
            seen_in[name] = file.name
    if not files:
        raise ValueError(f"no *.json schemas in {path}")
    return SchemaSet(version, files, digests, definitions)


def _ref_name(ref: str) -> str:
    prefix = "#/definitions/"
    if not ref.startswith(prefix):
        raise ValueError(f"unsupported $ref {ref!r}")
    return ref[len(prefix) :]


def _is_enum(definition: dict[str, Any]) -> bool:
    return "enum" in definition


def _deps(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        if "$ref" in node:
            found.add(_ref_name(node["$ref"]))
        for value in node.values():
            found |= _deps(value)
    elif isinstance(node, list):
        for value in node:
            found |= _deps(value)
    return found


def _topological(definitions: dict[str, dict[str, Any]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(name: str) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise ValueError(f"recursive definition {name}")
        state[name] = 1
        for dep in sorted(_deps(definitions[name])):
            visit(dep)
        state[name] = 2
        order.append(name)

    for name in sorted(definitions):
        visit(name)
    return order


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str = "") -> None:
        self.lines.append(line)


def _annotation(prop: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Python type and the ``Field`` constraints for one schema property."""
    constraints: dict[str, Any] = {}
    if "$ref" in prop:
        return _ref_name(prop["$ref"]), constraints
    kind = prop.get("type")
    if kind is None:
        # DataTransfer.data: "Data without specified length or format"; any JSON value.
        return "Any", constraints
    if kind == "string":
        if prop.get("format") == "date-time":
            return "OcppDateTime", constraints
        if "maxLength" in prop:
            constraints["max_length"] = prop["maxLength"]
        if "enum" in prop:
            raise ValueError("inline enums are not expected in OCPP schemas")
        return "str", constraints
    if kind in ("integer", "number"):
        if "minimum" in prop:
            constraints["ge"] = prop["minimum"]
        if "maximum" in prop:
            constraints["le"] = prop["maximum"]
        return ("int" if kind == "integer" else "float"), constraints
    if kind == "boolean":
        return "bool", constraints
    if kind == "array":
        item_type, _ = _annotation(prop["items"])
        if "minItems" in prop:
            constraints["min_length"] = prop["minItems"]
        if "maxItems" in prop:
            constraints["max_length"] = prop["maxItems"]
        return f"list[{item_type}]", constraints
    if kind == "object":
        raise ValueError("inline objects are not expected in OCPP schemas")
    raise ValueError(f"unsupported property {prop!r}")


def _emit_model(
    out: _Writer,
    class_name: str,
    schema: dict[str, Any],
    base: str,
    *,
    action: str | None = None,
    kind: str | None = None,
) -> None:
    out.add()
    out.add()
    out.add(f"class {class_name}({base}):")
    doc = _clean_text(schema.get("description"))
    if doc:
        out.add(f"    {json.dumps(doc, ensure_ascii=False)}")
        out.add()
    if action is not None:
        out.add(f"    ocpp_action: ClassVar[str | None] = {action!r}")
        out.add(f"    ocpp_kind: ClassVar[str | None] = {kind!r}")
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    if not properties and action is None:
        out.add("    pass")
    for prop_name, prop in properties.items():
        annotation, constraints = _annotation(prop)
        field_name = snake_name(prop_name)
        args = [f"alias={prop_name!r}"]
        description = _clean_text(prop.get("description"))
        if description:
            args.append(f"description={json.dumps(description, ensure_ascii=False)}")
        if prop_name in required:
            out.add(f"    {field_name}: {annotation} = Field({', '.join(args)})")
        else:
            out.add(f"    {field_name}: {annotation} | None = Field(None, {', '.join(args)})")


def render(schemas: SchemaSet, module: str, schema_dir_label: str) -> str:
    out = _Writer()
    try:
        ocpp_version = metadata.version("ocpp")
    except metadata.PackageNotFoundError:  # pragma: no cover - ocpp is a pinned dependency
        ocpp_version = "unknown"
    out.add(f"# Generated by `pnc-bridge ocpp generate` from ocpp=={ocpp_version} {schema_dir_label}.")
    out.add("# Do not edit: change pnc_bridge/ocpp/_codegen.py and regenerate.")
    out.add("# Input schemas (SHA-256):")
    for name, digest in schemas.sha256.items():
        out.add(f"#   {digest}  {name}")
    out.add(f'"""OCPP {schemas.version} messages and datatypes, generated from the official JSON schemas."""')
    out.add()
    out.add("from __future__ import annotations")
    out.add()
    out.add("from enum import Enum")
    out.add("from typing import Any, ClassVar")
    out.add()
    out.add("from pydantic import Field")
    out.add()
    out.add("from pnc_bridge.ocpp._model import CustomDataModel, OcppDateTime, OcppModel")
    out.add()
    out.add(f"VERSION = {schemas.version!r}")

    order = _topological(schemas.definitions)
    for name in order:
        definition = schemas.definitions[name]
        if not _is_enum(definition):
            continue
        out.add()
        out.add()
        out.add(f"class {name}(str, Enum):")
        doc = _clean_text(definition.get("description"))
        if doc:
            out.add(f"    {json.dumps(doc, ensure_ascii=False)}")
            out.add()
        for value in definition["enum"]:
            out.add(f"    {enum_member_name(value)} = {value!r}")

    for name in order:
        definition = schemas.definitions[name]
        if _is_enum(definition):
            continue
        base = "CustomDataModel" if name == "CustomDataType" else "OcppModel"
        _emit_model(out, name, definition, base)

    actions: dict[str, dict[str, str]] = {}
    sends: list[str] = []
    for file_name, schema in schemas.files.items():
        class_name = file_name[: -len(".json")]
        if class_name.endswith("Request"):
            action, kind = class_name[: -len("Request")], "Request"
        elif class_name.endswith("Response"):
            action, kind = class_name[: -len("Response")], "Response"
        else:
            action, kind = class_name, "Send"
            sends.append(class_name)
        actions.setdefault(action, {})[kind] = class_name
        _emit_model(out, class_name, schema, "OcppModel", action=action, kind=kind)

    out.add()
    out.add()
    out.add("#: action -> (Request class, Response class), for every CALL/CALLRESULT pair.")
    out.add("ACTIONS: dict[str, tuple[type[OcppModel], type[OcppModel]]] = {")
    for action in sorted(actions):
        pair = actions[action]
        if "Request" in pair and "Response" in pair:
            out.add(f"    {action!r}: ({pair['Request']}, {pair['Response']}),")
        elif "Send" not in pair:
            raise ValueError(f"{action} has only {sorted(pair)}")
    out.add("}")
    out.add()
    out.add("#: action -> message class for messages sent without a reply (OCPP 2.1 SEND).")
    out.add("SEND_MESSAGES: dict[str, type[OcppModel]] = {")
    for class_name in sorted(sends):
        out.add(f"    {class_name!r}: {class_name},")
    out.add("}")
    out.add()
    out.add("#: SHA-256 of each schema file these models were generated from.")
    out.add("SCHEMA_SHA256: dict[str, str] = {")
    for name, digest in schemas.sha256.items():
        out.add(f"    {name!r}: {digest!r},")
    out.add("}")
    out.add()
    out.add("__all__ = [")
    exported = sorted(schemas.definitions) + [f[: -len(".json")] for f in schemas.files]
    for name in exported + ["ACTIONS", "SEND_MESSAGES", "SCHEMA_SHA256", "VERSION"]:
        out.add(f"    {name!r},")
    out.add("]")
    return "\n".join(out.lines) + "\n"


def schema_dir(module: str) -> Path:
    """The schema directory of ``module`` (``v201``/``v21``) inside the installed ``ocpp``."""
    relative, _ = VERSIONS[module]
    root = resources.files("ocpp")
    path = Path(str(root.joinpath(relative)))
    if not path.is_dir():
        raise FileNotFoundError(f"the installed ocpp package has no {relative}")
    return path


def generate(module: str, out_dir: Path = GENERATED_DIR) -> Path:
    relative, version = VERSIONS[module]
    schemas = load_schema_dir(schema_dir(module), version)
    text = render(schemas, module, f"ocpp/{relative}")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{module}.py"
    tmp = target.with_suffix(".py.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target


def check(module: str, out_dir: Path = GENERATED_DIR) -> bool:
    """True when the committed module equals what the generator makes now."""
    relative, version = VERSIONS[module]
    schemas = load_schema_dir(schema_dir(module), version)
    expected = render(schemas, module, f"ocpp/{relative}")
    target = out_dir / f"{module}.py"
    return target.is_file() and target.read_text(encoding="utf-8") == expected


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pnc_bridge.ocpp._codegen", description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 on drift")
    parser.add_argument("versions", nargs="*", metavar="VERSION", help=f"any of {sorted(VERSIONS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.versions) - set(VERSIONS))
    if unknown:
        parser.error(f"unknown version(s) {unknown}; choose from {sorted(VERSIONS)}")
    status = 0
    for module in args.versions or sorted(VERSIONS):
        if args.check:
            ok = check(module)
            print(f"{module}: {'up to date' if ok else 'DIFFERS from the generator'}")
            status |= 0 if ok else 1
        else:
            print(f"wrote {generate(module)}")
    return status


if __name__ == "__main__":
    sys.exit(main())
