"""``pnc-bridge exi verify-signature``: check the XML-DSig Signature of one EXI message.

Rules of this module:

- A thin adapter: it reads the files and the clock, decodes, calls
  :func:`pnc_bridge.xmldsig.verify_message` and prints the verdict as JSON.
- Exit status 0 only when the signature is valid, 1 for any other verdict or a message
  that does not decode, 2 for errors in the user's input (``CliError``).
- It is registered under the ``exi`` command by ``pnc_bridge/exi/_cli.py``
  (:func:`add_parser`), next to ``exi decode``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys

from pnc_bridge.xmldsig._algorithms import STANDARD_OF_SCHEMA

DESCRIPTION = """\
Check the XML-DSig Signature in the header of one EXI message (hex; a V2GTP header is
recognised and skipped) and print the verdict as JSON: Valid, DigestMismatch,
BadSignature, UnknownAlgorithm, MissingReference, NoSignature, MalformedSignature,
UnsignedPart, CertificateInvalid or ChallengeInvalid, with the ResponseCode the standard
names for that message. The signer's certificate is --cert (one certificate) or --chain
(leaf first); messages that carry their signer's chain (CertificateInstallationReq/Res,
CertificateUpdateReq, ISO 15118-20 AuthorizationReq) need neither. With --store, that
chain is also validated against the trust store at --at (default: now). With '-', read
one hex message per line from stdin and write one JSON line per message.
Exit status: 0 valid, 1 not valid or not decodable, 2 usage errors."""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "verify-signature",
        help="check the XML-DSig signature of an EXI message",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--schema", required=True, choices=list(STANDARD_OF_SCHEMA), help="the message's EXI schema")
    signer = p.add_mutually_exclusive_group()
    signer.add_argument("--cert", metavar="PEM", help="the signer's certificate (PEM or DER)")
    signer.add_argument("--chain", metavar="PEM", help="the signer's chain, leaf first (PEM)")
    p.add_argument("--store", metavar="DIR", help="trust store: also validate the signer's chain")
    p.add_argument("--at", metavar="TIME", help="validation time for --store, ISO 8601 (default: now, UTC)")
    p.add_argument("--gen-challenge", metavar="HEX", help="the GenChallenge the SECC sent (AuthorizationReq)")
    p.add_argument("--lenient", action="store_true", help="decode values outside XSD range/length facets")
    p.add_argument("hex", metavar="HEX|-")
    p.set_defaults(func=run)


def _error(message: str, status: int = 2) -> Exception:
    from pnc_bridge.cli import CliError  # imported late: cli imports the command modules

    return CliError(message, status)


def _signer(args):
    from pnc_bridge.pki import PkiInputError, load_certificate_file

    path = args.cert or args.chain
    if path is None:
        return None
    try:
        certs = load_certificate_file(path)
    except PkiInputError as exc:
        raise _error(str(exc)) from None
    if args.cert and len(certs) != 1:
        raise _error(f"--cert {path}: {len(certs)} certificates; give one, or use --chain for a chain")
    return certs


def _at(text: str | None) -> _dt.datetime:
    if text is None:
        return _dt.datetime.now(_dt.timezone.utc)
    try:
        value = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise _error(f"--at: {text!r} is not an ISO 8601 time (e.g. 2026-05-01T12:00:00Z)") from None
    return (value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)).astimezone(_dt.timezone.utc)


def _check(args, text: str, signer, store, at, challenge) -> dict:
    """One message -> its JSON verdict (raises ValueError for undecodable input)."""
    from pnc_bridge import exi
    from pnc_bridge.exi._cli import _hex_payload
    from pnc_bridge.xmldsig import kind_of, message_name, response_code, verify_message

    try:
        message = exi.decode(args.schema, _hex_payload(text), strict=not args.lenient)
    except exi.ExiDecodeError as exc:
        raise ValueError(f"cannot decode: {exc}") from None
    kind = kind_of(message)
    if signer is None and message.header.signature is not None and (kind is None or kind.in_message is None):
        raise _error(f"{message_name(message)} does not carry its signer's certificate: pass --cert or --chain")
    if store is not None and kind is None:
        raise _error(f"--store: no certificate purpose is known for {message_name(message)}; drop --store")
    verdict = verify_message(message, signer, schema=args.schema, store=store, at=at, gen_challenge=challenge)
    out = {"message": message_name(message), "schema": args.schema, **verdict.as_dict()}
    out["response_code"] = response_code(verdict, message)
    return out


def run(args) -> int:
    signer = _signer(args)
    store = at = None
    if args.store:
        from pnc_bridge.pki import StoreError, TrustStore

        try:
            store = TrustStore(args.store).snapshot()
        except StoreError as exc:
            raise _error(f"--store: {exc}") from None
        at = _at(args.at)
    elif args.at:
        raise _error("--at needs --store (it is the time the signer's chain is validated at)")
    challenge = None
    if args.gen_challenge is not None:
        try:
            challenge = bytes.fromhex(args.gen_challenge)
        except ValueError:
            raise _error("--gen-challenge: not a hex string") from None
    if args.hex == "-":
        failures = 0
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                out = _check(args, line, signer, store, at, challenge)
            except ValueError as exc:
                out = {"error": str(exc)}
            failures += not out.get("valid", False)
            sys.stdout.write(json.dumps(out, default=str) + "\n")
        return 1 if failures else 0
    try:
        out = _check(args, args.hex, signer, store, at, challenge)
    except ValueError as exc:
        raise _error(str(exc), status=1) from None
    print(json.dumps(out, indent=2, default=str))
    return 0 if out["valid"] else 1
