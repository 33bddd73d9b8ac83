"""OCPP client benchmark: outbox throughput and Authorize round trip, next to a bare
``ocpp``-package (mobilityhouse) charge point doing the same exchange in the same run.

    python benchmarks/ocpp_bench.py             # full run (about a minute)
    python benchmarks/ocpp_bench.py --quick     # a smoke run

Both clients talk to the same ``hil.csms`` emulator over WebSockets on loopback. Figures:

- outbox persist: TransactionEvents committed to SQLite (WAL, synchronous=FULL: on disk
  when the call returns) per second, one commit per event, as the station's API does;
- outbox deliver: TransactionEvents per second from the outbox to the CSMS and back
  (CALL, CALLRESULT, delete), one outstanding CALL at a time as OCPP-J requires;
- Authorize round trip: median and 95th percentile of ``station.authorize()`` versus
  ``ocpp.v201.ChargePoint.call(Authorize)`` (OCPP 2.0.1) and ``ocpp.v21.ChargePoint``
  (OCPP 2.1); both check every payload against the schemas of the version;
- setpoint delivery (OCPP 2.1 dynamic control): from the CSMS handing UpdateDynamicSchedule
  to its WebSocket to the service's listener holding the ``DynamicScheduleUpdated`` event
  with the new setpoint (what the charge loop reads in its next cycle), p50 / p99; it
  includes the durable write of the updated profile (SQLite, synchronous=FULL).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import websockets  # noqa: E402
from ocpp.v201 import ChargePoint as OcppChargePoint  # noqa: E402
from ocpp.v201 import call as ocpp_call  # noqa: E402
from ocpp.v21 import ChargePoint as OcppChargePoint21  # noqa: E402
from ocpp.v21 import call as ocpp_call21  # noqa: E402

from hil.csms import CsmsEmulator  # noqa: E402
from pnc_bridge.ocpp import (  # noqa: E402
    ChargingStation,
    EnergyTransferMode,
    EvChargingNeeds,
    EvseLayout,
    events,
    ChargingStationInfo,
    FileCertificateStore,
    NetworkProfile,
    Outbox,
    StationConfig,
    StationSettings,
    Store,
)

IDENTITY = "BENCH-1"
TOKEN = {"idToken": "DEAAA1234567890", "type": "eMAID"}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _te(seq: int) -> dict:
    return {"eventType": "Updated", "timestamp": "2024-01-01T00:00:00Z", "triggerReason": "MeterValuePeriodic",
            "seqNo": seq, "transactionInfo": {"transactionId": "bench"},
            "meterValue": [{"timestamp": "2024-01-01T00:00:00Z", "sampledValue": [{"value": 1234.5}]}]}


def bench_persist(directory: Path, events: int, synchronous: str) -> float:
    store = Store(directory / f"persist-{synchronous}.sqlite", synchronous=synchronous)
    outbox = Outbox(store)
    start = time.perf_counter()
    for i in range(events):
        outbox.put_transaction_event(1, _te, offline=False, restart_sequence=i == 0)
    elapsed = time.perf_counter() - start
    store.close()
    return events / elapsed


def _station(directory: Path, url: str) -> ChargingStation:
    settings = StationSettings(identity=IDENTITY, basic_auth_password="Bench-Password-0123",
                               evses=(EvseLayout(1, max_discharge_power_w=50_000.0),),
                               overrides={"OCPPCommCtrlr/WebSocketPingInterval": "0", "OCPPCommCtrlr/HeartbeatInterval": "3600"})
    config = StationConfig(IDENTITY, NetworkProfile(0, url, 1, 10.0), ChargingStationInfo("bench", "bench"), settings)
    store = Store(directory / "station.sqlite")
    return ChargingStation(config, store=store, certificates=FileCertificateStore(directory / "trust"))


async def bench_deliver(directory: Path, events: int) -> float:
    async with CsmsEmulator() as csms:
        station = _station(directory, csms.url)
        await station.start()
        assert await station.wait_online(10)
        tid = await station.start_transaction(1, 1, trigger_reason="Authorized", id_token=TOKEN)
        await csms.wait_for(lambda e: e.received("TransactionEvent"), 10)
        await station.stop()  # queue the backlog offline, then measure the drain alone
        outbox = station.outbox
        for _ in range(events):
            outbox.put_transaction_event(1, _te, offline=True, restart_sequence=False)
        before = len(csms.received("TransactionEvent"))
        restarted = ChargingStation(station.config, store=station.store, certificates=station.certificates)
        start = time.perf_counter()
        await restarted.start()
        # Poll our own outbox (cheap), not the emulator's growing record.
        while await restarted.store.run(restarted.outbox.pending) > 0:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        assert len(csms.received("TransactionEvent")) >= before + events
        del tid
        await restarted.stop()
        restarted.store.close()
        return events / elapsed


async def bench_authorize(directory: Path, calls: int, version: str = "2.0.1") -> tuple[list[float], list[float]]:
    directory.mkdir(parents=True, exist_ok=True)
    async with CsmsEmulator(subprotocols=[f"ocpp{version}"]) as csms:
        station = _station(directory, csms.url)
        await station.start()
        assert await station.wait_online(10)
        ours: list[float] = []
        for _ in range(calls):
            start = time.perf_counter()
            await station.authorize(TOKEN)
            ours.append(time.perf_counter() - start)
        await station.stop()
        station.store.close()

        # The peer: a bare charge point from the ocpp package, same CSMS, same exchange.
        peer: list[float] = []
        charge_point, calls_module = (OcppChargePoint21, ocpp_call21) if version == "2.1" else (OcppChargePoint, ocpp_call)
        async with websockets.connect(f"{csms.url}/PEER-1", subprotocols=[f"ocpp{version}"], proxy=None) as ws:
            cp = charge_point("PEER-1", ws)
            reader = asyncio.create_task(cp.start())
            await cp.call(calls_module.BootNotification(charging_station={"model": "peer", "vendor_name": "peer"}, reason="PowerUp"))
            for _ in range(calls):
                start = time.perf_counter()
                await cp.call(calls_module.Authorize(id_token={"id_token": TOKEN["idToken"], "type": TOKEN["type"]}), suppress=False)
                peer.append(time.perf_counter() - start)
            reader.cancel()
        return ours, peer


async def bench_setpoint(directory: Path, updates: int) -> list[float]:
    """UpdateDynamicSchedule sent by the CSMS -> DynamicScheduleUpdated at the service (s)."""
    directory.mkdir(parents=True, exist_ok=True)
    async with CsmsEmulator(subprotocols=["ocpp2.1"]) as csms:
        station = _station(directory, csms.url)
        arrived: dict[float, float] = {}
        station.add_listener(lambda e: arrived.setdefault(e.period.setpoint, time.monotonic())
                             if isinstance(e, events.DynamicScheduleUpdated) else None)
        await station.start()
        assert await station.wait_online(10)
        tid = await station.start_transaction(1, 1, trigger_reason="CablePluggedIn", charging_state="EVConnected")
        await station.notify_ev_charging_needs(1, EvChargingNeeds(EnergyTransferMode.DC_BPT, max_power_w=50_000.0,
                                                                  max_discharge_power_w=50_000.0))
        period = {"startPeriod": 0, "limit": 50_000.0, "dischargeLimit": -50_000.0, "setpoint": 0.0,
                  "operationMode": "CentralSetpoint"}
        profile = {"id": 1, "stackLevel": 1, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Dynamic",
                   "transactionId": tid, "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [period]}]}
        await csms.call_json(IDENTITY, "SetChargingProfile", {"evseId": 1, "chargingProfile": profile})
        delays = []
        for i in range(updates):
            setpoint = float((i % 2 and -1 or 1) * (1000 + i))  # a new value every time, both signs
            answer = await csms.call_json(IDENTITY, "UpdateDynamicSchedule",
                                          {"chargingProfileId": 1, "scheduleUpdate": {"setpoint": setpoint}})
            assert answer["status"] == "Accepted", answer
            # From the moment the emulator handed the frame to its WebSocket (its record's
            # monotonic time stamp), not counting the emulator's own schema check before it.
            sent = next(r for r in reversed(csms.record) if r.direction == "out" and r.action == "UpdateDynamicSchedule")
            delays.append(arrived[setpoint] - sent.at)
        await station.stop()
        station.store.close()
        return delays


async def main_async(args: argparse.Namespace) -> None:
    logging.disable(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        print(f"persisting {args.events} TransactionEvents (synchronous=FULL, then NORMAL) ...", flush=True)
        full = bench_persist(directory, args.events, "FULL")
        normal = bench_persist(directory, args.events, "NORMAL")
        print(f"delivering {args.events} queued TransactionEvents to the CSMS emulator ...", flush=True)
        deliver = await bench_deliver(directory / "deliver", args.events)
        print(f"{args.calls} Authorize round trips, pnc-bridge then the ocpp package ...", flush=True)
        ours, peer = await bench_authorize(directory / "auth", args.calls)
        print(f"{args.calls} Authorize round trips on OCPP 2.1, pnc-bridge then the ocpp package ...", flush=True)
        ours21, peer21 = await bench_authorize(directory / "auth21", args.calls, "2.1")
        print(f"{args.calls} UpdateDynamicSchedule setpoints (OCPP 2.1) to the service ...", flush=True)
        setpoint = await bench_setpoint(directory / "setpoint", args.calls)
    ms = 1000.0
    print()
    print("| measurement | pnc-bridge | ocpp package (bare client) |")
    print("|---|---|---|")
    print(f"| outbox persist, events/s (WAL, synchronous=FULL) | {full:,.0f} | n/a (keeps nothing) |")
    print(f"| outbox persist, events/s (WAL, synchronous=NORMAL) | {normal:,.0f} | n/a |")
    print(f"| outbox deliver to CSMS, events/s | {deliver:,.0f} | n/a |")
    print(f"| Authorize round trip (2.0.1), median ms | {statistics.median(ours) * ms:.2f} | {statistics.median(peer) * ms:.2f} |")
    print(f"| Authorize round trip (2.0.1), p95 ms | {_percentile(ours, 0.95) * ms:.2f} | {_percentile(peer, 0.95) * ms:.2f} |")
    print(f"| Authorize round trip (2.1), median ms | {statistics.median(ours21) * ms:.2f} | {statistics.median(peer21) * ms:.2f} |")
    print(f"| Authorize round trip (2.1), p95 ms | {_percentile(ours21, 0.95) * ms:.2f} | {_percentile(peer21, 0.95) * ms:.2f} |")
    print(f"| setpoint CSMS -> service event (2.1), p50 ms | {statistics.median(setpoint) * ms:.2f} | n/a |")
    print(f"| setpoint CSMS -> service event (2.1), p99 ms | {_percentile(setpoint, 0.99) * ms:.2f} | n/a |")
    print(f"\n({args.events} events, {args.calls} Authorize calls, loopback, Python {sys.version.split()[0]})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="TransactionEvents per outbox measurement")
    parser.add_argument("--calls", type=int, default=500, help="Authorize calls per client")
    parser.add_argument("--quick", action="store_true", help="small numbers, for a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.events, args.calls = 200, 50
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
