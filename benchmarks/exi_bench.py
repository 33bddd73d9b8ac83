#!/usr/bin/env python3
"""EXI codec benchmark: pnc-bridge next to EXIficient (and Josev's codec path) in one run.

    python3 benchmarks/exi_bench.py [--n 2000] [--no-josev] [--json out.json]

For each message type it times decode (EXI bytes -> typed message) and encode (typed
message -> EXI bytes) in this process, then runs EXIficient's own benchmark mode on the
same bytes in a warm JVM (../shared/tools/exi-oracle, `bench`), and, unless --no-josev,
Josev's codec path (pydantic models <-> Py4J <-> EXIficient; its own venv). The machines
are noisy: read the ratios, not the absolute times. Figures for EVerest's libcbv2g (C, -O3)
are the ones quoted in the EXI codec issue for this machine class; they are references,
not measured here (libcbv2g is not packaged in the registries this project may use).
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pnc_bridge import exi  # noqa: E402

SHARED = REPO.parent / "shared"
ORACLE = SHARED / "tools" / "exi-oracle" / "exi-oracle"

# (schema, root message, label): the message types of the EXI issues
MESSAGES = [
    ("apphand", "supportedAppProtocolReq", "SupportedAppProtocolReq"),
    ("iso2", "SessionSetupReq", "SessionSetupReq"),
    ("iso2", "ChargeParameterDiscoveryRes", "ChargeParameterDiscoveryRes (SAScheduleList)"),
    ("iso2", "CurrentDemandReq", "CurrentDemandReq"),
    ("iso2", "CurrentDemandRes", "CurrentDemandRes"),
    ("iso2", "PaymentDetailsReq", "PaymentDetailsReq (contract chain)"),
    ("iso2", "CertificateInstallationRes", "CertificateInstallationRes"),
    ("din", "CurrentDemandReq", "DIN CurrentDemandReq"),
    ("iso20-common", "SessionSetupReq", "-20 SessionSetupReq"),
    ("iso20-common", "AuthorizationSetupRes", "-20 AuthorizationSetupRes"),
    ("iso20-common", "ScheduleExchangeReq", "-20 ScheduleExchangeReq"),
    ("iso20-common", "ScheduleExchangeRes", "-20 ScheduleExchangeRes"),
    ("iso20-dc", "DC_ChargeLoopReq", "-20 DC_ChargeLoopReq"),
    ("iso20-dc", "DC_ChargeLoopRes", "-20 DC_ChargeLoopRes"),
    ("iso20-ac", "AC_ChargeLoopReq", "-20 AC_ChargeLoopReq"),
]

# libcbv2g (C, -O3) on this machine class, from the EXI codec issue: (decode us, encode us)
LIBCBV2G = {"CurrentDemandReq": (0.76, 0.60), "PaymentDetailsReq (contract chain)": (17.0, 13.0)}

JOSEV_NS = {"apphand": "SAP", "din": "DIN_MSG_DEF", "iso2": "ISO_V2_MSG_DEF",
            "iso20-common": "ISO_V20_COMMON_MSG", "iso20-dc": "ISO_V20_DC", "iso20-ac": "ISO_V20_AC"}


def pick_vectors() -> list[tuple[str, str, dict]]:
    """The largest captured instance of each message type (a full schedule, a full chain)."""
    best: dict = {}
    with gzip.open(SHARED / "exi-vectors" / "all.jsonl.gz", "rt") as fh:
        for line in fh:
            v = json.loads(line)
            if v.get("negative") or not v.get("roundtrip", True):
                continue
            key = (v["ns"], v["msg"])
            if key not in best or v["bytes"] > best[key]["bytes"]:
                best[key] = v
    out = []
    for ns, msg, label in MESSAGES:
        v = best.get((ns, msg))
        if v is None:
            print(f"  (no captured {ns} {msg}: skipped)", file=sys.stderr)
            continue
        out.append((label, ns, v))
    return out


def time_ours(ns: str, data: bytes, n: int) -> tuple[float, float]:
    msg = exi.decode(ns, data)
    assert exi.encode(ns, msg).rstrip(b"\0") == data.rstrip(b"\0")

    def best(fn) -> float:
        runs = []
        for _ in range(7):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            runs.append((time.perf_counter() - t) / n)
        return min(runs) * 1e6

    return best(lambda: exi.decode(ns, data)), best(lambda: exi.encode(ns, msg))


def time_exificient(items: list[tuple[str, str, dict]], n: int) -> dict:
    """label -> {decode_us, decode_events_us, encode_us} from the oracle's warm-JVM bench."""
    out = {}
    by_ns: dict = {}
    for label, ns, v in items:
        by_ns.setdefault(ns, []).append((label, v))
    for ns, rows in by_ns.items():
        payload = "".join(json.dumps({"hex": v["hex"], "msg": label}) + "\n" for label, v in rows)
        proc = subprocess.run([str(ORACLE), "bench", ns, str(n)], input=payload, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            print(f"  EXIficient bench {ns} failed: {proc.stderr[-300:]}", file=sys.stderr)
            continue
        for m in json.loads(proc.stdout)["messages"]:
            out[m["msg"]] = m
    return out


JOSEV_SCRIPT = r"""
import json, sys, time
from iso15118.shared import settings
from iso15118.shared.settings import SettingKey
settings.shared_settings[SettingKey.MESSAGE_LOG_EXI] = False
settings.shared_settings[SettingKey.MESSAGE_LOG_JSON] = False
from iso15118.shared.exi_codec import EXI
from iso15118.shared.exificient_exi_codec import ExificientEXICodec
from iso15118.shared.messages.enums import Namespace
EXI().set_exi_codec(ExificientEXICodec())
req = json.load(sys.stdin)
out = {}
for label, ns, hexstr in req["items"]:
    data = bytes.fromhex(hexstr)
    space = getattr(Namespace, ns)
    try:
        m = EXI().from_exi(data, space)
        for _ in range(3):
            EXI().from_exi(data, space); EXI().to_exi(m, space)
        t = time.perf_counter()
        for _ in range(req["n"]):
            EXI().from_exi(data, space)
        d = (time.perf_counter() - t) / req["n"]
        t = time.perf_counter()
        for _ in range(req["n"]):
            EXI().to_exi(m, space)
        e = (time.perf_counter() - t) / req["n"]
        out[label] = [d * 1e6, e * 1e6]
    except Exception as exc:
        out[label] = str(exc)[:120]
print(json.dumps(out))
"""


def time_josev(items, n: int) -> dict:
    try:
        from tests.pki._josev import josev_python

        python = josev_python()
    except Exception as exc:  # no venv, no network
        print(f"  Josev not measured: {exc}", file=sys.stderr)
        return {}
    payload = {"n": n, "items": [(label, JOSEV_NS[ns], v["hex"]) for label, ns, v in items if ns in JOSEV_NS]}
    proc = subprocess.run([str(python), "-c", JOSEV_SCRIPT], input=json.dumps(payload), capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        print(f"  Josev run failed: {proc.stderr[-500:]}", file=sys.stderr)
        return {}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="calls per measurement (default 2000)")
    ap.add_argument("--josev-n", type=int, default=20, help="calls per measurement for Josev (slow)")
    ap.add_argument("--no-josev", action="store_true")
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args()
    items = pick_vectors()
    print(f"measuring {len(items)} message types ...", file=sys.stderr)
    ours = {}
    for label, ns, v in items:
        ours[label] = time_ours(ns, bytes.fromhex(v["hex"]), args.n)
        print(f"  ours {label}: {ours[label][0]:.2f} / {ours[label][1]:.2f} us", file=sys.stderr)
    print("EXIficient (warm JVM) ...", file=sys.stderr)
    ex = time_exificient(items, args.n)
    jo = {} if args.no_josev else time_josev(items, args.josev_n)
    head = (
        f"{'message':44} {'bytes':>6} | {'ours dec':>9} {'ours enc':>9} | {'EXIfic. dec':>11} {'events':>8} {'enc':>8} |"
        f" {'x dec':>6} {'x enc':>6} | {'Josev dec':>10} {'x':>6} | libcbv2g ref (ours/ref)"
    )
    print(head)
    print("-" * len(head))
    rows = []
    for label, ns, v in items:
        d, e = ours[label]
        x = ex.get(label, {})
        xd, xev, xe = x.get("decode_us"), x.get("decode_events_us"), x.get("encode_us")
        j = jo.get(label)
        jd = j[0] if isinstance(j, list) else None
        ref = LIBCBV2G.get(label.replace("iso2 ", ""))
        refs = f"{ref[0]:.2f}/{ref[1]:.2f} us ({d / ref[0]:.1f}x / {e / ref[1]:.1f}x)" if ref else ""
        fmt = lambda z, w=8: f"{z:{w}.2f}" if z is not None else f"{'-':>{w}}"  # noqa: E731
        print(
            f"{label:44} {v['bytes']:6d} | {d:9.2f} {e:9.2f} | {fmt(xd, 11)} {fmt(xev)} {fmt(xe)} |"
            f" {(xev / d if xev else 0):6.1f} {(xe / e if xe else 0):6.1f} | {fmt(jd / 1000 if jd else None, 8)}ms {(jd / d if jd else 0):6.0f} | {refs}"
        )
        rows.append({"message": label, "schema": ns, "bytes": v["bytes"], "ours_decode_us": d, "ours_encode_us": e,
                     "exificient_decode_xml_us": xd, "exificient_decode_events_us": xev, "exificient_encode_us": xe,
                     "josev_decode_us": jd, "josev_encode_us": j[1] if isinstance(j, list) else None, "libcbv2g_ref_us": ref})
    print("\n'x dec' = EXIficient SAX-events decode / ours (typed message); 'x enc' = EXIficient encode from XML / ours.")
    print("'x' (Josev) = Josev decode (pydantic model via Py4J) / ours. All times us unless marked.")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
