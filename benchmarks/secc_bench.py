"""SECC benchmarks (issue 9, first part): CurrentDemand request -> response latency.

1. In-process: one ``SeccConnection`` in the DC charge loop, a CurrentDemandReq payload in,
   the CurrentDemandRes payload out (EXI decode + session core + EXI encode), DIN 70121 and
   ISO 15118-2; with the share of each stage.
2. Loopback TCP: our EV emulator against our SECC behind the ``pnc_bridge.link`` TCP server,
   one session sending CurrentDemandReq back to back; latency from the EV writing the request
   to the EV holding the decoded response (both kernel hops included).
3. 200 concurrent sessions: the SECC runs in its own process pinned to one core, 200 EV
   emulators in this process (pinned to the other core when there is one) each send a
   CurrentDemandReq every 100 ms; latency per request as the EV sees it, and the SECC's own
   receive-to-send time.

The Josev on-the-wire turnaround comparison comes with the bridge (issue 9, part 2).

    python3 benchmarks/secc_bench.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hil.ev import EvConfig, run_ev  # noqa: E402
from hil.secc_rig import RigPorts, RigSecc  # noqa: E402
from pnc_bridge import exi  # noqa: E402
from pnc_bridge.link.v2gtp import PayloadType  # noqa: E402
from pnc_bridge.messages import din, iso2  # noqa: E402
from pnc_bridge.secc import SeccConfig, SeccConnection, SeccTimers, message_name  # noqa: E402
from pnc_bridge.secc.effects import EnergyTransferMode, Notification  # noqa: E402

DC = EnergyTransferMode.DC_extended


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs" if seconds < 1e-3 else f"{seconds * 1e3:,.2f} ms"


# --------------------------------------------------------------------------- #
# 1. in-process                                                                #
# --------------------------------------------------------------------------- #


def _to_loop(schema: str) -> tuple[SeccConnection, bytes]:
    """A connection driven by our EV core into the DC charge loop; returns it and a
    CurrentDemandReq payload for its session."""
    from hil.ev import EvSession

    ports = RigPorts(None)
    conn = SeccConnection(SeccConfig(energy_transfer_modes=(DC,)), now=0.0, unix_time=time.time())
    ports.listeners.append(conn.update_evse_status)
    conn.update_evse_status(ports.status)
    ev = EvSession(EvConfig(protocols=(schema,), loop_messages=10**9, loop_interval=0.0, ongoing_interval=0.0), now=0.0,
                   unix_time=time.time())
    now = 0.0
    payload = ev.start(now).send
    while True:
        now += 0.001
        step = conn.receive_payload(PayloadType.EXI_ENCODED_V2G_MESSAGE, payload, now)
        for effect in step.effects:
            if isinstance(effect, Notification):
                ports.answer(effect)
            else:
                step2 = conn.resolve(ports.answer(effect), now)
                if step2.send is not None:
                    step = step2
        if step.send is None:
            continue
        out = ev.receive_payload(step.send, now)
        while out.send is None and not ev.done:
            now = ev.deadline()
            out = ev.tick(now)
        payload = out.send
        if conn.session.state.name == "WAIT_FOR_CurrentDemandReq" and ev.result.loop_messages >= 1:
            return conn, payload


def bench_in_process(n: int) -> list[tuple[str, str]]:
    rows = []
    for schema in ("din", "iso2"):
        conn, payload = _to_loop(schema)
        m = din if schema == "din" else iso2
        now = 1000.0
        for _ in range(min(1000, n)):  # warm-up: caches filled, allocator settled; steady state is measured
            now += 0.1
            conn.receive_payload(PayloadType.EXI_ENCODED_V2G_MESSAGE, payload, now)
        totals, decode_t, core_t, encode_t = [], [], [], []
        for _ in range(n):
            now += 0.1
            t0 = time.perf_counter()
            step = conn.receive_payload(PayloadType.EXI_ENCODED_V2G_MESSAGE, payload, now)
            totals.append(time.perf_counter() - t0)
            assert step.send is not None and not step.close
        session = conn.session
        for _ in range(n):
            now += 0.1
            t0 = time.perf_counter()
            message = exi.decode(schema, payload, strict=False)
            t1 = time.perf_counter()
            step = session.receive(message, now)
            t2 = time.perf_counter()
            exi.encode(schema, step.response)
            t3 = time.perf_counter()
            decode_t.append(t1 - t0)
            core_t.append(t2 - t1)
            encode_t.append(t3 - t2)
        assert isinstance(step.response.body.body_element, m.CurrentDemandRes)
        label = "DIN 70121" if schema == "din" else "ISO 15118-2"
        rows.append((f"{label} CurrentDemandReq -> Res in-process, p50 / p99 ({n:,} requests)",
                     f"{fmt_us(pct(totals, 50))} / {fmt_us(pct(totals, 99))}"))
        rows.append(("  of which EXI decode / session core / EXI encode (p50)",
                     f"{fmt_us(pct(decode_t, 50))} / {fmt_us(pct(core_t, 50))} / {fmt_us(pct(encode_t, 50))}"))
    return rows


# --------------------------------------------------------------------------- #
# 2. one session over loopback TCP                                             #
# --------------------------------------------------------------------------- #


def _demand_latencies(ev, frames) -> list[float]:
    """Pair the frame log with the EV's timeline and keep the CurrentDemand exchanges."""
    names = [e.message for e in ev.timeline]
    lat = []
    for i in range(0, min(len(frames), len(names)) - 1, 2):
        if names[i] == "CurrentDemandReq" and names[i + 1] == "CurrentDemandRes":
            lat.append(frames[i + 1][2] - frames[i][2])
    return lat


def bench_loopback(n: int) -> list[tuple[str, str]]:
    rows = []
    for schema in ("din", "iso2"):
        frames: list = []

        async def main(schema=schema, frames=frames):
            ports = RigPorts(None)
            async with RigSecc(SeccConfig(energy_transfer_modes=(DC,)), ports, host="127.0.0.1") as secc:
                config = EvConfig(protocols=(schema,), loop_messages=n, loop_interval=0.0, ongoing_interval=0.0)
                return await run_ev(config, "127.0.0.1", secc.tcp_port, on_frame=lambda d, p, t: frames.append((d, p, t)))

        ev = asyncio.run(main())
        assert ev.result.ok, ev.result.reason
        lat = _demand_latencies(ev, frames)
        label = "DIN 70121" if schema == "din" else "ISO 15118-2"
        rows.append((f"{label} CurrentDemand round trip over loopback TCP, p50 / p99 ({len(lat):,} requests, EV side)",
                     f"{fmt_us(pct(lat, 50))} / {fmt_us(pct(lat, 99))}"))
    return rows


# --------------------------------------------------------------------------- #
# 3. many sessions on one SECC core                                            #
# --------------------------------------------------------------------------- #


def serve(port_file: str, cpu: int | None, seconds: float, max_connections: int) -> None:
    """The SECC process: serve TCP until ``seconds`` passed, then write the SECC-side
    receive-to-send times of every CurrentDemand exchange next to ``port_file``."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    turnaround: list[float] = []

    async def main():
        loop = asyncio.get_running_loop()

        def on_step(adapter, step):
            # SECC side: from the request's arrival on the connection to its response leaving
            if message_name(step.response) == "CurrentDemandRes":
                turnaround.append(loop.time() - adapter.frame_received_at)

        config = SeccConfig(energy_transfer_modes=(DC,), timers=SeccTimers())
        async with RigSecc(config, lambda: RigPorts(None), host="127.0.0.1", max_connections=max_connections,
                           on_step=on_step) as secc:
            Path(port_file).write_text(str(secc.tcp_port))
            await asyncio.sleep(seconds)

    asyncio.run(main())
    Path(port_file + ".turnaround").write_text(json.dumps(turnaround))


async def _bench_ev(i: int, port: int, loops: int, interval: float) -> tuple[bool, str, list[float]]:
    """One emulated EV: our EV core up to the charge loop, then the same CurrentDemandReq bytes
    every ``interval`` (re-encoding an identical request per message would make the EV side,
    which shares this machine, the bottleneck of the measurement). Returns (ok, reason,
    CurrentDemand round trips)."""
    from hil.ev import EvSession
    from pnc_bridge.link.v2gtp import Frame, V2gtpFramer, frame

    loop = asyncio.get_running_loop()
    ev = EvSession(EvConfig(protocols=("iso2",), evcc_id=i.to_bytes(6, "big"), loop_messages=10**9, loop_interval=interval,
                            ongoing_interval=0.05), now=loop.time(), unix_time=time.time())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    framer = V2gtpFramer()
    last_sent = b""

    async def next_frame(timeout: float) -> bytes | None:
        deadline = loop.time() + timeout
        while True:
            if pending:
                return pending.pop(0)
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            try:
                data = await asyncio.wait_for(reader.read(65536), remaining)
            except asyncio.TimeoutError:
                return None
            if not data:
                raise ConnectionError("closed")
            pending.extend(e.payload for e in framer.receive_data(data) if isinstance(e, Frame))

    pending: list[bytes] = []
    try:
        step = ev.start(loop.time())
        while not ev.done and ev.result.loop_messages < 1:
            if step.send is not None:
                last_sent = step.send
                writer.write(frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, step.send))
            deadline = ev.deadline()
            payload = await next_frame(max(0.0, deadline - loop.time()) if deadline else 5.0)
            step = ev.receive_payload(payload, loop.time()) if payload is not None else ev.tick(loop.time())
        if ev.done:
            return False, ev.result.reason, []
        request = step.send if step.send is not None else last_sent
        if step.send is None:  # the next request is paced: build it now
            await asyncio.sleep(max(0.0, (ev.deadline() or loop.time()) - loop.time()))
            request = ev.tick(loop.time()).send
        rtts = []
        for _ in range(loops):
            t0 = loop.time()
            writer.write(frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, request))
            payload = await next_frame(1.0)
            if payload is None:
                return False, "no CurrentDemandRes within 1 s", rtts
            rtts.append(loop.time() - t0)
            await asyncio.sleep(max(0.0, interval - (loop.time() - t0)))
        return True, "ok", rtts
    except ConnectionError as exc:
        return False, str(exc), []
    finally:
        writer.close()


def bench_many(sessions: int, seconds: float) -> list[tuple[str, str]]:
    cpus = sorted(os.sched_getaffinity(0))
    secc_cpu = cpus[0]
    ev_cpu = cpus[1] if len(cpus) > 1 else None
    port_file = f"/tmp/secc_bench_{os.getpid()}.port"
    Path(port_file).unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    interval = 0.1
    loops = max(1, int(seconds / interval))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", port_file, "--cpu", str(secc_cpu), "--seconds", str(seconds + 30),
         "--max-connections", str(sessions + 8)], env=env, stderr=subprocess.DEVNULL,
    )
    try:
        while not Path(port_file).exists():
            if proc.poll() is not None:
                raise RuntimeError("the SECC process ended early")
            time.sleep(0.05)
        port = int(Path(port_file).read_text())
        if ev_cpu is not None:
            os.sched_setaffinity(0, {ev_cpu})

        async def main():
            async def one(i):
                await asyncio.sleep(i * 0.01)  # plug-ins spread over two seconds, not one burst
                return await _bench_ev(i, port, loops, interval)

            return await asyncio.gather(*(one(i) for i in range(sessions)))

        results = asyncio.run(main())
    finally:
        os.sched_setaffinity(0, set(cpus))
        proc.wait(timeout=seconds + 90)
    ok = sum(r[0] for r in results)
    lat = [x for r in results for x in r[2]]
    turnaround = json.loads(Path(port_file + ".turnaround").read_text())
    Path(port_file).unlink(missing_ok=True)
    Path(port_file + ".turnaround").unlink(missing_ok=True)
    reasons = sorted({r[1] for r in results if not r[0]})
    rows = [
        (f"{sessions} concurrent ISO 15118-2 DC sessions on one SECC core: sessions that kept the 100 ms loop",
         f"{ok} / {sessions}" + (f" ({'; '.join(reasons)})" if reasons else "")),
        (f"  CurrentDemand round trip as the EVs see it, p50 / p99 ({len(lat):,} requests)",
         f"{fmt_us(pct(lat, 50))} / {fmt_us(pct(lat, 99))}" if lat else "-"),
        ("  SECC receive -> send of CurrentDemandRes, p50 / p99",
         f"{fmt_us(pct(turnaround, 50))} / {fmt_us(pct(turnaround, 99))}" if turnaround else "-"),
    ]
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=20.0, help=argparse.SUPPRESS)
    parser.add_argument("--max-connections", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=200, help="concurrent EV sessions (default 200)")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.cpu, args.seconds, args.max_connections)
        return 0
    n = 2000 if args.quick else 20000
    rows = []
    print("in-process ...", file=sys.stderr)
    rows += bench_in_process(n)
    print("loopback TCP ...", file=sys.stderr)
    rows += bench_loopback(n // 4)
    print(f"{args.sessions} concurrent sessions ...", file=sys.stderr)
    rows += bench_many(args.sessions, 5.0 if args.quick else 20.0)
    width = max(len(r[0]) for r in rows)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nSECC benchmark ({os.cpu_count()} CPUs, load average {load}, Python {sys.version.split()[0]})\n")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
