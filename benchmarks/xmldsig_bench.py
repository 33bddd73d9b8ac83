"""Signature verification time per signed message, next to EXIficient's fragment encoding
of the same parts in the same run.

    PYTHONPATH=. python3 benchmarks/xmldsig_bench.py [--seconds 1] [--n 2000] [--json]

Messages: every signed ISO 15118-2 kind captured in ../shared/exi-vectors (DS5366 /
RISE V2G, verified with the session's certificate), and every ISO 15118-20 kind
generated and signed with a fresh test PKI (secp521r1/SHA-512 and Ed448). Per message,
on one pinned core:

- ``verify``: ``xmldsig.verify_message`` on the decoded message (EXI fragments of every
  referenced part and of SignedInfo, digests, the signature check);
- ``decode+verify``: the same starting from the EXI bytes the peer sent;
- ``fragments``: our EXI fragment encoding alone (every referenced part + SignedInfo);
- ``primitive``: the signature primitive alone (``cryptography`` over SignedInfo's octets);
- ``EXIficient``: EXIficient's encoding of the same fragments (XML text -> EXI, the SAX
  parse included, as Josev and RISE V2G call it), from the oracle's ``bench`` mode in a
  warm JVM; ``same bytes`` says whether EXIficient re-encodes our fragments byte for byte.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, utils

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pnc_bridge import exi, xmldsig  # noqa: E402
from pnc_bridge.pki import generate_test_pki  # noqa: E402
from pnc_bridge.xmldsig import Standard  # noqa: E402

SHARED = Path(os.environ.get("PNC_BRIDGE_SHARED", REPO.parent / "shared"))
ORACLE = SHARED / "tools" / "exi-oracle" / "exi-oracle"


def per_call_us(fn, seconds: float, rounds: int = 5) -> float:
    """µs per call of ``fn``: the best of ``rounds`` runs of ``seconds / rounds`` each (the
    minimum is the figure least disturbed by other work on a shared machine)."""
    for _ in range(20):
        fn()
    best = float("inf")
    for _ in range(rounds):
        n, start = 0, time.perf_counter()
        while True:
            for _ in range(10):
                fn()
            n += 10
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / rounds:
                break
        best = min(best, elapsed / n * 1e6)
    return best


def iso2_captures() -> list[tuple[str, str, bytes, bytes]]:
    """(label, schema, EXI bytes, signer certificate DER), one capture per signed kind."""
    sys.path.insert(0, str(REPO))
    from tests.exi.test_fragments import SIGNED
    from tests.xmldsig.test_vectors import signer_certs

    out, seen = [], set()
    for v in SIGNED:
        if v["msg"] in seen or v["msg"] not in {n for s, n in xmldsig.KINDS if s is Standard.ISO15118_2}:
            continue
        data = bytes.fromhex(v["hex"])
        msg = exi.decode("iso2", data)
        cert = next((c for c in signer_certs(v) if xmldsig.verify_message(msg, c).valid), None)
        if cert is None:
            continue
        seen.add(v["msg"])
        out.append((v["msg"], "iso2", data, cert))
    return out


def iso20_generated(tmp: Path) -> list[tuple[str, str, bytes, bytes]]:
    from tests.xmldsig.messages import signer_chain, signer_key, unsigned

    out = []
    for variant in ("iso20", "iso20-ed448"):
        pki = generate_test_pki(tmp / variant, variant=variant)
        for std, name in sorted(xmldsig.KINDS, key=lambda k: k[1]):
            if std is not Standard.ISO15118_20:
                continue
            msg = xmldsig.sign_message(unsigned(std, name, pki), signer_key(std, name, pki))
            data = exi.encode("iso20-common", msg)
            out.append((f"{name} ({variant})", "iso20-common", data, signer_chain(std, name, pki)[0]))
    return out


def fragments_of(schema: str, msg) -> list[tuple[str, str, bytes]]:
    """(oracle namespace, element, fragment) of every referenced part and of SignedInfo."""
    suite = xmldsig.suite_for(schema)
    sig = msg.header.signature
    refs = {r.uri[1:] for r in sig.signed_info.reference}
    out = [
        (schema, qname[1], exi.encode_fragment(schema, part, element=qname))
        for ident, qname, part in xmldsig.iter_identified(msg)
        if ident in refs
    ]
    out.append(("xmldsig", "SignedInfo", xmldsig.signed_info_bytes(suite, sig.signed_info)))
    return out


def primitive(msg, schema: str, cert_der: bytes):
    from cryptography import x509

    key = x509.load_der_x509_certificate(cert_der).public_key()
    sig = msg.header.signature
    data = xmldsig.signed_info_bytes(xmldsig.suite_for(schema), sig.signed_info)
    value = sig.signature_value.value
    if isinstance(key, ed448.Ed448PublicKey):
        return lambda: key.verify(value, data)
    half = len(value) // 2
    der = utils.encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
    algo = ec.ECDSA(hashes.SHA256() if half == 32 else hashes.SHA512())

    def check():
        try:
            key.verify(der, data, algo)
        except InvalidSignature:  # pragma: no cover - the bench checks validity first
            raise

    return check


def exificient(jobs: dict[str, list[tuple[str, bytes]]], n: int) -> dict[str, dict] | None:
    """{label: oracle bench row} for fragments grouped by oracle namespace."""
    if not ORACLE.is_file():
        return None
    rows = {}
    for ns, items in jobs.items():
        payload = "".join(json.dumps({"hex": frag.hex(), "msg": label}) + "\n" for label, frag in items)
        extra = [] if ns == "xmldsig" else ["--fragment"]
        proc = subprocess.run(
            [str(ORACLE), "bench", ns, str(n), *extra], input=payload, capture_output=True, text=True, timeout=3600
        )
        if proc.returncode != 0:
            print(f"exi-oracle bench {ns} failed: {proc.stderr[-500:]}", file=sys.stderr)
            return None
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        for row in doc["messages"]:
            rows[row["msg"]] = row
        rows["_java"] = {"java": doc.get("java")}
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement, best of 5 rounds (default 2 s)")
    parser.add_argument("--n", type=int, default=2000, help="EXIficient calls per fragment (default 2000)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, the JVM too

    with tempfile.TemporaryDirectory() as tmpdir:
        print("loading captures and generating -20 messages ...", file=sys.stderr)
        cases = iso2_captures() + iso20_generated(Path(tmpdir))

    results = []
    jobs: dict[str, list[tuple[str, bytes]]] = {}
    for label, schema, data, cert in cases:
        msg = exi.decode(schema, data)
        verdict = xmldsig.verify_message(msg, cert, schema=schema)
        assert verdict.valid, (label, verdict)
        frags = fragments_of(schema, msg)
        for ns, element, frag in frags:
            jobs.setdefault(ns, []).append((f"{label}|{element}", frag))
        print(f"measuring {label} ...", file=sys.stderr)

        def frag_only(msg=msg, schema=schema):
            fragments_of(schema, msg)

        results.append(
            {
                "message": label,
                "suite": verdict.signature_method.rsplit("#", 1)[-1],
                "bytes": len(data),
                "parts": len(verdict.references),
                "verify_us": per_call_us(lambda: xmldsig.verify_message(msg, cert, schema=schema), args.seconds),
                "decode_verify_us": per_call_us(
                    lambda: xmldsig.verify_message(exi.decode(schema, data), cert, schema=schema), args.seconds
                ),
                "fragments_us": per_call_us(frag_only, args.seconds),
                "primitive_us": per_call_us(primitive(msg, schema, cert), args.seconds),
                "labels": [f"{label}|{element}" for _, element, _ in frags],
            }
        )

    print("running EXIficient (exi-oracle bench) ...", file=sys.stderr)
    oracle_rows = exificient(jobs, args.n)
    java = (oracle_rows or {}).get("_java", {}).get("java")
    for r in results:
        labels = r.pop("labels")
        if oracle_rows is None:
            r["exificient_encode_us"] = None
            r["exificient_same_bytes"] = None
        else:
            r["exificient_encode_us"] = sum(oracle_rows[lab]["encode_us"] for lab in labels)
            r["exificient_same_bytes"] = all(oracle_rows[lab]["roundtrip"] for lab in labels)

    if args.json:
        print(json.dumps({"java": java, "python": sys.version.split()[0], "results": results}, indent=2))
        return 0
    head = ("message", "signature", "bytes", "refs", "verify µs", "decode+verify µs", "fragments µs",
            "primitive µs", "EXIficient fragments µs", "same bytes")
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---:" if i > 1 else "---" for i in range(len(head))) + "|")
    for r in results:
        ex = "n/a" if r["exificient_encode_us"] is None else f"{r['exificient_encode_us']:,.0f}"
        same = "n/a" if r["exificient_same_bytes"] is None else ("yes" if r["exificient_same_bytes"] else "NO")
        print(
            f"| {r['message']} | {r['suite']} | {r['bytes']:,} | {r['parts']} | {r['verify_us']:,.0f} | "
            f"{r['decode_verify_us']:,.0f} | {r['fragments_us']:,.0f} | {r['primitive_us']:,.0f} | {ex} | {same} |"
        )
    print(
        f"\n{sys.platform}, Python {sys.version.split()[0]}, Java {java or 'n/a'}, one core; "
        f"best of 5 rounds in {args.seconds:g} s per measurement; EXIficient: mean of {args.n} calls per fragment after warm-up"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
