"""Contract-chain validations per second on one core, next to OpenSSL in the same run.

    python3 benchmarks/pki_bench.py [--seconds 3] [--json]

What is measured, each on the same freshly generated ISO 15118-2 contract chain
(leaf + MO Sub-CA 2 + MO Sub-CA 1, MO root in the trust store), pinned to one CPU:

- ``pnc_bridge validate_chain``: the full verdict (ISO profile, path building and
  signatures by cryptography's verifier, EMAID), certificates already parsed;
- ``pnc_bridge DER + validate_chain``: the same, starting from the DER bytes an EV sends;
- ``pyOpenSSL X509StoreContext``: OpenSSL's verifier in process (no ISO profile checks);
- ``openssl verify`` (CLI), one process per chain and many chains per process.
The -20 variants (secp521r1, Ed448) are listed for information.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography import x509
from OpenSSL import crypto

from pnc_bridge.pki import TrustStore, generate_test_pki, validate_chain
from pnc_bridge.pki._certio import cert_der, chain_pem


def rate(fn, seconds: float) -> float:
    """Calls per second of ``fn`` over at least ``seconds`` (after a short warm-up)."""
    for _ in range(20):
        fn()
    n, start = 0, time.perf_counter()
    while True:
        for _ in range(50):
            fn()
        n += 50
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def openssl_rates(tmp: Path, pki, at: dt.datetime, seconds: float) -> tuple[float, float]:
    openssl = shutil.which("openssl")
    if openssl is None:
        return float("nan"), float("nan")
    leaf, subs = pki.chain("contract")
    (tmp / "root.pem").write_bytes(chain_pem([pki.mo_root]))
    (tmp / "untrusted.pem").write_bytes(chain_pem(subs))
    (tmp / "leaf.pem").write_bytes(chain_pem([leaf]))
    base = [openssl, "verify", "-CAfile", str(tmp / "root.pem"), "-untrusted", str(tmp / "untrusted.pem"),
            "-attime", str(int(at.timestamp()))]

    def one_process() -> None:
        subprocess.run([*base, str(tmp / "leaf.pem")], check=True, capture_output=True)

    per_process = rate_slow(one_process, seconds)
    batch = 2000
    start = time.perf_counter()
    subprocess.run([*base, *([str(tmp / "leaf.pem")] * batch)], check=True, capture_output=True)
    batched = batch / (time.perf_counter() - start)
    return per_process, batched


def rate_slow(fn, seconds: float) -> float:
    fn()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def pyopenssl_rate(pki, at: dt.datetime, seconds: float) -> float:
    leaf, subs = pki.chain("contract")
    store = crypto.X509Store()
    store.add_cert(crypto.X509.from_cryptography(pki.mo_root))
    store.set_time(at.replace(tzinfo=None))
    leaf_x = crypto.X509.from_cryptography(leaf)
    subs_x = [crypto.X509.from_cryptography(c) for c in subs]

    def verify() -> None:
        crypto.X509StoreContext(store, leaf_x, chain=subs_x).verify_certificate()

    return rate(verify, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement (default 3 s)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core, children too

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        print("generating test PKIs ...", file=sys.stderr)
        pkis = {v: generate_test_pki(tmp / v, variant=v) for v in ("iso2", "iso20", "iso20-ed448")}
        stores = {}
        for v, pki in pkis.items():
            stores[v] = TrustStore.init(tmp / f"store-{v}")
            stores[v].add_roots("mo", [pki.mo_root])
        pki = pkis["iso2"]
        at = pki.at + dt.timedelta(days=1)
        leaf, subs = pki.chain("contract")
        ders = [cert_der(c) for c in [leaf, *subs]]
        store = stores["iso2"]
        assert validate_chain(leaf, subs, purpose="contract", store=store, at=at).valid

        def ours() -> None:
            validate_chain(leaf, subs, purpose="contract", store=store, at=at)

        def ours_der() -> None:
            certs = [x509.load_der_x509_certificate(d) for d in ders]
            validate_chain(certs[0], certs[1:], purpose="contract", store=store, at=at)

        print("measuring pnc_bridge ...", file=sys.stderr)
        rows.append(("pnc_bridge validate_chain (iso2)", rate(ours, args.seconds)))
        rows.append(("pnc_bridge DER + validate_chain (iso2)", rate(ours_der, args.seconds)))
        print("measuring OpenSSL ...", file=sys.stderr)
        rows.append(("pyOpenSSL X509StoreContext (iso2, in process)", pyopenssl_rate(pki, at, args.seconds)))
        per_process, batched = openssl_rates(tmp, pki, at, args.seconds)
        rows.append(("openssl verify CLI, 1 chain per process (iso2)", per_process))
        rows.append(("openssl verify CLI, 2000 chains per process (iso2)", batched))
        for v in ("iso20", "iso20-ed448"):
            p = pkis[v]
            l20, s20 = p.chain("contract")
            at20 = p.at + dt.timedelta(days=1)
            assert validate_chain(l20, s20, purpose="contract", store=stores[v], at=at20).valid
            def ours20(leaf=l20, subs=s20, store=stores[v], at=at20) -> None:
                validate_chain(leaf, subs, purpose="contract", store=store, at=at)

            rows.append((f"pnc_bridge validate_chain ({v})", rate(ours20, args.seconds)))

    if args.json:
        print(json.dumps({name: round(r, 1) for name, r in rows}, indent=2))
    else:
        print(f"| {'implementation':<52} | {'validations/s':>13} | {'µs each':>9} |")
        print(f"|{'-' * 54}|{'-' * 15}|{'-' * 11}|")
        for name, r in rows:
            print(f"| {name:<52} | {r:>13,.0f} | {1e6 / r:>9,.0f} |")
        print(f"\n{sys.platform}, Python {sys.version.split()[0]}, one core, {args.seconds:g} s per row")
    return 0


if __name__ == "__main__":
    sys.exit(main())
