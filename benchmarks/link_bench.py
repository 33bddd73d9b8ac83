"""Link benchmarks: V2GTP framing throughput, SLAC EVSE frame handling, TLS handshakes.

Peers in the same run: a naive framer (header parse + slice, the shape most stacks use) for
V2GTP, and OpenSSL's own server (`openssl s_server`) for TLS 1.2 handshakes with the same
certificate, both measured with the same client loop.

    python3 benchmarks/link_bench.py
"""

from __future__ import annotations

import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "link"))

from pnc_bridge.link.v2gtp import V2gtpFramer, frame  # noqa: E402


def naive_frames(stream: bytes) -> int:
    n, pos = 0, 0
    while pos + 8 <= len(stream):
        _, _, _, length = struct.unpack_from("!BBHI", stream, pos)
        _ = stream[pos + 8 : pos + 8 + length]
        pos += 8 + length
        n += 1
    return n


def bench_framing() -> list[tuple[str, str]]:
    msgs = b"".join(frame(0x8001, bytes(200)) for _ in range(20000))
    rows = []
    t = time.perf_counter()
    framer = V2gtpFramer()
    got = 0
    for i in range(0, len(msgs), 1460):  # TCP-segment-sized reads
        got += len(framer.receive_data(msgs[i : i + 1460]))
    dt_ours = time.perf_counter() - t
    t = time.perf_counter()
    naive = naive_frames(msgs)
    dt_naive = time.perf_counter() - t
    assert got == naive == 20000
    rows.append(("V2GTP frames/s (200-octet payload, 1460-octet reads), ours", f"{got / dt_ours:,.0f}"))
    rows.append(("V2GTP frames/s, naive whole-buffer parser (no buffering, no checks)", f"{naive / dt_naive:,.0f}"))
    return rows


def bench_slac() -> list[tuple[str, str]]:
    import random

    from hil.ev_slac import EvSlac
    from test_slac import EV, EVSE1, Segment, start  # the in-memory segment of the tests
    from pnc_bridge.link.slac import SlacEvse, SlacState

    r = random.Random(0)
    rb = lambda n: bytes(r.getrandbits(8) for _ in range(n))  # noqa: E731
    n = 50
    t = time.perf_counter()
    frames = 0
    for _ in range(n):
        evse, ev = SlacEvse(EVSE1, random_bytes=rb), EvSlac(EV, random_bytes=rb)
        seg = Segment([evse], ev)
        start(seg)
        assert seg.run(lambda: evse.state is SlacState.MATCHED)
        frames += len(seg.log)
    dt = time.perf_counter() - t
    return [("SLAC associations/s in memory (EVSE + EV emulator, encode+decode every frame)", f"{n / dt:,.1f}"),
            ("SLAC frames/s through both state machines", f"{frames / dt:,.0f}")]


def _handshakes(port: int, ca: str, n: int) -> float:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(ca)
    ctx.check_hostname = False
    t = time.perf_counter()
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port)) as s, ctx.wrap_socket(s) as tls:
            tls.do_handshake()
    return n / (time.perf_counter() - t)


def bench_tls() -> list[tuple[str, str]]:
    import asyncio

    from _certs import make_chain
    from pnc_bridge.link.server import V2gtpServer
    from pnc_bridge.link.tls import SeccCredential, StaticCredentialProvider, TlsServerConfig

    chain = make_chain("p256", "BENCH")
    d = Path(tempfile.mkdtemp())
    cp, kp, rp = chain.write(d, "secc")
    n = 200
    loop = asyncio.new_event_loop()
    th = threading.Thread(target=loop.run_forever, daemon=True)
    th.start()

    async def noop(conn):
        async for _ in conn:
            pass

    srv = V2gtpServer(noop, host="127.0.0.1", max_connections=64,
                      tls=TlsServerConfig(StaticCredentialProvider([SeccCredential(chain.chain, chain.key)])))
    asyncio.run_coroutine_threadsafe(srv.start(), loop).result()
    ours = _handshakes(srv.port, str(rp), n)
    asyncio.run_coroutine_threadsafe(srv.close(), loop).result()
    loop.call_soon_threadsafe(loop.stop)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(cp), "-cert_chain", str(cp), "-key", str(kp),
                             "-cipher", "ECDHE-ECDSA-AES128-SHA256", "-tls1_2", "-naccept", str(n + 1), "-quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        peer = _handshakes(port, str(rp), n)
    finally:
        proc.kill()
    return [("TLS 1.2 handshakes/s (ECDHE-ECDSA-AES128-SHA256, P-256), ours (asyncio + pyOpenSSL)", f"{ours:,.0f}"),
            ("TLS 1.2 handshakes/s, openssl s_server, same certificate and client", f"{peer:,.0f}")]


def main() -> None:
    rows = bench_framing() + bench_slac() + bench_tls()
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure':<{width}} | value |")
    print(f"|{'-' * (width + 2)}|-------|")
    for name, value in rows:
        print(f"| {name:<{width}} | {value} |")


if __name__ == "__main__":
    main()
