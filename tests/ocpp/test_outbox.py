"""The durable outbox on its own: on disk before it can be sent, lanes, E13 retries,
per-EVSE seqNo in the same commit, offline flags, and survival of a killed process."""

from __future__ import annotations

import pytest

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from pnc_bridge.ocpp import Lane, Outbox, RetryPolicy, Store

#: Every test here runs on OCPP 2.0.1 and on OCPP 2.1 (the emulator accepts one of them).
pytestmark = pytest.mark.usefixtures("each_ocpp_version")


def te(seq_no: int, tid: str = "T1") -> dict:
    return {
        "eventType": "Updated",
        "timestamp": "2024-01-01T00:00:00Z",
        "triggerReason": "MeterValuePeriodic",
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": tid},
    }


def test_messages_survive_closing_and_reopening(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    outbox = Outbox(store)
    outbox.put("SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": "2024-01-01T00:00:00Z"}, offline=False)
    outbox.put_transaction_event(1, te, offline=False, restart_sequence=True)
    store.close()
    again = Outbox(Store(tmp_path / "s.sqlite"))
    assert [e.action for e in again.queued()] == ["SecurityEventNotification", "TransactionEvent"]


def test_seqno_per_evse_restarts_with_each_transaction(tmp_path: Path) -> None:
    outbox = Outbox(Store(tmp_path / "s.sqlite"))
    seqs = [outbox.put_transaction_event(1, te, offline=False, restart_sequence=i == 0)[1] for i in range(3)]
    other = outbox.put_transaction_event(2, te, offline=False, restart_sequence=False)[1]
    restarted = outbox.put_transaction_event(1, te, offline=False, restart_sequence=True)[1]
    assert seqs == [0, 1, 2] and other == 0 and restarted == 0
    assert [e.payload["seqNo"] for e in outbox.queued()] == [0, 1, 2, 0, 0]


def test_lanes_are_served_in_order_and_a_waiting_head_blocks_only_its_lane(tmp_path: Path) -> None:
    outbox = Outbox(Store(tmp_path / "s.sqlite"))
    outbox.put_transaction_event(1, te, offline=False, restart_sequence=True)
    outbox.put("MeterValues", {"evseId": 1, "meterValue": []}, offline=False)
    outbox.put("NotifyEVChargingSchedule", {"x": 1}, offline=False)
    entry, _ = outbox.next_ready(0.0)
    assert entry is not None and entry.lane is Lane.SCHEDULE
    outbox.delivered(entry.id)
    head, _ = outbox.next_ready(0.0)
    assert head is not None and head.action == "TransactionEvent"
    assert outbox.failed(head, 0.0, "timeout", RetryPolicy(3, 10.0)) is False
    entry, _ = outbox.next_ready(1.0)  # the TransactionEvent waits 10 s; MeterValues may go
    assert entry is not None and entry.action == "MeterValues"
    outbox.delivered(entry.id)
    entry, wake = outbox.next_ready(1.0)
    assert entry is None and wake == 10.0
    entry, _ = outbox.next_ready(10.0)
    assert entry is not None and entry.attempts == 1


def test_retry_interval_grows_and_the_final_failure_goes_to_dead_letter(tmp_path: Path) -> None:
    # E13 example: 3 attempts, 60 s interval: wait 60 s, then 120 s, then discard.
    outbox = Outbox(Store(tmp_path / "s.sqlite"))
    outbox.put_transaction_event(1, te, offline=False, restart_sequence=True)
    policy = RetryPolicy(3, 60.0)
    now = 0.0
    waits = []
    for _ in range(3):
        entry, _ = outbox.next_ready(now)
        assert entry is not None
        if outbox.failed(entry, now, "CALLERROR InternalError", policy):
            break
        _, wake = outbox.next_ready(now)
        waits.append(wake - now)
        now = wake
    assert waits == [60.0, 120.0]
    assert outbox.pending() == 0
    (dead,) = outbox.dead_letters()
    assert dead["attempts"] == 3 and dead["last_error"] == "CALLERROR InternalError"


def test_security_events_are_never_discarded(tmp_path: Path) -> None:
    outbox = Outbox(Store(tmp_path / "s.sqlite"))
    outbox.put("SecurityEventNotification", {"type": "X", "timestamp": "2024-01-01T00:00:00Z"}, offline=False)
    for _ in range(10):
        entry, wake = outbox.next_ready(1e9)
        assert entry is not None
        assert outbox.failed(entry, 0.0, "boom", RetryPolicy(2, 1.0)) is False
    assert outbox.pending() == 1


def test_offline_flag_is_set_on_queued_transaction_events_only(tmp_path: Path) -> None:
    outbox = Outbox(Store(tmp_path / "s.sqlite"))
    outbox.put_transaction_event(1, te, offline=False, restart_sequence=True)
    outbox.put("MeterValues", {"evseId": 1, "meterValue": []}, offline=False)
    assert outbox.mark_offline() == 1
    entries = {e.action: e for e in outbox.queued()}
    assert entries["TransactionEvent"].wire_payload()["offline"] is True
    assert "offline" not in entries["MeterValues"].wire_payload()


def test_a_killed_writer_loses_nothing_it_committed(tmp_path: Path) -> None:
    """A child process commits events as fast as it can and is killed with SIGKILL; every
    event it reported as committed is in the database, with gap-free seqNos."""
    db = tmp_path / "k.sqlite"
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pnc_bridge.ocpp import Outbox, Store
                outbox = Outbox(Store({str(db)!r}))
                def te(n):
                    return {{"eventType": "Updated", "timestamp": "2024-01-01T00:00:00Z",
                             "triggerReason": "MeterValuePeriodic", "seqNo": n,
                             "transactionInfo": {{"transactionId": "T"}}}}
                i = 0
                while True:
                    outbox.put_transaction_event(1, te, offline=True, restart_sequence=i == 0)
                    print(i, flush=True)
                    i += 1
                """
            ),
        ],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(repo)},
        text=True,
    )
    assert child.stdout is not None
    committed = -1
    for line in child.stdout:
        committed = int(line)
        if committed >= 200:
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    seqs = [e.payload["seqNo"] for e in Outbox(Store(db)).queued()]
    assert seqs == list(range(len(seqs)))
    assert len(seqs) >= committed + 1


def test_a_message_that_can_never_be_sent_is_set_aside_in_any_lane(tmp_path: Path) -> None:
    outbox = Outbox(Store(tmp_path / "s.sqlite"))
    outbox.put("SecurityEventNotification", {"type": "X"}, offline=False)  # no timestamp: fails its schema
    entry, _ = outbox.next_ready(0.0)
    assert entry is not None
    outbox.discard(entry, "invalid: timestamp is a required property")
    assert outbox.pending() == 0 and outbox.dead_letters()[0]["action"] == "SecurityEventNotification"
