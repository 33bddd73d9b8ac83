"""Our EV core against our SECC core in memory (h11's ConnectionPair, aioquic's roundtrip):
payloads pass between them at once, effects are fulfilled by the rig's ports after their
configured delay, and time only moves by jumping to the next deadline."""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

from hil.ev import EvConfig, EvSession
from hil.ev._core20 import Ev20Config, Ev20Session
from hil.secc_rig import RigPorts
from pnc_bridge.secc import ResumeContext, SeccConfig, SeccConnection, WireStep
from pnc_bridge.secc.effects import Notification

UNIX0 = time.time()  # wall clock at monotonic 0 for both sides (certificates are checked against it)


@dataclass
class PairRun:
    ev: EvSession | Ev20Session
    secc: SeccConnection
    ports: RigPorts
    steps: list[WireStep] = field(default_factory=list)
    end: float = 0.0

    @property
    def result(self):
        return self.ev.result

    @property
    def last(self) -> WireStep:
        return self.steps[-1]

    def effects(self, cls=None) -> list:
        out = [e for s in self.steps for e in s.effects]
        return [e for e in out if cls is None or isinstance(e, cls)]

    def responses(self) -> list:
        return [s.response for s in self.steps if s.response is not None]

    def resume(self) -> ResumeContext | None:
        return next((s.resume for s in reversed(self.steps) if s.resume is not None), None)


def run_pair(
    ev_config: EvConfig | Ev20Config,
    secc_config: SeccConfig,
    ports: RigPorts,
    *,
    tls: bool = True,
    resume: ResumeContext | None = None,
    t0: float = 1000.0,
    limit: float = 600.0,
    on_step=None,
    on_tick=None,
) -> PairRun:
    """Run one session to its end. ``on_step(run, step)`` sees every SECC step; returning
    ``"cut"`` drops the connection there (as a TCP reset: neither side sends again).
    ``on_tick(run, now)`` (optional) runs before each jump in time (e.g. to push a setpoint)."""
    now = t0
    secc = SeccConnection(secc_config, now=now, unix_time=UNIX0 + now, tls=tls, resume=resume)
    ev_class = Ev20Session if isinstance(ev_config, Ev20Config) else EvSession
    ev = ev_class(ev_config, now=now, unix_time=UNIX0 + now)
    ports.listeners.append(secc.update_evse_status)
    secc.update_evse_status(ports.status)
    ports.advance_to(now)
    run = PairRun(ev, secc, ports)
    to_secc: deque[tuple[int, bytes]] = deque()  # (V2GTP payload type, payload)
    to_ev: deque[tuple[int, bytes]] = deque()
    due: list[tuple[float, object]] = []
    ev_closed = secc_closed = False

    cut = False

    def take(step: WireStep) -> None:
        nonlocal secc_closed, cut
        run.steps.append(step)
        if on_step is not None and on_step(run, step) == "cut":
            cut = True
        if step.send is not None:
            to_ev.append((step.payload_type, step.send))
        for effect in step.effects:
            if isinstance(effect, Notification):
                ports.answer(effect)
            else:
                delay = ports.delay(effect)
                if not math.isinf(delay):
                    due.append((now + delay, effect))
        if step.close:
            secc_closed = True

    first = ev.start(now)
    to_secc.append((first.payload_type, first.send))
    while now - t0 < limit:
        if cut and not secc_closed:
            to_secc.clear()
            to_ev.clear()
            ev.connection_lost(now)
            ev_closed = True
            take(secc.connection_lost(now))
        progressed = False
        while to_secc and not secc_closed:
            take(secc.receive_payload(*to_secc.popleft(), now))
            progressed = True
        while to_ev and not ev_closed:
            payload_type, payload = to_ev.popleft()
            out = ev.receive_payload(payload, now, payload_type)
            if out.send is not None:
                to_secc.append((out.payload_type, out.send))
            if out.close:
                ev_closed = True
            progressed = True
        ready = [d for d in due if d[0] <= now]
        for item in ready:
            due.remove(item)
            if not secc_closed:
                ports.advance_to(now)
                take(secc.resolve(ports.answer(item[1]), now))
            else:
                ports.answer(item[1])  # cleanup effects still run after the close
            progressed = True
        if secc_closed and not to_ev and not ev_closed:
            ev.connection_lost(now)
            ev_closed = True
        if ev_closed and not secc_closed and not to_secc:
            take(secc.connection_lost(now))
        if ev_closed and secc_closed and not due:
            break
        if progressed:
            continue
        candidates = [d for d in (ev.deadline() if not ev_closed else None, secc.deadline() if not secc_closed else None) if d is not None]
        candidates += [d for d, _ in due]
        if not candidates:
            break
        if on_tick is not None:
            on_tick(run, now)
        now = max(now, min(candidates))
        ports.advance_to(now)
        if not ev_closed:
            out = ev.tick(now)
            if out.send is not None:
                to_secc.append((out.payload_type, out.send))
            if out.close:
                ev_closed = True
        if not secc_closed:
            take(secc.tick(now))
    run.end = now
    return run
