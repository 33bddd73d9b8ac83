"""Our ISO 15118-20 EV emulator against our SECC over the real link: the pnc_bridge.link TLS
server on loopback with the ISO 15118-20 profile (TLS 1.3, the EV's certificate checked
against the OEM root), the asyncio adapter and the EV's asyncio client. What the in-memory
pairs cannot show: TLS 1.3 mutual authentication, the -20 V2GTP payload types on a socket,
setpoints pushed into a running adapter, a -2 EV and a -20 EV on the same port."""

from __future__ import annotations

import asyncio
import ssl

from cryptography.hazmat.primitives.serialization import Encoding

from hil.ev import EvConfig, EvCredentials, Ev20Config, iso20_tls_context, iso2_tls_context, run_ev
from hil.secc_rig import RigBehaviour, RigPorts, RigSecc, v2g_schedule
from pnc_bridge.link.v2gtp import PayloadType
from pnc_bridge.pki import generate_test_pki
from pnc_bridge.secc import PowerSetpoint, SeccConfig
from pnc_bridge.secc.effects import (
    ControlMode,
    EnergyService,
    EnergyTransferMode,
    OpenContactor,
    PaymentOption,
    StopReason,
    StopTransaction,
)

CONFIG = SeccConfig(energy_transfer_modes=(EnergyTransferMode.DC_extended, EnergyTransferMode.AC_three_phase_core))


def _run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def _ev_tls(pki20, chain=None, key=None):
    creds = EvCredentials.from_test_pki(pki20, with_contract=False)
    return iso20_tls_context([pki20.v2g_root], chain or creds.oem_chain, key or creds.oem_key)


async def _wait_outcome(secc) -> None:
    for _ in range(200):  # the adapter finishes its cleanup after the EV has gone
        if secc.outcomes:
            return
        await asyncio.sleep(0.01)


def test_dc_bpt_plug_and_charge_with_contract_installation_over_tls13_mutual_auth(test_pki, test_pki20):
    ports = RigPorts(test_pki20, RigBehaviour(schedules=(v2g_schedule(period_s=1),)))
    frames: list = []

    async def main():
        async with RigSecc(CONFIG, ports, pki=test_pki, pki20=test_pki20, tcp=False, tls=True) as secc:
            config = Ev20Config(service=EnergyService.DC_BPT, payment=PaymentOption.Contract,
                                credentials=EvCredentials.from_test_pki(test_pki20, with_contract=False),
                                loop_messages=12, loop_interval=0.25, ongoing_interval=0.01)
            ev = await run_ev(config, "::1", secc.tls_port, tls=_ev_tls(test_pki20), on_frame=lambda *a: frames.append(a))
            await _wait_outcome(secc)
            return ev, secc

    ev, secc = _run(main())
    r = ev.result
    assert r.ok, r.reason
    assert r.installed_contract and r.receipts >= 1
    powers = [s.power_w for s in r.loop]
    assert max(powers) > 0 and min(powers) < 0  # charged and gave back
    tls = secc.adapters[0]._conn.tls
    assert tls.version == "TLSv1.3" and tls.peer_chain[0].subject == test_pki20.cert("oem_prov_leaf").subject
    assert secc.outcomes[-1].reason == "the EV ended the session"
    assert [s.reason for s in ports.effects if isinstance(s, StopTransaction)] == [StopReason.Local]
    meter = ports.status.meter
    assert meter.energy_wh > 0 and meter.discharged_energy_wh > 0


def test_frames_carry_the_minus_20_payload_types(test_pki, test_pki20):
    types: list[int] = []
    ports = RigPorts(None)

    async def main():
        async with RigSecc(CONFIG, ports, pki=test_pki, pki20=test_pki20, tcp=False, tls=True) as secc:
            def seen(adapter, step):
                if step.send is not None:
                    types.append(int(step.payload_type))
            secc.on_step = seen
            config = Ev20Config(service=EnergyService.AC, loop_messages=2, loop_interval=0.01, ongoing_interval=0.01)
            return await run_ev(config, "::1", secc.tls_port, tls=_ev_tls(test_pki20))

    ev = _run(main())
    assert ev.result.ok, ev.result.reason
    assert types[0] == PayloadType.SAP
    assert PayloadType.MAINSTREAM in types and PayloadType.AC_MAINSTREAM in types
    assert PayloadType.DC_MAINSTREAM not in types


def test_a_setpoint_pushed_into_the_running_adapter_reaches_the_ev(test_pki, test_pki20):
    ports = RigPorts(None)

    async def main():
        async with RigSecc(CONFIG, ports, pki=test_pki, pki20=test_pki20, tcp=False, tls=True) as secc:
            config = Ev20Config(service=EnergyService.DC_BPT, control_mode=ControlMode.DynamicControl, loop_messages=30,
                                loop_interval=0.05, ongoing_interval=0.01)
            task = asyncio.create_task(run_ev(config, "::1", secc.tls_port, tls=_ev_tls(test_pki20)))
            while not secc.adapters or secc.adapters[0].connection is None or not task.done() and not _in_loop(secc):
                await asyncio.sleep(0.01)
            secc.adapters[0].update_setpoint(PowerSetpoint(-6000))
            return await task

    ev = _run(main())
    assert ev.result.ok, ev.result.reason
    targets = [s.evse_target_w for s in ev.result.loop]
    first = targets.index(-6000)
    assert all(t == -6000 for t in targets[first:]) and any(t > 0 for t in targets[:first])


def _in_loop(secc) -> bool:
    session = secc.adapters[0].connection.session
    return session is not None and session.state.name == "WAIT_FOR_ChargeLoopReq" and session.context.last_steer is not None


def test_an_ev_whose_certificate_is_not_from_a_trusted_oem_is_refused(test_pki, test_pki20, tmp_path):
    rogue = generate_test_pki(tmp_path / "rogue", variant="iso20")
    ports = RigPorts(None)

    async def main():
        async with RigSecc(CONFIG, ports, pki=test_pki, pki20=test_pki20, tcp=False, tls=True) as secc:
            creds = EvCredentials.from_test_pki(rogue, with_contract=False)
            ctx = iso20_tls_context([test_pki20.v2g_root], creds.oem_chain, creds.oem_key)
            return await run_ev(Ev20Config(service=EnergyService.DC, loop_messages=2), "::1", secc.tls_port, tls=ctx)

    ev = _run(main())
    assert not ev.result.ok and ev.result.loop_messages == 0
    assert not any(isinstance(e, OpenContactor) for e in ports.effects)


def test_a_minus_2_ev_and_a_minus_20_ev_share_the_tls_port(test_pki, test_pki20):
    ports = RigPorts(test_pki)

    async def main():
        async with RigSecc(CONFIG, ports, pki=test_pki, pki20=test_pki20, tcp=False, tls=True) as secc:
            ev2 = await run_ev(EvConfig(protocols=("iso2",), loop_messages=2, loop_interval=0.01, ongoing_interval=0.01),
                               "::1", secc.tls_port, tls=iso2_tls_context([test_pki.v2g_root]))
            ev20 = await run_ev(Ev20Config(service=EnergyService.DC, loop_messages=2, loop_interval=0.01, ongoing_interval=0.01),
                                "::1", secc.tls_port, tls=_ev_tls(test_pki20))
            return ev2, ev20, secc

    ev2, ev20, secc = _run(main())
    assert ev2.result.ok and ev2.result.protocol == "iso2"
    assert ev20.result.ok and ev20.result.protocol == "iso20-dc"
    assert [a._conn.tls.version for a in secc.adapters] == ["TLSv1.2", "TLSv1.3"]


def test_a_minus_20_ev_without_a_certificate_gets_no_tls(test_pki, test_pki20):
    async def main():
        async with RigSecc(CONFIG, RigPorts(None), pki=test_pki, pki20=test_pki20, tcp=False, tls=True) as secc:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.check_hostname = False
            ctx.load_verify_locations(cadata=test_pki20.v2g_root.public_bytes(Encoding.PEM).decode())
            return await run_ev(Ev20Config(service=EnergyService.DC, loop_messages=2), "::1", secc.tls_port, tls=ctx)

    ev = _run(main())
    assert not ev.result.ok
