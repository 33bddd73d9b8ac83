"""``pnc-bridge exi ...``: decode, encode and regenerate the codec."""

from __future__ import annotations

import json
import sys

from pnc_bridge.cli import CliError


def register(sub) -> None:
    p = sub.add_parser("exi", help="EXI codec: decode, encode, generate", description=__doc__)
    s = p.add_subparsers(dest="exi_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    from pnc_bridge.exi import SCHEMAS

    d = s.add_parser(
        "decode",
        help="decode EXI (hex) to JSON or XML",
        description="Decode one EXI message given as hex (the V2GTP payload; a V2GTP header "
        "is recognised and skipped). With '-', read one hex message per line from stdin and "
        'write one JSON line per message: {"json": ...} / {"xml": ...} or {"error": ...}.',
    )
    d.add_argument("--schema", required=True, choices=list(SCHEMAS))
    d.add_argument("--format", choices=("json", "xml"), default="json")
    d.add_argument("--lenient", action="store_true", help="accept values outside XSD range/length facets")
    d.add_argument("hex", metavar="HEX|-")
    d.set_defaults(func=_decode)

    e = s.add_parser(
        "encode",
        help="encode a JSON or XML message to EXI (hex)",
        description="Encode the message in FILE (XML or JSON, see --format) and print its EXI "
        "bytes as hex. With '-', read one document per line from stdin and write one JSON line "
        'per document: {"hex": ...} or {"error": ...}.',
    )
    e.add_argument("--schema", required=True, choices=list(SCHEMAS))
    e.add_argument("--format", choices=("json", "xml"), default=None, help="input format (default: by content)")
    e.add_argument("file", metavar="FILE|-")
    e.set_defaults(func=_encode)

    g = s.add_parser(
        "generate",
        help="regenerate the codec and message modules from exi_schemas/",
        description="Fetch the pinned XSDs (exi_schemas/sources.json) and regenerate "
        "pnc_bridge/exi/_generated and pnc_bridge/messages/_generated. --check only reports "
        "whether the committed files differ from what the generator writes.",
    )
    g.add_argument("--check", action="store_true")
    g.set_defaults(func=_generate)

    # XML-DSig over EXI lives in pnc_bridge.xmldsig; its command sits next to decode
    from pnc_bridge.xmldsig._cli import add_parser as add_verify_signature

    add_verify_signature(s)


def _hex_payload(text: str) -> bytes:
    t = "".join(text.split()).lower()
    if t.startswith("0x"):
        t = t[2:]
    try:
        data = bytes.fromhex(t)
    except ValueError:
        raise ValueError("not a hex string") from None
    # a whole V2GTP frame: version 0x01, inverse 0xFE, payload type, length
    if len(data) >= 8 and data[0] == 0x01 and data[1] == 0xFE:
        length = int.from_bytes(data[4:8], "big")
        if length == len(data) - 8:
            return data[8:]
    return data


def _decode_one(schema: str, text: str, fmt: str, lenient: bool):
    from pnc_bridge import exi

    msg = exi.decode(schema, _hex_payload(text), strict=not lenient)
    if fmt == "xml":
        return {"xml": exi.to_xml(schema, msg)}
    return {"json": exi.to_dict(schema, msg)}


def _decode(args) -> int:
    from pnc_bridge import exi

    if args.hex == "-":
        failures = 0
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                out = _decode_one(args.schema, line, args.format, args.lenient)
            except (ValueError, exi.ExiDecodeError) as exc:
                out = {"error": str(exc)}
                failures += 1
            sys.stdout.write(json.dumps(out) + "\n")
        return 1 if failures else 0
    try:
        out = _decode_one(args.schema, args.hex, args.format, args.lenient)
    except (ValueError, exi.ExiDecodeError) as exc:
        raise CliError(f"cannot decode: {exc}", status=1) from None
    if args.format == "xml":
        from lxml import etree

        print(etree.tostring(etree.fromstring(out["xml"]), pretty_print=True, encoding="unicode"), end="")
    else:
        print(json.dumps(out["json"], indent=2))
    return 0


def _encode_one(schema: str, text: str, fmt: str | None) -> str:
    from pnc_bridge import exi

    t = text.strip()
    if fmt is None:
        fmt = "xml" if t.startswith("<") else "json"
    if fmt == "xml":
        msg = exi.from_xml(schema, t)
    else:
        try:
            data = json.loads(t)
        except json.JSONDecodeError as exc:
            raise exi.MessageFormatError(f"not valid JSON: {exc}") from None
        msg = exi.from_dict(schema, data)
    return exi.encode(schema, msg).hex()


def _encode(args) -> int:
    from pnc_bridge import exi

    errors = (exi.MessageFormatError, exi.ExiEncodeError)
    if args.file == "-":
        failures = 0
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                out = {"hex": _encode_one(args.schema, line, args.format)}
            except errors as exc:
                out = {"error": str(exc)}
                failures += 1
            sys.stdout.write(json.dumps(out) + "\n")
        return 1 if failures else 0
    try:
        with open(args.file, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from None
    try:
        print(_encode_one(args.schema, text, args.format))
    except errors as exc:
        raise CliError(f"cannot encode: {exc}", status=1) from None
    return 0


def _generate(args) -> int:
    from pnc_bridge.exi._generator import REPO, generate

    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    try:
        outputs = generate(None if args.check else REPO, log=log)
    except Exception as exc:  # fetch or XSD problems, reported in one line
        raise CliError(f"generation failed: {exc}", status=1) from None
    if args.check:
        stale = [str(rel) for rel, text in outputs.items() if not (REPO / rel).is_file() or (REPO / rel).read_text() != text]
        if stale:
            print("out of date: " + ", ".join(stale), file=sys.stderr)
            return 1
        print("generated modules are up to date", file=sys.stderr)
    return 0
