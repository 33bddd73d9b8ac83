"""SECC benchmarks (issue 9 part 1, issue 10 part 1): charge-loop request -> response latency.

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

4. ISO 15118-20 (issue 10): DC_ChargeLoopReq -> Res in-process (DC_BPT, scheduled and
   dynamic control; EXI decode + session core + EXI encode), and the delay from a setpoint
   pushed into the SECC (``update_setpoint``, as the bridge will do for a CSMS setpoint) to
   our EV holding the first DC_ChargeLoopRes that carries it: in charge-loop cycles and in
   ms, over TLS 1.3 on loopback with the EV sending a request every 100 ms.

5. SECC turnaround on the wire (issue 9, part 2): Josev's EVCC (PyPI ``iso15118`` 0.31.2, its
   own venv) in one network namespace, the SECC in another, joined by a veth; ``dumpcap`` captures
   the SECC's side of the link and, per message, the time from the EV's request arriving (its
   last segment) to the SECC's response leaving (its first segment) is measured. Same EV, same
   harness, same run: our SECC (``pnc-bridge run`` as a process, with the CSMS emulator) against
   Josev's own SECC (with its simulated EVSE), for a DIN 70121 DC session, an ISO 15118-2 DC EIM
   session and an ISO 15118-2 Plug & Charge session over TLS (TLS application-data records are
   paired the same way; the capture is not decrypted). Needs root, ``ip netns`` and dumpcap/tshark.

6. ISO 15118-20 through the bridge (issue 10, part 2): the same on-the-wire turnaround with
   Josev's -20 EVCC (DC BPT, EIM, TLS 1.3 with mutual authentication) against ``pnc-bridge
   run`` and against Josev's own SECC in the same run; and the delay from the CSMS emulator
   sending an OCPP 2.1 UpdateDynamicSchedule frame to our EV holding the first
   DC_ChargeLoopRes with that setpoint, through the whole bridge on loopback.

    python3 benchmarks/secc_bench.py [--quick] [--only iso2|iso20|wire|bridge20]
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


# --------------------------------------------------------------------------- #
# 4. ISO 15118-20                                                              #
# --------------------------------------------------------------------------- #


def _to_loop20(control_mode) -> tuple[SeccConnection, int, bytes]:
    """A connection driven by our -20 EV core into the DC_BPT charge loop; returns it and a
    DC_ChargeLoopReq (payload type, payload) for its session."""
    from hil.ev import Ev20Config, Ev20Session
    from hil.secc_rig import v2g_schedule
    from pnc_bridge.secc.effects import EnergyService

    ports = RigPorts(None)
    ports.behaviour = __import__("dataclasses").replace(ports.behaviour, schedules=(v2g_schedule(period_s=3600, setpoints=True),))
    conn = SeccConnection(SeccConfig(energy_transfer_modes=(DC,)), now=0.0, unix_time=time.time(), tls=True)
    ports.listeners.append(conn.update_evse_status)
    conn.update_evse_status(ports.status)
    ev = Ev20Session(Ev20Config(service=EnergyService.DC_BPT, control_mode=control_mode, loop_messages=10**9, loop_interval=0.0,
                                ongoing_interval=0.0), now=0.0, unix_time=time.time())
    now = 0.0
    first = ev.start(now)
    ptype, payload = first.payload_type, first.send
    while True:
        now += 0.001
        step = conn.receive_payload(ptype, payload, now)
        for effect in step.effects:
            if isinstance(effect, Notification):
                ports.answer(effect)
            else:
                step2 = conn.resolve(ports.answer(effect), now)
                if step2.send is not None:
                    step = step2
        if step.send is None:
            continue
        out = ev.receive_payload(step.send, now, step.payload_type)
        while out.send is None and not ev.done:
            now = ev.deadline()
            out = ev.tick(now)
        ptype, payload = out.payload_type, out.send
        if conn.session.state.name == "WAIT_FOR_ChargeLoopReq" and ev.result.loop_messages >= 1:
            return conn, ptype, payload


def bench_iso20_in_process(n: int) -> list[tuple[str, str]]:
    from pnc_bridge.messages import iso20
    from pnc_bridge.secc.effects import ControlMode

    rows = []
    for mode in (ControlMode.ScheduledControl, ControlMode.DynamicControl):
        conn, ptype, payload = _to_loop20(mode)
        now = 1000.0
        for _ in range(min(1000, n)):
            now += 0.1
            conn.receive_payload(ptype, payload, now)
        totals, decode_t, core_t, encode_t = [], [], [], []
        for _ in range(n):
            now += 0.1
            t0 = time.perf_counter()
            step = conn.receive_payload(ptype, payload, now)
            totals.append(time.perf_counter() - t0)
            assert step.send is not None and not step.close
        session = conn.session
        for _ in range(n):
            now += 0.1
            t0 = time.perf_counter()
            message = exi.decode("iso20-dc", payload, strict=False)
            t1 = time.perf_counter()
            step = session.receive(message, now)
            t2 = time.perf_counter()
            exi.encode("iso20-dc", step.response)
            t3 = time.perf_counter()
            decode_t.append(t1 - t0)
            core_t.append(t2 - t1)
            encode_t.append(t3 - t2)
        assert isinstance(step.response, iso20.DC_ChargeLoopRes)
        label = "scheduled" if mode is ControlMode.ScheduledControl else "dynamic"
        rows.append((f"ISO 15118-20 DC_BPT {label} DC_ChargeLoopReq -> Res in-process, p50 / p99 ({n:,} requests)",
                     f"{fmt_us(pct(totals, 50))} / {fmt_us(pct(totals, 99))}"))
        rows.append(("  of which EXI decode / session core / EXI encode (p50)",
                     f"{fmt_us(pct(decode_t, 50))} / {fmt_us(pct(core_t, 50))} / {fmt_us(pct(encode_t, 50))}"))
    return rows


def bench_iso20_setpoint(pushes: int) -> list[tuple[str, str]]:
    """Setpoints pushed at random moments into the adapter of a running dynamic DC_BPT session
    over TLS 1.3; for each, the time until our EV holds the first response carrying it."""
    import random
    import tempfile

    from hil.ev import Ev20Config, EvCredentials, iso20_tls_context
    from pnc_bridge.pki import generate_test_pki
    from pnc_bridge.secc import PowerSetpoint
    from pnc_bridge.secc.effects import ControlMode, EnergyService

    interval = 0.1
    with tempfile.TemporaryDirectory() as tmp:
        pki2 = generate_test_pki(Path(tmp) / "pki2")
        pki20 = generate_test_pki(Path(tmp) / "pki20", variant="iso20")
        creds = EvCredentials.from_test_pki(pki20, with_contract=False)
        tls = iso20_tls_context([pki20.v2g_root], creds.oem_chain, creds.oem_key)
        rng = random.Random(20)
        values = [-1000.0 - 10 * i for i in range(pushes)]  # distinct, within the EV's 10 kW
        pushed: list[tuple[float, float]] = []
        built: list[tuple[float, float]] = []  # (its request's arrival, target) of every DC_ChargeLoopRes

        async def main():
            loop = asyncio.get_running_loop()

            def on_step(adapter, step):
                mode = getattr(step.response, "cl_res_control_mode", None)
                if mode is not None:
                    charge = mode.evse_maximum_charge_power.value * 10.0 ** mode.evse_maximum_charge_power.exponent
                    discharge = mode.evse_maximum_discharge_power.value * 10.0 ** mode.evse_maximum_discharge_power.exponent
                    built.append((adapter.frame_received_at, charge if charge > 0 else -discharge))

            async with RigSecc(SeccConfig(energy_transfer_modes=(DC,)), RigPorts(None), pki=pki2, pki20=pki20, host="127.0.0.1",
                               tcp=False, tls=True, on_step=on_step) as secc:
                config = Ev20Config(service=EnergyService.DC_BPT, control_mode=ControlMode.DynamicControl,
                                    loop_messages=int(pushes * 4 + 20), loop_interval=interval, ongoing_interval=0.01)
                task = asyncio.create_task(run_ev(config, "127.0.0.1", secc.tls_port, tls=tls))
                while not secc.adapters or secc.adapters[0].connection is None or secc.adapters[0].connection.session is None \
                        or secc.adapters[0].connection.session.state.name != "WAIT_FOR_ChargeLoopReq":
                    await asyncio.sleep(0.005)
                for value in values:
                    await asyncio.sleep(rng.uniform(0.2, 0.4))
                    pushed.append((loop.time(), value))
                    secc.adapters[0].update_setpoint(PowerSetpoint(value))
                return await task

        ev = asyncio.run(main())
    assert ev.result.ok, ev.result.reason
    samples = [(ev._t0 + s.t, s.evse_target_w) for s in ev.result.loop]
    delays, cycles = [], []
    for at, value in pushed:
        # cycles: responses to requests that arrived after the push, up to the first that carries it
        # (1: the very next one; a request already queued when the setpoint came is answered before it)
        after = [target for t, target in built if t >= at]
        cycles.append(after.index(value) + 1)
        # delay: until the EV holds a response with it (includes waiting for its next request)
        delays.append(next(t for t, target in samples if t >= at and target == value) - at)
    return [
        (f"ISO 15118-20 setpoint pushed -> first DC_ChargeLoopRes carrying it ({pushes} setpoints, EV cycle "
         f"{interval * 1000:.0f} ms, TLS 1.3 loopback): charge-loop cycles after the push, max", f"{max(cycles)}"),
        ("  push -> EV holds it, p50 / p99 / max", f"{fmt_us(pct(delays, 50))} / {fmt_us(pct(delays, 99))} / {fmt_us(max(delays))}"),
    ]


# --------------------------------------------------------------------------- #
# 5. SECC turnaround on the wire, against Josev's SECC                        #
# --------------------------------------------------------------------------- #

#: scenario -> (Josev EVCC mode, what the SECC under test is told)
WIRE_SCENARIOS = {
    "DIN 70121 DC (EIM, TCP)": "din-dc",
    "ISO 15118-2 DC EIM (TCP)": "iso2-dc-eim",
    "ISO 15118-2 DC Plug & Charge (TLS)": "iso2-dc-pnc",
}


#: requests whose response waits for the CSMS (OCPP Get15118EVCertificate, answered by its CPS)
_CSMS_WAITS = frozenset({"CertificateInstallationReq", "CertificateUpdateReq"})


def _wire_unavailable() -> str | None:
    sys.path.insert(0, str(REPO / "tests" / "link"))
    from netns import netns_unavailable

    reason = netns_unavailable()
    if reason:
        return reason
    for tool in ("dumpcap", "tshark", "java"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            return f"{tool} is not installed"
    return None


class _Capture:
    """dumpcap on the SECC's interface, inside its namespace."""

    def __init__(self, netns: str, iface: str, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "dumpcap", "-q", "-i", iface, "-f", "tcp", "-w", str(path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()  # "Capturing on 'plc0'" once it is listening
        if "Capturing on" not in line:
            raise RuntimeError(f"dumpcap did not start: {line}{self.proc.stderr.read() if self.proc.poll() is not None else ''}")

    def stop(self) -> None:
        time.sleep(0.3)  # the last packets reach the file
        self.proc.terminate()
        self.proc.wait(10)


def turnarounds(pcap: Path) -> list[float]:
    """Per request/response pair on the SECC's side: first response segment - last request segment.

    TCP segments with payload are grouped into runs by direction; with TLS only application-data
    records count (handshake, alerts and bare ACKs are not messages). The SECC is the side that
    answered the EV's SYN."""
    fields = ["frame.time_epoch", "tcp.srcport", "tcp.dstport", "tcp.len", "tcp.flags.syn", "tcp.flags.ack",
              "tls.record.content_type"]
    out = subprocess.run(["tshark", "-r", str(pcap), "-o", "tcp.desegment_tcp_streams:FALSE", "-T", "fields",
                          "-E", "separator=\t", *[a for f in fields for a in ("-e", f)]],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines() if line.strip()]
    secc_port = next((int(r[1]) for r in rows if r[4] == "1" and r[5] == "1"), None)  # SYN-ACK source
    if secc_port is None:
        return []
    tls = any(r[6] for r in rows)
    runs: list[tuple[str, float, float]] = []  # (direction, first, last)
    for r in rows:
        if int(r[3] or 0) == 0:
            continue
        if tls and "23" not in r[6].split(",") and r[6] != "":
            # TLS: application data only. TLS 1.3 records after the ServerHello are not
            # dissected without the keys (no content type): they count too, the handshake's
            # ones come before the EV's first request and pair with nothing
            continue
        direction = "secc" if int(r[1]) == secc_port else "ev"
        t = float(r[0])
        if runs and runs[-1][0] == direction:
            runs[-1] = (direction, runs[-1][1], t)
        else:
            runs.append((direction, t, t))
    return [resp[1] - req[2] for req, resp in zip(runs, runs[1:]) if req[0] == "ev" and resp[0] == "secc"]


def _labelled(samples: list[float], evcc_log: str) -> list[tuple[str, float]]:
    """Name each request/response pair after the request Josev's EV logged as sent, in order
    (``?`` when the counts differ, e.g. a segment the grouping could not pair)."""
    import re

    names = re.findall(r"Sent (\w+Req)\b", evcc_log)
    if 0 < len(samples) - len(names) <= 2:
        # TLS 1.3 encrypts the handshake's last flights as application data too: the EV's
        # Finished flight and the SECC's session tickets are the extra leading pair(s)
        samples = samples[len(samples) - len(names):]
    if len(names) != len(samples):
        names = ["?"] * len(samples)
    return list(zip(names, samples))


def _run_josev_ev(josev, mode: str, pair, pki_path: Path, log: Path, loops: int, *, wait: float = 240) -> str:
    sys.path.insert(0, str(REPO))
    from tests.josev.peers import JosevEvcc

    ev = JosevEvcc.start(josev, mode, iface=pair.ev_if, pki_path=pki_path, log_path=log, netns=pair.ev_ns, loops=loops)
    status = ev.wait(wait)
    text = ev.log()
    ev.stop()
    if status != 0 or "SessionStopRes received" not in text:
        raise RuntimeError(f"Josev's EVCC did not complete the {mode} session:\n{text[-1500:]}")
    return text


def _wire_ours(josev, mode: str, loops: int, work: Path) -> list[float]:
    sys.path.insert(0, str(REPO / "tests" / "link"))
    from netns import NetnsLoop, NetnsPair

    from hil.csms import CsmsEmulator
    from hil.demo_csms import PncCsms
    from hil.demo_rig import IDENTITY, PASSWORD, BridgeRig, make_trust_store
    from pnc_bridge.pki import generate_test_pki
    from tests.josev.peers import write_josev_pki

    pki = generate_test_pki(work / "pki")
    josev_pki = write_josev_pki(pki, work / "josev-pki")
    make_trust_store(work / "trust", pki)
    pair = NetnsPair.create()
    loop = NetnsLoop(pair.evse_ns)
    service = capture = None
    try:
        async def start_csms():
            csms = CsmsEmulator(basic_auth={IDENTITY: PASSWORD})
            await csms.start()
            PncCsms(csms, pki).install().warm_up()
            return csms

        csms = loop.run(start_csms())
        rig = BridgeRig(work, pki, v2g={"interface": pair.evse_if, "slac": False, "host": "::"},
                        device_model={"AuthCtrlr/Enabled": "false"})  # EIM without waiting, as Josev's SECC does
        config = work / "pnc-bridge.toml"
        config.write_text(rig.config_text(csms.url))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        service = subprocess.Popen(["ip", "netns", "exec", pair.evse_ns, sys.executable, "-m", "pnc_bridge", "run",
                                    "--config", str(config)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def booted():
            await csms.wait_for(lambda e: e.received("BootNotification"), 60)

        loop.run(booted(), timeout=90)
        time.sleep(1.0)  # the SECC servers and SDP come up right after the boot
        capture = _Capture(pair.evse_ns, pair.evse_if, work / "ours.pcapng")
        log = _run_josev_ev(josev, mode, pair, josev_pki, work / "evcc-ours.log", loops)
        capture.stop()
        capture = None
        loop.run(csms.stop())
        return _labelled(turnarounds(work / "ours.pcapng"), log)
    finally:
        if capture is not None:
            capture.stop()
        if service is not None:
            service.terminate()
            service.wait(30)
        loop.close()
        pair.destroy()


def _wire_josev(josev, mode: str, loops: int, work: Path) -> list[float]:
    sys.path.insert(0, str(REPO / "tests" / "link"))
    from netns import NetnsPair

    from pnc_bridge.pki import generate_test_pki
    from tests.josev.peers import JosevSecc, write_josev_pki

    pki = generate_test_pki(work / "pki")
    josev_pki = write_josev_pki(pki, work / "josev-pki")
    pair = NetnsPair.create()
    secc = capture = None
    try:
        secc = JosevSecc.start(josev, iface=pair.evse_if, pki_path=josev_pki, log_path=work / "josev-secc.log",
                               netns=pair.evse_ns)
        for _ in range(300):  # its JVM and UDP server take a few seconds
            if "UDP server socket ready" in secc.log() or secc.wait(0) is not None:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        capture = _Capture(pair.evse_ns, pair.evse_if, work / "josev.pcapng")
        log = _run_josev_ev(josev, mode, pair, josev_pki, work / "evcc-josev.log", loops)
        capture.stop()
        capture = None
        return _labelled(turnarounds(work / "josev.pcapng"), log)
    finally:
        if capture is not None:
            capture.stop()
        if secc is not None:
            secc.stop()
        pair.destroy()


def _josev_for_wire():
    """(Josev's venv python, None), or (None, why the wire benchmark cannot run here)."""
    reason = _wire_unavailable()
    if reason is not None:
        return None, reason
    try:
        from tests.josev.venv import josev_python

        return josev_python(), None
    except RuntimeError as exc:
        return None, str(exc).splitlines()[0]


def bench_wire(loops: int, progress=lambda text: None) -> list[tuple[str, str]]:
    import tempfile

    josev, reason = _josev_for_wire()
    if reason is not None:
        return [("SECC turnaround on the wire (Josev EVCC)", f"skipped: {reason}")]
    rows = [("SECC turnaround on the wire, request in -> response out (Josev 0.31.2 EVCC, netns)", "p50 / p90 / p99")]
    for label, mode in WIRE_SCENARIOS.items():
        results: dict[str, object] = {}
        attempts: dict[str, int] = {}
        for who, fn in (("ours", _wire_ours), ("Josev", _wire_josev)):
            # Josev's SECC sometimes misses its own EV's 250 ms CurrentDemand timeout on this
            # machine class, which ends that session: such a run is retried (up to 3 times).
            for attempt in range(1, 4):
                progress(f"{label}: {who} (run {attempt})")
                with tempfile.TemporaryDirectory(prefix="secc-wire-") as work:
                    try:
                        results[who] = fn(josev, mode, loops, Path(work))
                        attempts[who] = attempt
                        break
                    except (RuntimeError, OSError, subprocess.SubprocessError, TimeoutError) as exc:
                        results[who] = exc
        cells = []
        for who in ("ours", "Josev"):
            value = results[who]
            if isinstance(value, Exception) or not value:
                cells.append(f"failed: {str(value).splitlines()[0] if value else 'no messages captured'}")
                continue
            times = [t for _, t in value]
            slowest = max(value, key=lambda item: item[1])
            retried = f", {attempts[who]} runs" if attempts[who] > 1 else ""
            cells.append(f"{fmt_us(pct(times, 50))} / {fmt_us(pct(times, 90))} / {fmt_us(pct(times, 99))} "
                         f"(n={len(times)}{retried}; max {fmt_us(slowest[1])} {slowest[0]})")
        ratio = "-"
        if all(isinstance(results[w], list) and results[w] for w in ("ours", "Josev")):
            ours = pct([t for _, t in results["ours"]], 50)
            ratio = f"{pct([t for _, t in results['Josev']], 50) / ours:,.0f}x"
        rows.append((f"  {label}", f"ours {cells[0]}"))
        rows.append(("", f"Josev {cells[1]}"))
        rows.append(("", f"median: Josev's SECC / ours = {ratio}"))
        waiting = [t for name, t in results["ours"] if name not in _CSMS_WAITS] if isinstance(results["ours"], list) else []
        if waiting and len(waiting) != len(results["ours"]):
            rows.append(("", f"ours without the messages that wait for the CSMS ({', '.join(sorted(_CSMS_WAITS))}): "
                             f"p99 {fmt_us(pct(waiting, 99))}"))
    return rows


# --------------------------------------------------------------------------- #
# 6. ISO 15118-20 through the bridge (issue 10, part 2)                         #
# --------------------------------------------------------------------------- #

#: Josev's -20 EV mode of the on-the-wire comparison
WIRE20_MODE = "iso20-dc-bpt"


def _wire20_ours(josev, loops: int, work: Path) -> tuple[list, str]:
    """Josev's -20 DC BPT EV against ``pnc-bridge run`` (a process, TLS 1.3 from the trust
    store's secc20 slot, the CSMS emulator on OCPP 2.1 in this process)."""
    sys.path.insert(0, str(REPO / "tests" / "link"))
    from netns import NetnsLoop, NetnsPair

    from hil.csms import CsmsEmulator
    from hil.demo_csms import PncCsms
    from hil.demo_rig import IDENTITY, PASSWORD, BridgeRig, make_trust_store
    from pnc_bridge.pki import generate_test_pki
    from tests.josev.peers import write_josev_pki

    pki = generate_test_pki(work / "pki")
    pki20 = generate_test_pki(work / "pki20", variant="iso20")
    josev_pki = write_josev_pki(pki20, work / "josev-pki")
    make_trust_store(work / "trust", pki, pki20=pki20)
    pair = NetnsPair.create()
    loop = NetnsLoop(pair.evse_ns)
    service = capture = None
    try:
        async def start_csms():
            csms = CsmsEmulator(basic_auth={IDENTITY: PASSWORD}, subprotocols=["ocpp2.1"])
            await csms.start()
            PncCsms(csms, pki, pki20=pki20, schedules=[{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 20000.0}]}]).install().warm_up()
            return csms

        csms = loop.run(start_csms())
        # EIM without waiting (as Josev's SECC); dynamic control first (Josev's EV takes the
        # first parameter set and cannot take a ScheduleExchangeRes without a price schedule)
        rig = BridgeRig(work, pki, pki20=pki20, evse={"max_discharge_power_w": 11000.0},
                        v2g={"interface": pair.evse_if, "slac": False, "host": "::", "protocols": ["iso20-dc"],
                             "payment_options": ["ExternalPayment"], "control_modes": ["DynamicControl", "ScheduledControl"]},
                        device_model={"AuthCtrlr/Enabled": "false"})
        config = work / "pnc-bridge.toml"
        config.write_text(rig.config_text(csms.url))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        service = subprocess.Popen(["ip", "netns", "exec", pair.evse_ns, sys.executable, "-m", "pnc_bridge", "run",
                                    "--config", str(config)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        async def booted():
            await csms.wait_for(lambda e: e.received("BootNotification"), 60)

        loop.run(booted(), timeout=90)
        time.sleep(1.0)
        capture = _Capture(pair.evse_ns, pair.evse_if, work / "ours20.pcapng")
        log = _run_josev_ev(josev, WIRE20_MODE, pair, josev_pki, work / "evcc-ours20.log", loops, wait=90)
        capture.stop()
        capture = None
        loop.run(csms.stop())
        return _labelled(turnarounds(work / "ours20.pcapng"), log), "complete"
    finally:
        if capture is not None:
            capture.stop()
        if service is not None:
            service.terminate()
            service.wait(30)
        loop.close()
        pair.destroy()


def _wire20_josev(josev, loops: int, work: Path) -> tuple[list, str]:
    """Josev's -20 DC BPT EV against Josev's own SECC (EIM, TLS 1.3, the same -20 PKI). A
    session its EV ends on a charge-loop timeout still yields the turnarounds it had."""
    sys.path.insert(0, str(REPO / "tests" / "link"))
    from netns import NetnsPair

    from pnc_bridge.pki import generate_test_pki
    from tests.josev.peers import JosevEvcc, JosevSecc, write_josev_pki

    pki20 = generate_test_pki(work / "pki20", variant="iso20")
    josev_pki = write_josev_pki(pki20, work / "josev-pki")
    pair = NetnsPair.create()
    secc = capture = ev = None
    try:
        secc = JosevSecc.start(josev, iface=pair.evse_if, pki_path=josev_pki, log_path=work / "josev-secc20.log",
                               netns=pair.evse_ns, protocols=("ISO_15118_20_DC",), auth_modes=("EIM",))
        for _ in range(300):
            if "UDP server socket ready" in secc.log() or secc.wait(0) is not None:
                break
            time.sleep(0.1)
        time.sleep(1.0)
        capture = _Capture(pair.evse_ns, pair.evse_if, work / "josev20.pcapng")
        ev = JosevEvcc.start(josev, WIRE20_MODE, iface=pair.ev_if, pki_path=josev_pki, log_path=work / "evcc-josev20.log",
                             netns=pair.ev_ns, loops=loops)
        end = time.monotonic() + 90
        while time.monotonic() < end and ev.wait(0.2) is None and "SessionStopAction.TERMINATE" not in ev.log():
            pass
        log = ev.log()
        capture.stop()
        capture = None
        outcome = "complete" if "SessionStopRes received" in log else (
            "ended by its EV: " + ("charge-loop timeout" if "TimeoutError" in log else "failed"))
        if "DC_ChargeLoopRes received" not in log:
            raise RuntimeError(f"Josev's EV did not reach the charge loop with Josev's SECC:\n{log[-1500:]}")
        return _labelled(turnarounds(work / "josev20.pcapng"), log), outcome
    finally:
        if capture is not None:
            capture.stop()
        if ev is not None:
            ev.stop()
        if secc is not None:
            secc.stop()
        pair.destroy()


def bench_wire20(loops: int, progress=lambda text: None) -> list[tuple[str, str]]:
    import tempfile

    josev, reason = _josev_for_wire()
    label = "ISO 15118-20 DC BPT, EIM, TLS 1.3 (Josev's EV in dynamic control with ours)"
    if reason is not None:
        return [(f"SECC turnaround on the wire, {label}", f"skipped: {reason}")]
    rows = [(f"SECC turnaround on the wire, {label}", "p50 / p90 / p99")]
    results: dict[str, object] = {}
    for who, fn in (("ours", _wire20_ours), ("Josev", _wire20_josev)):
        for attempt in range(1, 3):
            progress(f"-20 DC BPT: {who} (run {attempt})")
            with tempfile.TemporaryDirectory(prefix="secc-wire20-") as work:
                try:
                    results[who] = (*fn(josev, loops, Path(work)), attempt)
                    break
                except (RuntimeError, OSError, subprocess.SubprocessError, TimeoutError) as exc:
                    results[who] = exc
    medians = {}
    for who in ("ours", "Josev"):
        value = results[who]
        if isinstance(value, Exception) or not value[0]:
            rows.append(("", f"{who}: failed: {str(value).splitlines()[0] if isinstance(value, Exception) else 'no messages'}"))
            continue
        pairs, outcome, attempt = value
        times = [t for _, t in pairs]
        loop_times = [t for name, t in pairs if name == "DC_ChargeLoopReq"]
        slowest = max(pairs, key=lambda item: item[1])
        medians[who] = pct(times, 50)
        rows.append(("", f"{who}: {fmt_us(pct(times, 50))} / {fmt_us(pct(times, 90))} / {fmt_us(pct(times, 99))} "
                         f"(n={len(times)}, max {fmt_us(slowest[1])} {slowest[0]}; session {outcome}"
                         f"{f', {attempt} runs' if attempt > 1 else ''})"))
        if loop_times:
            rows.append(("", f"{who}: DC_ChargeLoopReq only: p50 {fmt_us(pct(loop_times, 50))}, "
                             f"max {fmt_us(max(loop_times))} (n={len(loop_times)})"))
    if len(medians) == 2:
        rows.append(("", f"median: Josev's SECC / ours = {medians['Josev'] / medians['ours']:,.0f}x"))
    return rows


def bench_csms_setpoint(pushes: int) -> list[tuple[str, str]]:
    """OCPP 2.1 UpdateDynamicSchedule from the CSMS emulator -> the first DC_ChargeLoopRes our
    EV holds with that target, through the whole bridge (station, service, SECC, TLS 1.3) on
    loopback; the EV sends a DC_ChargeLoopReq every 100 ms (dynamic control, DC_BPT)."""
    import random
    import tempfile

    from hil.demo_rig import IDENTITY, BridgeRig
    from hil.ev import Ev20Config, EvCredentials, iso20_tls_context
    from pnc_bridge.pki import generate_test_pki
    from pnc_bridge.secc.effects import ControlMode, EnergyService, PaymentOption
    from pnc_bridge.secc.schedule import from_rational

    interval = 0.1
    values = [-1000.0 - 10 * i if i % 2 else 1000.0 + 10 * i for i in range(pushes)]  # distinct, both directions
    sent: list[tuple[float, float]] = []  # (the CSMS's frame left, setpoint)
    built: list[tuple[float, float]] = []  # (request arrived, target) of every DC_ChargeLoopRes
    answered: list[float] = []  # the station's CALLRESULT arrived at the CSMS - frame left

    def on_step(ctx, adapter, step):
        mode = getattr(step.response, "cl_res_control_mode", None)
        if mode is not None and hasattr(mode, "evse_maximum_discharge_power"):
            charge = from_rational(mode.evse_maximum_charge_power)
            discharge = from_rational(mode.evse_maximum_discharge_power)
            built.append((adapter.frame_received_at, charge if charge > 0 else -discharge))

    with tempfile.TemporaryDirectory(prefix="secc-setpoint-") as tmp:
        pki = generate_test_pki(Path(tmp) / "pki")
        pki20 = generate_test_pki(Path(tmp) / "pki20", variant="iso20")
        creds = EvCredentials.from_test_pki(pki20, with_contract=True)

        async def main():
            loop = asyncio.get_running_loop()
            rng = random.Random(21)
            rig = BridgeRig(Path(tmp) / "bench", pki, pki20=pki20, evse={"max_discharge_power_w": 30000.0},
                            v2g={"protocols": ["iso20-dc"], "host": "127.0.0.1"}, csms={"subprotocols": ["ocpp2.1"]},
                            behaviour={"send_profile_on_needs": False}, service={"on_step": on_step})
            async with rig:
                config = Ev20Config(service=EnergyService.DC_BPT, control_mode=ControlMode.DynamicControl,
                                    payment=PaymentOption.Contract, credentials=creds, certificate_installation=False,
                                    loop_messages=int(pushes * 3.5 + 20), loop_interval=interval, ongoing_interval=0.02)
                ev_start = loop.time()
                task = asyncio.create_task(run_ev(config, "127.0.0.1", rig.endpoint.tls_port,
                                                  tls=iso20_tls_context([pki20.v2g_root], creds.oem_chain, creds.oem_key)))
                tid = await rig.csms.wait_for(lambda e: rig.behaviour.transaction_of(IDENTITY, 1), 30)
                await rig.csms.wait_for(lambda e: e.received("NotifyEVChargingNeeds", station=IDENTITY), 30)
                answer = await rig.csms.call_json(IDENTITY, "SetChargingProfile", {"evseId": 1, "chargingProfile": {
                    "id": 90, "stackLevel": 0, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Dynamic",
                    "transactionId": tid, "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [
                        {"startPeriod": 0, "limit": 20000.0, "dischargeLimit": -9000.0, "setpoint": 500.0,
                         "operationMode": "CentralSetpoint"}]}]}})
                assert answer["status"] == "Accepted", answer
                while len(built) < 5:
                    await asyncio.sleep(0.01)
                for value in values:
                    await asyncio.sleep(rng.uniform(0.2, 0.4))
                    before = len(rig.csms.record)
                    started = loop.time()
                    answer = await rig.csms.call_json(IDENTITY, "UpdateDynamicSchedule",
                                                      {"chargingProfileId": 90, "scheduleUpdate": {"setpoint": value}})
                    assert answer["status"] == "Accepted", answer
                    out = next((r for r in rig.csms.record[before:] if r.direction == "out" and r.message_type == 2), None)
                    frame_left = out.at if out is not None else started
                    sent.append((frame_left, value))
                    answered.append(loop.time() - frame_left)
                ev = await task
                return ev, ev_start

        ev, ev_start = asyncio.run(main())
    assert ev.result.ok, ev.result.reason
    samples = [(ev_start + s.t, s.evse_target_w) for s in ev.result.loop]
    delays, cycles = [], []
    for at, value in sent:
        after = [target for t, target in built if t >= at]
        cycles.append(after.index(value) + 1 if value in after else -1)
        delays.append(next(t for t, target in samples if t >= at and target == value) - at)
    return [
        (f"ISO 15118-20 CSMS setpoint (OCPP 2.1 UpdateDynamicSchedule frame sent) -> our EV holds the first "
         f"DC_ChargeLoopRes with it ({pushes} setpoints, EV cycle {interval * 1000:.0f} ms, whole bridge, TLS 1.3 loopback): "
         "p50 / p99 / max", f"{fmt_us(pct(delays, 50))} / {fmt_us(pct(delays, 99))} / {fmt_us(max(delays))}"),
        ("  charge-loop responses after the frame until the first with the setpoint, max", f"{max(cycles)}"),
        ("  UpdateDynamicSchedule round trip at the CSMS (the setpoint is in the session before the answer), p50",
         fmt_us(pct(answered, 50))),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=20.0, help=argparse.SUPPRESS)
    parser.add_argument("--max-connections", type=int, default=256, help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=200, help="concurrent EV sessions (default 200)")
    parser.add_argument("--only", choices=("iso2", "iso20", "wire", "bridge20"),
                        help="run only the DIN / ISO 15118-2, the ISO 15118-20, the on-the-wire (Josev) part, or the "
                             "ISO 15118-20 bridge part (Josev's -20 EV on the wire, CSMS setpoint -> EV)")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.cpu, args.seconds, args.max_connections)
        return 0
    n = 2000 if args.quick else 20000
    rows = []
    if args.only in (None, "iso2"):
        print("in-process ...", file=sys.stderr)
        rows += bench_in_process(n)
        print("loopback TCP ...", file=sys.stderr)
        rows += bench_loopback(n // 4)
        print(f"{args.sessions} concurrent sessions ...", file=sys.stderr)
        rows += bench_many(args.sessions, 5.0 if args.quick else 20.0)
    if args.only in (None, "iso20"):
        print("ISO 15118-20 in-process ...", file=sys.stderr)
        rows += bench_iso20_in_process(n)
        print("ISO 15118-20 setpoint -> EV ...", file=sys.stderr)
        rows += bench_iso20_setpoint(20 if args.quick else 100)
    if args.only in (None, "wire"):
        print("SECC turnaround on the wire, Josev's EVCC against our SECC and Josev's ...", file=sys.stderr)
        rows += bench_wire(loops=5 if args.quick else 10, progress=lambda text: print(f"  {text}", file=sys.stderr))
    if args.only in (None, "bridge20"):
        print("ISO 15118-20 on the wire, Josev's -20 EVCC against our SECC and Josev's ...", file=sys.stderr)
        rows += bench_wire20(loops=5 if args.quick else 10, progress=lambda text: print(f"  {text}", file=sys.stderr))
        print("ISO 15118-20 CSMS setpoint -> EV through the bridge ...", file=sys.stderr)
        rows += bench_csms_setpoint(20 if args.quick else 50)
    width = max(len(r[0]) for r in rows)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nSECC benchmark ({os.cpu_count()} CPUs, load average {load}, Python {sys.version.split()[0]})\n")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
