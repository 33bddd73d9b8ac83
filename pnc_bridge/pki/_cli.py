"""``pnc-bridge pki ...``: the PKI admin's commands.

Rules of this module:

- A thin adapter over the public API: it reads files and the clock, calls the library
  and prints. Every command takes ``--json`` (one JSON document on stdout).
- Option names follow the openssl CLI where it has one (``-out``/``--out``, ``--outform``,
  ``--purpose``); times are ISO 8601 (UTC when no offset is given).
- Errors in the user's input raise ``CliError`` (one line, exit status 2). ``verify``
  exits 0 only for a valid chain, 1 for a refused one.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from pnc_bridge.pki._certio import PkiInputError, cert_der, chain_pem, load_certificate_file
from pnc_bridge.pki._csr import CertificateSigningUse, CsrError, create_csr, install_signed
from pnc_bridge.pki._emaid import EmaidError
from pnc_bridge.pki._hashdata import certificate_hash_data
from pnc_bridge.pki._profiles import OCPP_CERTIFICATE_USE, Purpose, RootKind, Variant
from pnc_bridge.pki._store import LeafSlot, StoreError, TrustStore, fingerprint
from pnc_bridge.pki._testpki import DEFAULT_EMAID, generate_test_pki
from pnc_bridge.pki._validate import issuing_root, validate_chain

#: ``store list`` warns about certificates that expire within this many days.
EXPIRY_WARNING_DAYS = 30


def _cli_error(message: str, status: int = 2) -> Exception:
    from pnc_bridge.cli import CliError  # imported late: cli imports this module

    return CliError(message, status)


def _parse_at(text: str | None) -> _dt.datetime:
    if text is None:
        return _dt.datetime.now(_dt.timezone.utc)
    try:
        value = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise _cli_error(f"--at: {text!r} is not an ISO 8601 time (e.g. 2026-05-01T12:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    return value.astimezone(_dt.timezone.utc)


def _emit(args: argparse.Namespace, document: Any, text: str) -> None:
    if args.json:
        print(json.dumps(document, indent=2, default=str))
    elif text:
        print(text)


def _load(path: str) -> list:
    try:
        return load_certificate_file(path)
    except PkiInputError as exc:
        raise _cli_error(str(exc)) from None


def _store(args: argparse.Namespace) -> TrustStore:
    store = TrustStore(args.store)
    if not store.exists():
        raise _cli_error(f"{args.store} is not a trust store (create it with: pnc-bridge pki store init --store {args.store})")
    return store


def _cert_info(cert, kind: str, at: _dt.datetime) -> dict[str, Any]:
    not_after = cert.not_valid_after_utc
    days_left = (not_after - at).total_seconds() / 86400
    return {
        "kind": kind,
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "fingerprint": fingerprint(cert),
        "not_before": cert.not_valid_before_utc.isoformat(),
        "not_after": not_after.isoformat(),
        "expired": days_left < 0,
        "expires_soon": 0 <= days_left < EXPIRY_WARNING_DAYS,
    }


def _ocsp_info(snapshot: Any, chain: tuple, index: int, der: bytes, at: _dt.datetime) -> dict[str, Any]:
    """The stored OCSP response about ``chain[index]`` (OCPP M06), as ``store list`` shows it."""
    from pnc_bridge.pki._ocsp import OcspError, check_ocsp_response

    cert = chain[index]
    issuer = chain[index + 1] if index + 1 < len(chain) else issuing_root(cert, snapshot.roots_of(RootKind.V2G))
    if issuer is None:
        return {"status": "unusable", "detail": "the issuer is not in the store"}
    try:
        result = check_ocsp_response(der, cert, issuer, at=at)
    except OcspError as exc:
        return {"status": "unusable", "detail": str(exc)}
    if result is None:
        return {"status": "unusable", "detail": "the response is about another certificate"}
    return {
        "status": result.status.value,
        "this_update": result.this_update.isoformat(),
        "next_update": result.next_update.isoformat() if result.next_update else None,
    }


# --------------------------------------------------------------------------- #
# Commands                                                                     #
# --------------------------------------------------------------------------- #


def _cmd_test_pki(args: argparse.Namespace) -> int:
    out = Path(args.out_dir)
    if out.exists() and any(out.iterdir()) and not args.force:
        raise _cli_error(f"{out} is not empty (use --force to overwrite)")
    progress = None if args.json else (lambda name: print(f"  issued {name}", file=sys.stderr))
    try:
        pki = generate_test_pki(
            out, variant=args.variant, at=_parse_at(args.at) if args.at else None, emaid=args.emaid, progress=progress
        )
    except ValueError as exc:
        raise _cli_error(str(exc)) from None
    document = {
        "out_dir": str(out),
        "variant": pki.variant.value,
        "emaid": pki.emaid,
        "certificates": {name: str(e.pem_path) for name, e in pki.issued.items()},
        "chains": {p.value: str(path) for p, path in pki.chain_paths.items()},
    }
    _emit(
        args,
        document,
        f"test PKI ({pki.variant.value}) written to {out}: {len(pki.issued)} certificates, "
        f"chains in {out / 'chains'}, EMAID {pki.emaid}",
    )
    return 0


def _cmd_store_init(args: argparse.Namespace) -> int:
    try:
        store = TrustStore.init(args.store)
    except (StoreError, OSError) as exc:
        raise _cli_error(str(exc)) from None
    _emit(args, {"store": str(store.path), "generation": store.generation}, f"trust store ready at {store.path}")
    return 0


def _cmd_store_add(args: argparse.Namespace) -> int:
    store = _store(args)
    certs = [c for path in args.files for c in _load(path)]
    try:
        added, present = store.add_roots(args.kind, certs)
    except StoreError as exc:
        raise _cli_error(str(exc)) from None
    at = _dt.datetime.now(_dt.timezone.utc)
    document = {
        "added": [_cert_info(r.certificate, r.kind.value, at) for r in added],
        "already_present": [_cert_info(r.certificate, r.kind.value, at) for r in present],
        "generation": store.generation,
    }
    lines = [f"added {r.kind.value} root {r.fingerprint[:16]} {r.certificate.subject.rfc4514_string()}" for r in added]
    lines += [f"already present: {r.fingerprint[:16]} {r.certificate.subject.rfc4514_string()}" for r in present]
    for r in added:
        if r.certificate.not_valid_after_utc < at:
            print(f"warning: {r.certificate.subject.rfc4514_string()} has already expired", file=sys.stderr)
    _emit(args, document, "\n".join(lines))
    return 0


def _cmd_store_list(args: argparse.Namespace) -> int:
    store = _store(args)
    at = _parse_at(args.at)
    snapshot = store.snapshot()
    entries = [
        _cert_info(r.certificate, r.kind.value, at)
        for r in snapshot.roots
        if args.kind is None or r.kind.value == args.kind
    ]
    if args.kind is None:
        for slot, leaf in snapshot.leaves.items():
            for i, cert in enumerate(leaf.chain):
                info = _cert_info(cert, slot.value if i == 0 else f"{slot.value}-sub-ca", at)
                ocsp_der = snapshot.ocsp_response(slot, cert)
                if ocsp_der is not None:
                    info["ocsp"] = _ocsp_info(snapshot, leaf.chain, i, ocsp_der, at)
                entries.append(info)
    warnings = []
    for e in entries:
        if e["expired"]:
            warnings.append(f"warning: {e['kind']} {e['subject']} expired on {e['not_after']}")
        elif e["expires_soon"]:
            warnings.append(f"warning: {e['kind']} {e['subject']} expires on {e['not_after']} (within {EXPIRY_WARNING_DAYS} days)")
        if "ocsp" in e and e["ocsp"]["status"] != "good":
            warnings.append(f"warning: {e['kind']} {e['subject']}: OCSP {e['ocsp']['status']}"
                            + (f" ({e['ocsp']['detail']})" if e["ocsp"].get("detail") else ""))
    for w in warnings:
        print(w, file=sys.stderr)
    header = f"{'KIND':<22} {'EXPIRES':<20} {'FINGERPRINT':<17} SUBJECT / ISSUER"
    rows = [
        f"{e['kind']:<22} {e['not_after'][:19]:<20} {e['fingerprint'][:16]:<17} {e['subject']}\n"
        f"{'':<61}issuer: {e['issuer']}"
        + (f"\n{'':<61}OCSP: {e['ocsp']['status']}" + (f", next update {e['ocsp']['next_update'][:19]}"
                                                       if e["ocsp"].get("next_update") else "")
           if "ocsp" in e else "")
        for e in entries
    ]
    text = "\n".join([header, *rows]) if rows else "(the store is empty)"
    _emit(args, {"generation": snapshot.generation, "certificates": entries, "warnings": warnings}, text)
    return 0


def _cmd_store_remove(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        removed = store.remove_roots(args.fingerprint, args.kind)
    except StoreError as exc:
        raise _cli_error(str(exc)) from None
    _emit(
        args,
        {"removed": [{"kind": r.kind.value, "fingerprint": r.fingerprint, "subject": r.certificate.subject.rfc4514_string()} for r in removed]},
        "\n".join(f"removed {r.kind.value} root {r.fingerprint[:16]} {r.certificate.subject.rfc4514_string()}" for r in removed),
    )
    return 0


def _cmd_store_export(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.leaf:
        entry = store.leaf(args.leaf)
        if entry is None:
            raise _cli_error(f"the store has no {args.leaf} certificate")
        certs = list(entry.chain)
    else:
        certs = [r.certificate for r in store.roots(args.kind)]
    if not certs:
        raise _cli_error("nothing to export")
    if args.outform == "DER":
        if len(certs) != 1:
            raise _cli_error(f"DER holds one certificate; {len(certs)} selected (use --outform PEM for a bundle)")
        data = cert_der(certs[0])
    else:
        data = chain_pem(certs)
    if args.out:
        Path(args.out).write_bytes(data)
        _emit(args, {"out": args.out, "count": len(certs)}, f"wrote {len(certs)} certificate(s) to {args.out}")
    elif args.outform == "DER":
        sys.stdout.buffer.write(data)
    else:
        sys.stdout.write(data.decode("ascii"))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    store = _store(args)
    certs = _load(args.chain_file)  # a root at the end is ignored by validate_chain, never trusted
    ocsp = []
    for path in args.ocsp or ():
        try:
            ocsp.append(Path(path).read_bytes())
        except OSError as exc:
            raise _cli_error(f"{path}: {exc.strerror or exc}") from None
    try:
        verdict = validate_chain(
            certs[0],
            certs[1:],
            purpose=args.purpose,
            store=store,
            at=_parse_at(args.at),
            ocsp_responses=ocsp,
            variant=args.variant,
            emaid=args.emaid,
            verify_emaid_check_digit=args.check_digit,
        )
    except (StoreError, EmaidError) as exc:
        raise _cli_error(str(exc)) from None
    print(json.dumps(verdict.as_dict(), indent=2 if args.json else None))
    return 0 if verdict.valid else 1


def _cmd_csr(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        pem = create_csr(
            store, args.use, common_name=args.cn, organization=args.org, country=args.country, variant=args.variant
        )
    except (CsrError, StoreError) as exc:
        raise _cli_error(str(exc)) from None
    if args.out:
        Path(args.out).write_text(pem)
    document = {"use": args.use, "csr": pem, "pending_key_stored": True}
    if args.json:
        _emit(args, document, "")
    elif args.out:
        print(f"CSR written to {args.out}; its key is kept in the store until install-signed")
    else:
        sys.stdout.write(pem)
    return 0


def _cmd_install_signed(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        data = Path(args.chain_file).read_bytes()
    except OSError as exc:
        raise _cli_error(f"{args.chain_file}: {exc.strerror or exc}") from None
    result = install_signed(store, args.use, data, at=_parse_at(args.at))
    _emit(args, {"status": result.status.value, "reason": result.reason}, f"{result.status.value}: {result.reason}")
    return 0 if result.accepted else 1


def _cmd_hash_data(args: argparse.Namespace) -> int:
    certs = _load(args.cert_file)
    issuer_certs = _load(args.issuer) if args.issuer else []
    out = []
    for i, cert in enumerate(certs):
        if i + 1 < len(certs):
            issuer = certs[i + 1]
        elif issuer_certs:
            issuer = issuer_certs[0]
        elif cert.subject == cert.issuer:
            issuer = cert
        else:
            if i == 0:
                raise _cli_error("the certificate is not self-signed: give its issuer with --issuer FILE")
            break  # the chain's last sub-CA without its root: skip it
        try:
            data = certificate_hash_data(cert, issuer, args.responder_url)
        except ValueError as exc:
            raise _cli_error(str(exc)) from None
        out.append({"subject": cert.subject.rfc4514_string(), **data.as_ocpp()})
    text = "\n\n".join("\n".join(f"{k}: {v}" for k, v in item.items()) for item in out)
    _emit(args, out, text)
    return 0


# --------------------------------------------------------------------------- #
# Parsers                                                                      #
# --------------------------------------------------------------------------- #


def _common(parser: argparse.ArgumentParser, *, store: bool = False) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    if store:
        parser.add_argument("--store", required=True, metavar="DIR", help="trust-store directory")


def register(subparsers: argparse._SubParsersAction) -> None:
    pki = subparsers.add_parser(
        "pki",
        help="test PKI, trust store, chain verification, CSR (ISO 15118 / OCPP)",
        description="PKI tools for ISO 15118 Plug & Charge and OCPP security profiles. See pki/README.md.",
    )
    sub = pki.add_subparsers(dest="pki_command", metavar="PKI_COMMAND", required=True)

    p = sub.add_parser("test-pki", help="generate a complete test PKI (keys, PEM and DER certificates, chains)")
    p.add_argument("out_dir", metavar="OUT_DIR")
    p.add_argument("--variant", choices=[v.value for v in Variant if v is not Variant.OCPP], default="iso2",
                   help="iso2: secp256r1 (default); iso20: secp521r1; iso20-ed448: Ed448")
    p.add_argument("--at", metavar="ISO8601", help="issuance time (default: now)")
    p.add_argument("--emaid", default=DEFAULT_EMAID, help=f"EMAID of the contract certificate (default {DEFAULT_EMAID})")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory")
    _common(p)
    p.set_defaults(func=_cmd_test_pki)

    store = sub.add_parser("store", help="manage a trust store (init, add, list, remove, export)")
    store_sub = store.add_subparsers(dest="store_command", metavar="STORE_COMMAND", required=True)

    p = store_sub.add_parser("init", help="create an empty trust store")
    _common(p, store=True)
    p.set_defaults(func=_cmd_store_init)

    kinds = [k.value for k in RootKind]
    kind_help = ", ".join(f"{k.value} ({OCPP_CERTIFICATE_USE[k]})" for k in RootKind)
    p = store_sub.add_parser("add", help="add root certificates (PEM, DER or PEM bundles)")
    p.add_argument("--kind", required=True, choices=kinds, help=kind_help)
    p.add_argument("files", nargs="+", metavar="FILE")
    _common(p, store=True)
    p.set_defaults(func=_cmd_store_add)

    p = store_sub.add_parser("list", help="show roots and the charger's certificates, warn about expiry")
    p.add_argument("--kind", choices=kinds, help="only roots of this kind")
    p.add_argument("--at", metavar="ISO8601", help="reference time for expiry warnings (default: now)")
    _common(p, store=True)
    p.set_defaults(func=_cmd_store_list)

    p = store_sub.add_parser("remove", help="remove a root by (a prefix of) its SHA-256 fingerprint")
    p.add_argument("fingerprint", metavar="FINGERPRINT")
    p.add_argument("--kind", choices=kinds)
    _common(p, store=True)
    p.set_defaults(func=_cmd_store_remove)

    p = store_sub.add_parser("export", help="write roots of a kind, or the charger's chain, as PEM or DER")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--kind", choices=kinds)
    group.add_argument("--leaf", choices=[s.value for s in LeafSlot])
    p.add_argument("--outform", choices=["PEM", "DER"], default="PEM")
    p.add_argument("-out", "--out", metavar="FILE", help="output file (default: stdout)")
    _common(p, store=True)
    p.set_defaults(func=_cmd_store_export)

    p = sub.add_parser(
        "verify",
        help="validate a chain (leaf first) for a purpose; prints the verdict, exit 0 only if valid",
    )
    p.add_argument("chain_file", metavar="CHAIN_FILE", help="PEM bundle (leaf, sub-CAs) or one DER certificate")
    p.add_argument("--purpose", required=True, choices=[x.value for x in Purpose])
    p.add_argument("--at", metavar="ISO8601", help="validation time (default: now)")
    p.add_argument("--variant", choices=[v.value for v in Variant if v is not Variant.OCPP],
                   help="ISO 15118 profile (default: from the leaf's key)")
    p.add_argument("--emaid", help="contract purpose: the eMAID the EV claimed")
    p.add_argument("--check-digit", action="store_true", help="contract purpose: also verify the EMAID check digit")
    p.add_argument("--ocsp", action="append", metavar="FILE", help="DER OCSP response to apply (repeatable)")
    _common(p, store=True)
    p.set_defaults(func=_cmd_verify)

    uses = [u.value for u in CertificateSigningUse]
    p = sub.add_parser("csr", help="make a key and a CSR for OCPP SignCertificate; the key waits in the store")
    p.add_argument("--use", required=True, choices=uses)
    p.add_argument("--cn", required=True, help="commonName: the SECC ID or the charging station identity")
    p.add_argument("--org", required=True, help="organizationName (the CPO)")
    p.add_argument("--country", help="countryName, 2 letters")
    p.add_argument("--variant", choices=[v.value for v in Variant if v is not Variant.OCPP], default="iso2",
                   help="key type of a V2GCertificate (default iso2: secp256r1)")
    p.add_argument("-out", "--out", metavar="FILE", help="write the CSR here (default: stdout)")
    _common(p, store=True)
    p.set_defaults(func=_cmd_csr)

    p = sub.add_parser("install-signed", help="check and install the chain returned for a CSR (CertificateSigned)")
    p.add_argument("chain_file", metavar="CHAIN_FILE")
    p.add_argument("--use", required=True, choices=uses)
    p.add_argument("--at", metavar="ISO8601", help="validation time (default: now)")
    _common(p, store=True)
    p.set_defaults(func=_cmd_install_signed)

    p = sub.add_parser("hash-data", help="OCPP CertificateHashData of a certificate or of each certificate of a chain")
    p.add_argument("cert_file", metavar="CERT_FILE")
    p.add_argument("--issuer", metavar="FILE", help="issuer certificate (for a single, not self-signed certificate)")
    p.add_argument("--responder-url", help="responderURL (default: from the certificate's authorityInfoAccess)")
    _common(p)
    p.set_defaults(func=_cmd_hash_data)
