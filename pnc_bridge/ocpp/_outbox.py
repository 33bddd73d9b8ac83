"""Durable outbox: must-deliver messages are on disk before they are sent.

Rules of this module:

- A message is committed to the ``outbox`` table before anyone may send it, and deleted
  only after the CSMS answered it with a CALLRESULT. Delivery is at-least-once: a crash
  between the CALLRESULT and the delete sends it again, with the same payload (and for a
  TransactionEvent the same ``seqNo``, which is how a CSMS recognises the repeat).
- Messages go in lanes. Within a lane order is kept (head of line); lanes are served
  in ``Lane`` order, so a NotifyEVChargingSchedule for the live session is not stuck
  behind a day of queued TransactionEvents, and a TransactionEvent that waits for its
  retry does not hold back security events.
- Retries follow E13: after the n-th failed attempt the message waits n x
  MessageAttemptInterval; after MessageAttempts failures it is discarded (E13.FR.04),
  i.e. moved to ``dead_letter`` with the last error, never silently dropped. Security
  events are never discarded (A04.FR.02: "queued with a guaranteed delivery").
  A lost connection is not a failed attempt: that is being offline (E13 remark).
- ``seqNo`` is counted per EVSE (part 2 E 1.3.2) in the same commit as the message, and
  starts at 0 with each transaction.
- TransactionEvents queued or still queued while offline are sent with ``offline=true``
  (E04.FR.03, E11.FR.07).
- Everything here is synchronous and blocking; the station calls it through ``Store.run``.
  Retry times live in memory: after a restart every queued message is due at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import IntEnum
from typing import Any, Callable

from pnc_bridge.ocpp._store import Store

__all__ = ["Lane", "LANES", "OutboxEntry", "Outbox", "RetryPolicy"]


class Lane(IntEnum):
    """Outbox lanes, served in this order."""

    SCHEDULE = 0  # NotifyEVChargingSchedule: the CSMS needs it during the live session
    SECURITY = 1  # SecurityEventNotification
    TRANSACTION = 2  # TransactionEvent
    METER = 3  # MeterValues


#: action -> lane; only these actions go through the outbox.
LANES: dict[str, Lane] = {
    "NotifyEVChargingSchedule": Lane.SCHEDULE,
    "SecurityEventNotification": Lane.SECURITY,
    "TransactionEvent": Lane.TRANSACTION,
    "MeterValues": Lane.METER,
}

#: Lanes whose messages are never discarded after MessageAttempts failures.
_NEVER_DISCARD = frozenset({Lane.SECURITY})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """MessageAttempts / MessageAttemptInterval (OCPPCommCtrlr, instance TransactionEvent)."""

    attempts: int
    interval: float


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    id: int
    lane: Lane
    action: str
    payload: dict[str, Any]
    offline: bool
    attempts: int

    def wire_payload(self) -> dict[str, Any]:
        """The payload as it goes out: ``offline`` set on TransactionEvents queued offline."""
        if self.action == "TransactionEvent" and self.offline:
            return {**self.payload, "offline": True}
        return self.payload


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Outbox:
    """The outbox table. Construct once per store; the methods block (use ``Store.run``)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._not_before: dict[int, float] = {}  # id -> monotonic time of the next attempt

    # ------------------------------------------------------------------ enqueue
    def put(self, action: str, payload: dict[str, Any], *, offline: bool) -> int:
        """Commit one message; returns its outbox id."""
        lane = LANES[action]
        with self._store.transaction() as tx:
            cursor = tx.execute(
                "INSERT INTO outbox (lane, action, payload, offline, created) VALUES (?, ?, ?, ?, ?)",
                (int(lane), action, json.dumps(payload, separators=(",", ":")), int(offline), _utc_now()),
            )
            return int(cursor.lastrowid)

    def put_transaction_event(
        self,
        evse_id: int,
        make_payload: Callable[[int], dict[str, Any]],
        *,
        offline: bool,
        restart_sequence: bool,
        on_commit: Callable[[Any], None] | None = None,
    ) -> tuple[int, int]:
        """Give the next seqNo of ``evse_id`` to ``make_payload`` and commit both together.

        ``restart_sequence`` starts the count at 0 (the first event of a transaction).
        ``on_commit(tx)`` runs inside the same commit (e.g. to record the transaction).
        Returns ``(outbox id, seqNo)``.
        """
        with self._store.transaction() as tx:
            if restart_sequence:
                seq_no = 0
            else:
                row = tx.query("SELECT next_seq FROM tx_seq WHERE evse_id=?", (evse_id,))
                seq_no = int(row[0][0]) if row else 0
            payload = make_payload(seq_no)
            tx.execute(
                "INSERT INTO tx_seq (evse_id, next_seq) VALUES (?, ?) "
                "ON CONFLICT(evse_id) DO UPDATE SET next_seq=excluded.next_seq",
                (evse_id, seq_no + 1),
            )
            cursor = tx.execute(
                "INSERT INTO outbox (lane, action, payload, offline, created) VALUES (?, ?, ?, ?, ?)",
                (
                    int(Lane.TRANSACTION),
                    "TransactionEvent",
                    json.dumps(payload, separators=(",", ":")),
                    int(offline),
                    _utc_now(),
                ),
            )
            if on_commit is not None:
                on_commit(tx)
            return int(cursor.lastrowid), seq_no

    def mark_offline(self) -> int:
        """Flag every queued TransactionEvent as offline (E11.FR.07); returns how many."""
        return self._store.execute("UPDATE outbox SET offline=1 WHERE action='TransactionEvent' AND offline=0")

    # ------------------------------------------------------------------ dequeue
    def heads(self) -> list[OutboxEntry]:
        """The oldest message of each lane, in lane order."""
        rows = self._store.query(
            "SELECT id, lane, action, payload, offline, attempts FROM outbox "
            "WHERE id IN (SELECT MIN(id) FROM outbox GROUP BY lane) ORDER BY lane"
        )
        return [OutboxEntry(r[0], Lane(r[1]), r[2], json.loads(r[3]), bool(r[4]), r[5]) for r in rows]

    def next_ready(self, now: float) -> tuple[OutboxEntry | None, float | None]:
        """``(entry to send now, None)`` or ``(None, when the next one is due or None)``."""
        wake: float | None = None
        for entry in self.heads():
            due = self._not_before.get(entry.id, 0.0)
            if due <= now:
                return entry, None
            wake = due if wake is None else min(wake, due)
        return None, wake

    def delivered(self, entry_id: int) -> None:
        self._not_before.pop(entry_id, None)
        # Losing this delete on power failure only sends the message once more.
        self._store.execute_unsynced("DELETE FROM outbox WHERE id=?", (entry_id,))

    def discard(self, entry: OutboxEntry, error: str) -> None:
        """Move a message that can never be sent (it fails its schema) to ``dead_letter``."""
        with self._store.transaction() as tx:
            tx.execute(
                "INSERT INTO dead_letter (id, lane, action, payload, attempts, last_error, discarded) "
                "SELECT id, lane, action, payload, attempts, ?, ? FROM outbox WHERE id=?",
                (error, _utc_now(), entry.id),
            )
            tx.execute("DELETE FROM outbox WHERE id=?", (entry.id,))
        self._not_before.pop(entry.id, None)

    def failed(self, entry: OutboxEntry, now: float, error: str, policy: RetryPolicy) -> bool:
        """Count a failed attempt (CALLERROR, timeout, invalid answer).

        Returns True when the message was discarded to ``dead_letter`` (E13.FR.04).
        """
        attempts = entry.attempts + 1
        if attempts >= max(1, policy.attempts) and entry.lane not in _NEVER_DISCARD:
            with self._store.transaction() as tx:
                tx.execute(
                    "INSERT INTO dead_letter (id, lane, action, payload, attempts, last_error, discarded) "
                    "SELECT id, lane, action, payload, ?, ?, ? FROM outbox WHERE id=?",
                    (attempts, error, _utc_now(), entry.id),
                )
                tx.execute("DELETE FROM outbox WHERE id=?", (entry.id,))
            self._not_before.pop(entry.id, None)
            return True
        self._store.execute("UPDATE outbox SET attempts=? WHERE id=?", (attempts, entry.id))
        # E13.FR.03: wait MessageAttemptInterval x the number of preceding transmissions.
        self._not_before[entry.id] = now + policy.interval * min(attempts, max(1, policy.attempts))
        return False

    # ------------------------------------------------------------------ inspection
    def pending(self) -> int:
        return int(self._store.query("SELECT COUNT(*) FROM outbox")[0][0])

    def pending_by_action(self) -> dict[str, int]:
        return {a: int(n) for a, n in self._store.query("SELECT action, COUNT(*) FROM outbox GROUP BY action")}

    def dead_letters(self) -> list[dict[str, Any]]:
        rows = self._store.query(
            "SELECT id, action, payload, attempts, last_error, discarded FROM dead_letter ORDER BY id"
        )
        return [
            {"id": r[0], "action": r[1], "payload": json.loads(r[2]), "attempts": r[3], "last_error": r[4], "discarded": r[5]}
            for r in rows
        ]

    def queued(self) -> list[OutboxEntry]:
        rows = self._store.query("SELECT id, lane, action, payload, offline, attempts FROM outbox ORDER BY lane, id")
        return [OutboxEntry(r[0], Lane(r[1]), r[2], json.loads(r[3]), bool(r[4]), r[5]) for r in rows]
