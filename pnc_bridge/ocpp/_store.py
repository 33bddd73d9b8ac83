"""The station's durable state: one SQLite database in WAL mode.

Rules of this module:

- One file (``<data_dir>/ocpp.sqlite``) holds everything OCPP must keep across a crash:
  the outbox, the per-EVSE TransactionEvent sequence numbers, open transactions, the
  device model's written values, charging profiles, network connection profiles and the
  security log. One file means one atomic commit for changes that belong together (a
  TransactionEvent and its seqNo).
- ``journal_mode=WAL`` with ``synchronous=FULL``: a commit is on disk when ``commit``
  returns, including on power loss, which is what "never loses a TransactionEvent" needs
  on a charger. The cost per commit is measured by ``benchmarks/ocpp_bench.py``.
- Every method is thread-safe (one lock); the asyncio side calls the blocking ones through
  ``Store.run`` so that fsync never stalls the event loop.
- Schema changes are numbered migrations on ``PRAGMA user_version``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

__all__ = ["Store", "StoreError"]

T = TypeVar("T")

_MIGRATIONS: tuple[str, ...] = (
    # 1: initial schema
    """
    CREATE TABLE outbox (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        lane      INTEGER NOT NULL,
        action    TEXT    NOT NULL,
        payload   TEXT    NOT NULL,
        offline   INTEGER NOT NULL DEFAULT 0,
        attempts  INTEGER NOT NULL DEFAULT 0,
        created   TEXT    NOT NULL
    );
    CREATE INDEX outbox_lane ON outbox (lane, id);
    CREATE TABLE dead_letter (
        id         INTEGER PRIMARY KEY,
        lane       INTEGER NOT NULL,
        action     TEXT    NOT NULL,
        payload    TEXT    NOT NULL,
        attempts   INTEGER NOT NULL,
        last_error TEXT    NOT NULL,
        discarded  TEXT    NOT NULL
    );
    CREATE TABLE tx_seq (
        evse_id  INTEGER PRIMARY KEY,
        next_seq INTEGER NOT NULL
    );
    CREATE TABLE transactions (
        transaction_id TEXT PRIMARY KEY,
        evse_id        INTEGER NOT NULL,
        connector_id   INTEGER,
        started        TEXT NOT NULL,
        data           TEXT NOT NULL
    );
    CREATE TABLE variables (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE charging_profiles (
        id             INTEGER PRIMARY KEY,
        evse_id        INTEGER NOT NULL,
        purpose        TEXT    NOT NULL,
        stack_level    INTEGER NOT NULL,
        transaction_id TEXT,
        profile        TEXT    NOT NULL
    );
    CREATE TABLE network_profiles (
        slot    INTEGER PRIMARY KEY,
        profile TEXT NOT NULL
    );
    CREATE TABLE kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE security_log (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        timestamp TEXT NOT NULL,
        type      TEXT NOT NULL,
        tech_info TEXT
    );
    """,
)

#: Rows kept in the rolling security log (A04.FR.04 recommends a rolling log).
SECURITY_LOG_ROWS = 10_000


class StoreError(RuntimeError):
    """The database cannot be opened or used (disk full, corrupt file, wrong version)."""


class Store:
    """The SQLite database. ``Store(path)`` opens (and creates or migrates) it."""

    def __init__(self, path: Path | str, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._migrate()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open state database {self.path}: {exc}") from exc

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > len(_MIGRATIONS):
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this pnc-bridge ({len(_MIGRATIONS)})"
            )
        for number in range(version, len(_MIGRATIONS)):
            with self.transaction() as db:
                db.executescript_in_tx(_MIGRATIONS[number])
                db.execute(f"PRAGMA user_version={number + 1}")

    # ------------------------------------------------------------------ access
    @contextmanager
    def transaction(self) -> Iterator["_Tx"]:
        """``with store.transaction() as tx:`` runs statements in one atomic commit."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _Tx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one statement in its own commit; returns the number of changed rows."""
        with self._lock:
            return self._db.execute(sql, params).rowcount

    def execute_unsynced(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Like ``execute`` but without waiting for the disk (``synchronous=NORMAL``).

        For changes whose loss on power failure is harmless, such as deleting a message
        the CSMS already has: at worst it is sent once more. The WAL is written in order,
        so the next synchronous commit makes this one durable as well.
        """
        with self._lock:
            (level,) = self._db.execute("PRAGMA synchronous").fetchone()
            self._db.execute("PRAGMA synchronous=NORMAL")
            try:
                return self._db.execute(sql, params).rowcount
            finally:
                self._db.execute(f"PRAGMA synchronous={int(level)}")

    async def run(self, fn: Callable[[], T]) -> T:
        """Run blocking ``fn`` (which uses this store) off the event loop, one at a time."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ocpp-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ key/value
    def get_json(self, key: str, default: Any = None) -> Any:
        rows = self.query("SELECT value FROM kv WHERE key=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_json(self, key: str, value: Any) -> None:
        self.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, json.dumps(value)),
        )

    def delete_key(self, key: str) -> None:
        self.execute("DELETE FROM kv WHERE key=?", (key,))

    # ------------------------------------------------------------------ security log
    def log_security_event(self, timestamp: str, event_type: str, tech_info: str | None) -> None:
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO security_log (timestamp, type, tech_info) VALUES (?, ?, ?)",
                (timestamp, event_type, tech_info),
            )
            tx.execute(
                "DELETE FROM security_log WHERE id <= (SELECT MAX(id) FROM security_log) - ?",
                (SECURITY_LOG_ROWS,),
            )


class _Tx:
    """Statements inside ``Store.transaction``."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        return self._db.execute(sql, params).fetchall()

    def executescript_in_tx(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one instead.
        for statement in script.split(";"):
            if statement.strip():
                self._db.execute(statement)
