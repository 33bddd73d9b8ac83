"""Our EV emulator against our SECC over the real link: the pnc_bridge.link TCP and TLS
servers on loopback, the asyncio adapter (pnc_bridge/secc/_adapter.py) and the EV's asyncio
client (hil/ev/_client.py). What the in-memory pairs cannot show: framing over a socket, TLS
with the ISO 15118-2 profile, timers on a real loop, a connection that drops."""

from __future__ import annotations

import asyncio

import pytest

from hil.ev import EvConfig, EvCredentials, iso2_tls_context, run_ev
from hil.secc_rig import RigBehaviour, RigPorts, RigSecc
from pnc_bridge.link.v2gtp import PayloadType, frame
from pnc_bridge.secc import SeccConfig, SeccTimers
from pnc_bridge.secc.effects import (
    EnergyTransferMode,
    OpenContactor,
    PaymentOption,
    StartTransaction,
    StopReason,
    StopTransaction,
)

DC = EnergyTransferMode.DC_extended
AC = EnergyTransferMode.AC_three_phase_core
CONFIG = SeccConfig(energy_transfer_modes=(DC, AC))


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def _seen(ports, cls):
    return [e for e in ports.effects if isinstance(e, cls)]


@pytest.mark.parametrize("protocol,mode", [("din", DC), ("iso2", DC), ("iso2", AC)])
def test_eim_over_tcp(test_pki, protocol, mode):
    ports = RigPorts(test_pki)
    frames = []

    async def main():
        async with RigSecc(CONFIG, ports) as secc:
            ev = await run_ev(EvConfig(protocols=(protocol,), energy_mode=mode, loop_messages=5, loop_interval=0.01,
                                       ongoing_interval=0.01), "::1", secc.tcp_port, on_frame=lambda *a: frames.append(a))
            for _ in range(100):  # the adapter finishes its cleanup after the EV has gone
                if secc.outcomes:
                    break
                await asyncio.sleep(0.01)
            return ev, secc.outcomes

    ev, outcomes = _run(main())
    assert ev.result.ok, ev.result.reason
    assert ev.result.protocol == protocol and ev.result.loop_messages == 5
    assert outcomes and outcomes[-1].reason == "the EV ended the session"
    assert [s.reason for s in _seen(ports, StopTransaction)] == [StopReason.Local]
    sent = [d for d, *_ in frames]
    assert sent.count("EV->EVSE") == sent.count("EVSE->EV") == len(ev.timeline) // 2


def test_plug_and_charge_with_contract_installation_over_tls(test_pki):
    ports = RigPorts(test_pki)

    async def main():
        async with RigSecc(CONFIG, ports, pki=test_pki, tcp=False, tls=True) as secc:
            ev_config = EvConfig(protocols=("iso2",), energy_mode=DC, payment=PaymentOption.Contract,
                                 credentials=EvCredentials.from_test_pki(test_pki, with_contract=False),
                                 loop_messages=4, loop_interval=0.01, ongoing_interval=0.01)
            return await run_ev(ev_config, "::1", secc.tls_port, tls=iso2_tls_context([test_pki.v2g_root]))

    ev = _run(main())
    assert ev.result.ok, ev.result.reason
    assert ev.result.installed_contract and ev.result.receipts >= 1
    (start,) = _seen(ports, StartTransaction)
    assert start.emaid == test_pki.emaid and start.payment is PaymentOption.Contract


def test_plug_and_charge_is_refused_by_an_untrusting_ev(test_pki, tmp_path):
    from pnc_bridge.pki import generate_test_pki

    other = generate_test_pki(tmp_path)

    async def main():
        async with RigSecc(CONFIG, RigPorts(test_pki), pki=test_pki, tcp=False, tls=True) as secc:
            return await run_ev(EvConfig(protocols=("iso2",)), "::1", secc.tls_port, tls=iso2_tls_context([other.v2g_root]))

    ev = _run(main())
    assert not ev.result.ok and "cannot connect" in ev.result.reason


def test_pause_and_resume_over_two_connections(test_pki):
    ports = RigPorts(test_pki)

    async def main():
        async with RigSecc(CONFIG, ports) as secc:
            fast = dict(loop_interval=0.01, ongoing_interval=0.01, loop_messages=3)
            first = await run_ev(EvConfig(protocols=("iso2",), pause=True, **fast), "::1", secc.tcp_port)
            for _ in range(100):
                if secc.resume.value is not None:
                    break
                await asyncio.sleep(0.01)
            second = await run_ev(EvConfig(protocols=("iso2",), resume_session_id=first.result.session_id, **fast),
                                  "::1", secc.tcp_port)
            return first, second

    first, second = _run(main())
    assert first.result.ok and first.result.paused
    assert second.result.ok and second.result.resumed and second.result.session_id == first.result.session_id
    assert len(_seen(ports, StopTransaction)) == 1  # only the resumed session's end


def test_tcp_reset_mid_session_stops_cleanly(test_pki):
    ports = RigPorts(test_pki)

    async def main():
        async with RigSecc(CONFIG, ports) as secc:
            config = EvConfig(protocols=("iso2",), loop_messages=1000, loop_interval=0.01, ongoing_interval=0.01)
            task = asyncio.create_task(run_ev(config, "::1", secc.tcp_port))
            while not any(a.connection and a.connection.session and a.connection.session._ctx.energy_flowing
                          for a in secc.adapters):
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            task.cancel()  # the EV's socket closes under it
            for _ in range(200):
                if secc.outcomes:
                    break
                await asyncio.sleep(0.01)
            return secc.outcomes

    outcomes = _run(main())
    assert outcomes[-1].reason == "connection lost"
    assert [s.reason for s in _seen(ports, StopTransaction)] == [StopReason.EVDisconnected]
    assert _seen(ports, OpenContactor) and not ports.contactor_closed


def test_ev_goes_silent_the_secc_times_out(test_pki):
    ports = RigPorts(test_pki)
    config = SeccConfig(energy_transfer_modes=(DC,), timers=SeccTimers(sequence_timeout=0.3))

    async def main():
        async with RigSecc(config, ports) as secc:
            ev_config = EvConfig(protocols=("iso2",), loop_interval=0.01, ongoing_interval=0.01,
                                 faults=frozenset({"silent_in_loop"}))
            task = asyncio.create_task(run_ev(ev_config, "::1", secc.tcp_port))
            for _ in range(500):
                if secc.outcomes:
                    break
                await asyncio.sleep(0.01)
            task.cancel()
            return secc.outcomes

    outcomes = _run(main())
    assert outcomes[-1].reason == "no request within V2G_SECC_Sequence_Timeout"
    assert [s.reason for s in _seen(ports, StopTransaction)] == [StopReason.Timeout]
    assert not ports.contactor_closed


def test_garbage_after_the_handshake_closes_the_connection(test_pki):
    ports = RigPorts(test_pki)

    async def main():
        async with RigSecc(CONFIG, ports) as secc:
            reader, writer = await asyncio.open_connection("::1", secc.tcp_port)
            from pnc_bridge import exi
            from pnc_bridge.messages import apphand

            req = apphand.SupportedAppProtocolReq(app_protocol=[apphand.AppProtocol(
                protocol_namespace="urn:iso:15118:2:2013:MsgDef", version_number_major=2, version_number_minor=0,
                schema_id=7, priority=1)])
            writer.write(frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, exi.encode("apphand", req)))
            writer.write(frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, b"\x80\xff\xff\xff"))
            await writer.drain()
            data = b""
            while True:
                chunk = await reader.read(4096)
                if not chunk:
                    break
                data += chunk
            writer.close()
            for _ in range(100):
                if secc.outcomes:
                    break
                await asyncio.sleep(0.01)
            return data, secc.outcomes

    data, outcomes = _run(main())
    assert data[8:] and len(data) == 8 + int.from_bytes(data[4:8], "big")  # exactly the handshake answer
    assert outcomes[-1].close and outcomes[-1].reason.startswith("undecodable message")


def test_slow_ports_do_not_block_the_loop(test_pki):
    """Effects run as their own tasks: a 0.3 s CSMS makes the EV see Ongoing, not a stall."""
    ports = RigPorts(test_pki, RigBehaviour(delays={"AuthorizeExternalPayment": 0.3, "GetChargingSchedule": 0.2}))

    async def main():
        async with RigSecc(CONFIG, ports) as secc:
            return await run_ev(EvConfig(protocols=("iso2",), loop_interval=0.01, ongoing_interval=0.02), "::1", secc.tcp_port)

    ev = _run(main())
    assert ev.result.ok
    auth = [e for e in ev.timeline if e.message == "AuthorizationRes"]
    assert len(auth) > 2 and "Ongoing" in auth[0].detail
