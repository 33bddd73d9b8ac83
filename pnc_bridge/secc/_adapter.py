"""asyncio adapter: runs one :class:`SeccConnection` over one ``pnc_bridge.link`` connection.

Rules of this module (docs/style.md 2.4):

- One task owns the session and serializes every call into it: frames, effect results,
  EVSE status updates and the timer all arrive on one queue.
- Each request effect runs as its own task; its result (or ``EffectFailed`` when the
  fulfiller raises) goes back on the queue. Notifications run as tasks too; their outcome is
  only logged. A single timer is re-armed at ``deadline()`` after every step.
- When the session ends, request effects still pending are cancelled, except those the
  closing step itself emitted (opening the contactors, ending the transaction): the adapter
  waits for them up to ``SECC_CLEANUP_TIMEOUT`` so that nothing is lost on the way out.
- Only our own bugs reach the last-resort handler: it logs with the session id and closes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from pnc_bridge import timing
from pnc_bridge.link.server import V2gtpConnection
from pnc_bridge.link.v2gtp import PayloadType
from pnc_bridge.secc._common import EvseStatus, PowerSetpoint, ResumeContext, SeccConfig
from pnc_bridge.secc._connection import SeccConnection, WireStep
from pnc_bridge.secc.effects import Effect, EffectFailed, EffectResult, Request

__all__ = ["Fulfil", "ResumeSlot", "SeccAdapter"]

_log = logging.getLogger("pnc_bridge.secc")

#: ``async def fulfil(effect) -> result``: the bridge's (or the rig's) table of ports
Fulfil = Callable[[Effect], Awaitable[EffectResult | None]]


@dataclass
class ResumeSlot:
    """Where a paused session waits for its EV's next connection (one per EVSE)."""

    value: ResumeContext | None = None


class SeccAdapter:
    """``await SeccAdapter(conn, config, fulfil).run()`` serves one EV connection until it ends.

    ``on_step(step)`` (optional) sees every :class:`WireStep`, e.g. for a timeline.
    ``update_evse_status(status)`` and ``update_setpoint(setpoint)`` may be called from any
    task of the same loop.
    """

    def __init__(
        self,
        conn: V2gtpConnection,
        config: SeccConfig,
        fulfil: Fulfil,
        *,
        resume: ResumeSlot | None = None,
        on_step: Callable[[WireStep], None] | None = None,
        logger: logging.Logger | None = None,
        cleanup_timeout: float = timing.SECC_CLEANUP_TIMEOUT,
    ) -> None:
        self._conn = conn
        self._config = config
        self._fulfil = fulfil
        self._resume = resume or ResumeSlot()
        self._on_step = on_step
        self._log = logger or _log
        self._cleanup_timeout = cleanup_timeout
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._tasks: dict[asyncio.Task, Effect] = {}
        self._cleanup: set[asyncio.Task] = set()
        self._timer: asyncio.TimerHandle | None = None
        self.connection: SeccConnection | None = None
        #: loop time at which the frame being handled arrived (for turnaround measurements)
        self.frame_received_at: float | None = None

    def update_evse_status(self, status: EvseStatus) -> None:
        self._queue.put_nowait(("status", status))

    def abort(self) -> None:
        """End the session as if the EV's connection were lost (the cable is gone: CP state A,
        or the EVSE failed): the core stops it the way it stops a lost connection."""
        self._queue.put_nowait(("closed", None))

    def update_setpoint(self, setpoint: PowerSetpoint | None) -> None:
        """ISO 15118-20 dynamic control: a power target for the next charge-loop response."""
        self._queue.put_nowait(("setpoint", setpoint))

    async def run(self) -> WireStep | None:
        loop = asyncio.get_running_loop()
        self.connection = sc = SeccConnection(
            self._config, now=loop.time(), unix_time=time.time(), tls=self._conn.tls is not None,
            resume=self._resume.value, logger=self._log,
        )
        reader = asyncio.create_task(self._read())
        last: WireStep | None = None
        try:
            self._arm(sc, loop)
            while True:
                kind, item = await self._queue.get()
                now = loop.time()
                if kind == "frame":
                    frame, self.frame_received_at = item
                    step = sc.receive_payload(frame.payload_type, frame.payload, now)
                elif kind == "result":
                    step = sc.resolve(item, now)
                elif kind == "tick":
                    step = sc.tick(now)
                elif kind == "status":
                    sc.update_evse_status(item)
                    continue
                elif kind == "setpoint":
                    sc.update_setpoint(item, now)
                    continue
                else:  # "closed"
                    step = sc.connection_lost(now)
                last = step
                await self._apply(step)
                if step.close or sc.closed:
                    break
                self._arm(sc, loop)
        except Exception:
            session = sc.session.session_id.hex() if sc.session is not None else "-"
            self._log.exception("SECC adapter failed for session %s; closing", session)
            if not sc.closed:
                await self._apply(sc.connection_lost(loop.time()))
        finally:
            if self._timer is not None:
                self._timer.cancel()
            reader.cancel()
            for task in list(self._tasks):
                if task not in self._cleanup:
                    task.cancel()
            self._conn.close("SECC session ended")
            if self._cleanup:
                done, pending = await asyncio.wait(self._cleanup, timeout=self._cleanup_timeout)
                for task in pending:
                    self._log.error("cleanup effect %s did not finish in time", self._tasks.get(task))
                    task.cancel()
        if last is not None and last.resume is not None:
            self._resume.value = last.resume
        elif sc.session is not None and sc.session.session_id:
            self._resume.value = None
        return last

    # -- internals ---------------------------------------------------------- #
    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            async for frame in self._conn:
                self._queue.put_nowait(("frame", (frame, loop.time())))
        finally:
            self._queue.put_nowait(("closed", None))

    def _arm(self, sc: SeccConnection, loop: asyncio.AbstractEventLoop) -> None:
        """Keep one timer at or before ``deadline()``. A timer that fires early is harmless
        (``tick`` does nothing before a deadline and the timer is re-armed), so a later deadline
        -- the usual case, the sequence timeout moving on with every message -- keeps the timer."""
        deadline = sc.deadline()
        if self._timer is not None and not self._timer.cancelled():
            if deadline is not None and self._timer.when() <= deadline:
                return
            self._timer.cancel()
        self._timer = None
        if deadline is not None:
            self._timer = loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._queue.put_nowait(("tick", None))

    async def _apply(self, step: WireStep) -> None:
        if self._on_step is not None:
            try:
                self._on_step(step)
            except Exception:  # a logging hook must not end the session
                self._log.exception("on_step hook failed")
        if step.send is not None:
            try:
                await self._conn.send(PayloadType(step.payload_type), step.send)
            except ConnectionError as exc:
                self._log.info("could not send the response: %s", exc)
        for effect in step.effects:
            task = asyncio.create_task(self._run_effect(effect))
            self._tasks[task] = effect
            task.add_done_callback(self._tasks.pop)  # type: ignore[arg-type]
            if step.close:
                self._cleanup.add(task)

    async def _run_effect(self, effect: Effect) -> None:
        try:
            result = await self._fulfil(effect)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._log.warning("%s failed: %s", type(effect).__name__, exc)
            result = EffectFailed(effect.id, f"{type(exc).__name__}: {exc}")
        if isinstance(effect, Request):
            if result is None:
                result = EffectFailed(effect.id, "the fulfiller returned nothing")
            self._queue.put_nowait(("result", result))
