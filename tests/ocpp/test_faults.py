"""Faults: frame loss and delay both ways, the CSMS away, the service killed with SIGKILL.

Every assertion is on the CSMS emulator's record of what it received. Delivery is
at-least-once by design (an answer that is lost makes the station send the event again,
with the same seqNo); "exactly once per seqNo" is therefore checked on the record with
repeats of the same event folded, and the repeats themselves are checked to be the very
same event (same seqNo, type, timestamp and content, only ``offline`` may have been set).
"""

from __future__ import annotations

import pytest

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from hil.csms import CsmsEmulator, FaultPlan
from pnc_bridge.ocpp import backoff_delay
from tests.ocpp.conftest import IDENTITY, PASSWORD, run, tx_events

#: Every test here runs on OCPP 2.0.1 and on OCPP 2.1 (the emulator accepts one of them).
pytestmark = pytest.mark.usefixtures("each_ocpp_version")

REPO = Path(__file__).resolve().parents[2]


def check_transaction_record(payloads: list[dict[str, Any]], *, complete: bool = True) -> dict[str, list[int]]:
    """Fold repeats and check continuity, order and identity of repeats; returns tid -> seqNos."""
    first: dict[tuple[str, int], dict[str, Any]] = {}
    order: dict[str, list[int]] = {}
    for payload in payloads:
        tid = payload["transactionInfo"]["transactionId"]
        key = (tid, payload["seqNo"])
        bare = {k: v for k, v in payload.items() if k != "offline"}
        if key in first:
            assert first[key] == bare, f"seqNo {key} sent twice with different content"
            continue
        first[key] = bare
        order.setdefault(tid, []).append(payload["seqNo"])
    for tid, seqs in order.items():
        assert seqs == list(range(len(seqs))), f"{tid}: seqNos {seqs} not gap-free and in order"
        events = [first[(tid, s)]["eventType"] for s in seqs]
        assert events[0] == "Started" and "Started" not in events[1:]
        if complete:
            assert events[-1] == "Ended" and "Ended" not in events[:-1], events
    return order


def test_back_off_schedule_over_minutes_of_outage() -> None:
    """Part 4, 5.3 with the default variables: the back-off doubles, then stays; an
    outage of many minutes is retried at the capped interval, never given up."""
    rng = random.Random(7)
    delays = [backoff_delay(n, wait_minimum=3, random_range=10, repeat_times=5, rng=rng) for n in range(30)]
    bases = [3 * 2 ** min(n, 5) for n in range(30)]
    assert all(b <= d <= b + 10 for b, d in zip(bases, delays))
    assert delays[0] < 13 and min(delays[5:]) >= 96
    assert sum(delays) > 40 * 60  # 30 attempts cover more than 40 minutes


def test_thirty_percent_loss_and_delays_both_ways(harness) -> None:
    async def body() -> None:
        plan = FaultPlan(drop_in=0.3, drop_out=0.3, delay_in=(0.0, 0.02), delay_out=(0.0, 0.02), seed=42)
        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}, faults=plan) as csms:
            h = harness(csms.url, message_timeout=0.25, overrides={"OCPPCommCtrlr/MessageAttempts[TransactionEvent]": "50"})
            station = await h.start()
            expected = 0
            for _ in range(3):
                tid = await station.start_transaction(1, 1, trigger_reason="Authorized", id_token={"idToken": "T", "type": "Central"})
                for _ in range(8):
                    await station.update_transaction(tid, trigger_reason="MeterValuePeriodic")
                await station.end_transaction(tid, trigger_reason="EVDeparted", stopped_reason="EVDisconnected")
                expected += 10
            await csms.wait_for(lambda e: sum(len(v) for v in _delivered(e).values()) >= expected, 50)
            for _ in range(200):
                if await station.store.run(station.outbox.pending) == 0:
                    break
                await asyncio.sleep(0.05)
            order = check_transaction_record(tx_events(csms))
            assert sorted(len(s) for s in order.values()) == [10, 10, 10]
            assert any(r.dropped for r in csms.record if r.direction == "in")
            assert any(r.dropped for r in csms.record if r.direction == "out")
            assert station.outbox.dead_letters() == []
            assert csms.invalid_frames() == []
            await h.stop()

    run(body(), timeout=90)


def _delivered(csms: CsmsEmulator) -> dict[str, set[int]]:
    seen: dict[str, set[int]] = {}
    for p in tx_events(csms):
        seen.setdefault(p["transactionInfo"]["transactionId"], set()).add(p["seqNo"])
    return seen


def test_csms_down_while_the_station_keeps_charging(harness) -> None:
    async def body() -> None:
        csms = CsmsEmulator(basic_auth={IDENTITY: PASSWORD})
        await csms.start()
        h = harness(csms.url)
        station = await h.start()
        assert await station.wait_online(5)
        tid = await station.start_transaction(1, 1, trigger_reason="Authorized", id_token={"idToken": "T", "type": "Central"})
        await csms.wait_for(lambda e: len(e.received("TransactionEvent")) == 1, 5)
        port = csms.port
        await csms.down()
        for _ in range(20):
            await station.update_transaction(tid, trigger_reason="MeterValuePeriodic")
            await asyncio.sleep(0.1)
        await station.end_transaction(tid, trigger_reason="EVDeparted", stopped_reason="EVDisconnected")
        assert not station.online
        queued = await station.store.run(station.outbox.queued)
        assert len(queued) >= 21 and all(e.offline for e in queued if e.action == "TransactionEvent")
        back = CsmsEmulator(port=port, basic_auth={IDENTITY: PASSWORD})
        back.record = csms.record  # one record across the outage
        await back.start()
        await back.wait_for(lambda e: len(_delivered(e).get(tid, ())) == 22, 20)
        order = check_transaction_record(tx_events(back))
        assert order[tid] == list(range(22))
        after = [p for p in tx_events(back) if p["seqNo"] > 0]
        assert all(p.get("offline") is True for p in after)  # E04.FR.03, E11.FR.02
        await h.stop()
        await back.stop()

    run(body(), timeout=60)


def _service_config(directory: Path, url: str) -> Path:
    config = directory / "pnc-bridge.toml"
    config.write_text(textwrap.dedent(f"""
        [station]
        identity = "{IDENTITY}"
        [csms]
        url = "{url}"
        security_profile = 1
        password = "{PASSWORD}"
        message_timeout = 2
        [paths]
        data_dir = "data"
        trust_store = "trust"
        [simulator]
        sessions = -1
        session_seconds = 1.0
        meter_interval = 0.05
        pause_seconds = 0.1
        [device_model]
        "OCPPCommCtrlr/RetryBackOffWaitMinimum" = "0"
        "OCPPCommCtrlr/RetryBackOffRandomRange" = "0"
        "OCPPCommCtrlr/WebSocketPingInterval" = "0"
    """))
    return config


def _start_service(config: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "pnc_bridge", "run", "--config", str(config)],
        cwd=config.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def test_kill_minus_9_mid_transaction_and_restart(tmp_path: Path) -> None:
    async def body() -> None:
        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}) as csms:
            config = _service_config(tmp_path, csms.url)
            service = _start_service(config)
            try:
                def open_transaction_with_updates(e: CsmsEmulator) -> str | None:
                    seqs: dict[str, list[dict]] = {}
                    for p in tx_events(e):
                        seqs.setdefault(p["transactionInfo"]["transactionId"], []).append(p)
                    for tid, events in seqs.items():
                        if len(events) >= 5 and all(p["eventType"] != "Ended" for p in events):
                            return tid
                    return None

                interrupted = await csms.wait_for(open_transaction_with_updates, 30)
                os.kill(service.pid, signal.SIGKILL)
                await asyncio.to_thread(service.wait)  # never block the CSMS's event loop
                received_before_restart = len(tx_events(csms))
                service = _start_service(config)

                def ended(e: CsmsEmulator) -> bool:
                    done = [p for p in tx_events(e) if p["eventType"] == "Ended"
                            and p["transactionInfo"]["transactionId"] == interrupted]
                    others = {p["transactionInfo"]["transactionId"] for p in tx_events(e)[received_before_restart:]}
                    return bool(done) and len(others) >= 3

                await csms.wait_for(ended, 30)
                service.send_signal(signal.SIGTERM)
                assert await asyncio.to_thread(service.wait, 20) == 0  # clean shutdown on SIGTERM
            finally:
                if service.poll() is None:
                    service.kill()
                    service.wait()
            payloads = tx_events(csms)
            order = check_transaction_record(payloads, complete=False)
            ends = {p["transactionInfo"]["transactionId"]: p for p in payloads if p["eventType"] == "Ended"}
            # the transaction that was open at SIGKILL ends after the restart, with the next seqNo
            assert ends[interrupted]["transactionInfo"]["stoppedReason"] == "PowerLoss"
            assert ends[interrupted]["seqNo"] == order[interrupted][-1] == len(order[interrupted]) - 1
            # every transaction is complete: ended by the session, the kill, or the SIGTERM
            assert all(tid in ends for tid in order), "a transaction was never ended"
            assert csms.invalid_frames() == []
            boots = [r.payload["reason"] for r in csms.received("BootNotification")]
            assert len(boots) == 2

    run(body(), timeout=120)


def test_websocket_ping_detects_a_csms_that_stopped_answering(harness) -> None:
    """Part 4, 5.2 / 8.4: with WebSocketPingInterval set, a connection whose peer no longer
    reads (no close, no RST) is noticed by the unanswered ping and replaced."""

    async def body() -> None:
        from pnc_bridge.ocpp import StationConfig

        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}) as csms:
            h = harness(csms.url, overrides={"OCPPCommCtrlr/WebSocketPingInterval": "1"})
            h.config = StationConfig(**{**h.config.__dict__, "pong_timeout": 1.0})
            station = await h.start()
            assert await station.wait_online(5)
            await csms.wait_for(lambda e: e.received("StatusNotification"), 5)
            csms.stations[IDENTITY].ws.transport.pause_reading()  # the CSMS hangs
            events = station.subscribe()
            while True:
                event = await asyncio.wait_for(events.get(), 10)
                if getattr(event, "online", None) is False:
                    break
            await csms.wait_for(lambda e: e.connections >= 2, 10)
            assert await station.wait_online(5)
            await h.stop()

    run(body())


def test_transaction_event_retried_after_callerror_then_discarded(harness) -> None:
    """E13 against a CSMS that answers CALLERROR (the ocpp package turns a failing handler
    into InternalError): resent with a new MessageId (part 4, 4.1.4) until accepted, and
    after MessageAttempts failures set aside as E13.FR.04 says, with an event."""

    async def body() -> None:
        from pnc_bridge.ocpp import events

        failures = {"left": 2}

        def flaky(payload: dict, station_id: str) -> dict:
            if payload["transactionInfo"]["transactionId"] == "doomed" or failures["left"] > 0:
                failures["left"] -= 1
                raise RuntimeError("CSMS database unavailable")
            return {}

        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}, responses={"TransactionEvent": flaky}) as csms:
            h = harness(csms.url, overrides={"OCPPCommCtrlr/MessageAttempts[TransactionEvent]": "3"})
            station = await h.start()
            queue = station.subscribe()
            assert await station.wait_online(5)
            tid = await station.start_transaction(1, 1, trigger_reason="Authorized", id_token={"idToken": "T", "type": "Central"})
            await csms.wait_for(lambda e: len(e.received("TransactionEvent")) >= 3, 10)
            copies = csms.received("TransactionEvent")
            assert {c.payload["seqNo"] for c in copies} == {0}
            assert len({c.message_id for c in copies}) == 3  # a new MessageId for every attempt
            await station.end_transaction(tid, trigger_reason="EVDeparted", stopped_reason="EVDisconnected")
            doomed = await station.start_transaction(1, 1, trigger_reason="Authorized", transaction_id="doomed")
            del doomed
            while True:
                event = await asyncio.wait_for(queue.get(), 10)
                if isinstance(event, events.MessageDiscarded):
                    break
            dead = station.outbox.dead_letters()
            assert len(dead) == 1 and dead[0]["payload"]["transactionInfo"]["transactionId"] == "doomed"
            assert dead[0]["attempts"] == 3 and "InternalError" in dead[0]["last_error"]
            await h.stop()

    run(body())
