"""Feeding a rebuilt real-vehicle session (tests/secc/replay.py) into our SECC core."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

from hil.secc_rig import RigPorts
from pnc_bridge import exi
from pnc_bridge.secc import SESSION_CORES, ResumeContext, SeccConfig
from pnc_bridge.secc.effects import EnergyTransferMode, Notification, PaymentOption
from tests.secc.replay import ONGOING, Session, requested_modes

UNIX0 = 1_700_000_000.0


@dataclass
class Exchange:
    request: str
    response: str
    code: str
    processing: str | None
    message: object


@dataclass
class ReplayOutcome:
    exchanges: list[Exchange] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # captured Ongoing variants not needed by ours
    closed: bool = False
    close_reason: str = ""
    final_state: str = ""
    effects: list = field(default_factory=list)
    resume: ResumeContext | None = None


def _counter():
    counter = itertools.count(1)
    return lambda n: next(counter).to_bytes(n, "big")


def config_for(session: Session) -> SeccConfig:
    modes = tuple(EnergyTransferMode(m) for m in sorted(requested_modes(session))) or (EnergyTransferMode.DC_extended,)
    return SeccConfig(energy_transfer_modes=modes, payment_options=(PaymentOption.ExternalPayment,), random_bytes=_counter())


def replay(
    session: Session,
    config: SeccConfig | None = None,
    *,
    resume: ResumeContext | None = None,
    captured_paused_id: bytes | None = None,
) -> ReplayOutcome:
    """Feed ``session`` into a fresh core. With ``resume`` (what our core left when the car
    paused the previous TCP session), a SessionSetupReq carrying ``captured_paused_id`` (the
    SessionID the car's real charger had given it) presents ours instead, as the car would."""
    config = config or config_for(session)
    now = 10.0
    core = SESSION_CORES[session.ns](config, now=now, unix_time=UNIX0 + now, tls=False, resume=resume)
    ports = RigPorts(None)
    ports.listeners.append(core.update_evse_status)
    core.update_evse_status(ports.status)
    out = ReplayOutcome()

    def feed(message) -> object:
        nonlocal now
        body = message.body.body_element
        if type(body).__name__ != "SessionSetupReq":
            message = replace(message, header=replace(message.header, session_id=core.session_id))
        elif resume is not None and message.header.session_id == captured_paused_id:
            message = replace(message, header=replace(message.header, session_id=resume.session_id))
        step = core.receive(message, now)
        out.effects.extend(step.effects)
        pending = [e for e in step.effects if not isinstance(e, Notification)]
        for e in step.effects:
            if isinstance(e, Notification):
                ports.answer(e)
        response = step.response
        while pending and not core.closed:
            effect = pending.pop(0)
            now += 0.01
            step = core.resolve(ports.answer(effect), now)
            out.effects.extend(step.effects)
            pending += [e for e in step.effects if not isinstance(e, Notification)]
            for e in step.effects:
                if isinstance(e, Notification):
                    ports.answer(e)
            if step.response is not None:
                response = step.response
        now += 0.1
        if response is not None:
            exi.encode(session.ns, response)  # every response must be encodable
            res = response.body.body_element
            processing = getattr(res, "evse_processing", None)
            out.exchanges.append(Exchange(type(body).__name__, type(res).__name__, res.response_code.value,
                                          processing.value if processing is not None else None, response))
        if step.close or core.closed:
            out.closed = True
            out.close_reason = step.reason
            out.resume = step.resume
        return response

    requests = session.requests
    i = 0
    while i < len(requests) and not core.closed:
        req = requests[i]
        response = feed(req.message)
        processing = getattr(getattr(response, "body", None), "body_element", None)
        processing = getattr(processing, "evse_processing", None)
        if req.name in ONGOING and not core.closed:
            variants = [r for r in requests[i + 1:] if r.name == req.name]
            finished = processing is not None and processing.value == "Finished"
            for v in variants:
                if finished:
                    out.skipped.append(v.name)
                else:
                    response = feed(v.message)
                    finished = response.body.body_element.evse_processing.value == "Finished"
            repeats = 0
            while not finished and not core.closed and repeats < 5:
                response = feed((variants[-1] if variants else req).message)
                finished = response.body.body_element.evse_processing.value == "Finished"
                repeats += 1
            i += 1 + len(variants)
            continue
        i += 1
    out.final_state = core.state.name
    return out
