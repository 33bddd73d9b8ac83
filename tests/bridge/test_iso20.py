"""ISO 15118-20 sessions through the bridge, on OCPP 2.1 and 2.0.1: our -20 EV emulator
(``hil.ev``, TLS 1.3 with mutual authentication) against ``pnc_bridge.bridge.Service`` (what
``pnc-bridge run`` runs) with a bidirectional EVSE simulator, and the ``hil.csms`` emulator
(the ``ocpp`` package's CSMS side: every frame it receives is checked against the official
schemas of the version it speaks).

Each test checks what the EV got (response codes, ScheduleTuples, the power it drew and gave
back), what the CSMS saw (NotifyEVChargingNeeds with the EV's BPT limits, TransactionEvents
with seqNo 0..n and both energy registers) and that the registers agree with the energy the
EV counted. Negative paths: an EV discharging beyond the EVSE's limits, discharge scheduled
for an EV without BPT, a setpoint outside the EV's range, more periods than the EV supports,
and the CSMS connection dropping mid-discharge (the V2X fallback of docs/bridge.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hil.demo_rig import BridgeRig
from hil.ev import Ev20Config, EvCredentials, iso20_tls_context, run_ev
from pnc_bridge.pki import generate_test_pki
from pnc_bridge.secc import SeccTimers
from pnc_bridge.secc.effects import ControlMode, EnergyService, PaymentOption
from pnc_bridge.secc.schedule import from_rational
from tests.bridge.conftest import run

PNC, EIM = PaymentOption.Contract, PaymentOption.ExternalPayment
DC_BPT, DC = EnergyService.DC_BPT, EnergyService.DC
VERSIONS = ("2.1", "2.0.1")
#: what the bridge's EVSE can give back in these tests (``[[evse]] max_discharge_power_w``)
EVSE_DISCHARGE_W = 30000.0


@pytest.fixture(scope="session")
def pki20(tmp_path_factory):
    """An ISO 15118-20 test PKI (P-521), made once per run."""
    return generate_test_pki(tmp_path_factory.mktemp("pki20"), variant="iso20")


def schedule(*periods: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": list(periods)}]


def rig20(tmp_path, pki, pki20, ocpp: str = "2.1", *, discharge_w: float = EVSE_DISCHARGE_W,
          schedules: list[dict[str, Any]] | None = None, behaviour: dict[str, Any] | None = None,
          **kw: Any) -> BridgeRig:
    return BridgeRig(
        tmp_path, pki, pki20=pki20, evse={"max_discharge_power_w": discharge_w},
        v2g={"protocols": ["iso20-dc", "iso2"]}, csms={"subprotocols": [f"ocpp{ocpp}"]},
        behaviour={"schedules": schedules or schedule({"startPeriod": 0, "limit": 20000.0}), **(behaviour or {})},
        **kw)


def ev20(pki20, **kw: Any) -> Ev20Config:
    defaults: dict[str, Any] = dict(service=DC_BPT, payment=PNC, certificate_installation=False, loop_messages=5,
                                    loop_interval=0.05, ongoing_interval=0.02)
    if kw.get("payment", PNC) is PNC:
        defaults["credentials"] = EvCredentials.from_test_pki(pki20, with_contract=True)
    return Ev20Config(**{**defaults, **kw})


async def drive(rig: BridgeRig, config: Ev20Config, *, wait_idle: bool = True):
    """One -20 EV session against the rig over TLS 1.3 (the EV's OEM chain for mutual authentication)."""
    creds = config.credentials or EvCredentials.from_test_pki(rig.pki20, with_contract=False)
    ev = await run_ev(config, rig.v2g["host"], rig.endpoint.tls_port,
                      tls=iso20_tls_context([rig.pki20.v2g_root], creds.oem_chain, creds.oem_key))
    if wait_idle:
        await rig.wait_idle()
    return ev


def signs(ev: Any, threshold_w: float = 100.0) -> str:
    out = ""
    for sample in ev.result.loop:
        sign = "+" if sample.power_w > threshold_w else "-" if sample.power_w < -threshold_w else "0"
        if not out or out[-1] != sign:
            out += sign
    return out


def registers(event: dict[str, Any]) -> dict[str, float]:
    return {sv["measurand"]: float(sv["value"]) for mv in event.get("meterValue", []) for sv in mv["sampledValue"]}


def renegotiation_gaps_wh(ev: Any) -> tuple[float, float]:
    """(import, export) energy the EVSE may have metered while the EV's battery model was not
    counting: during a renegotiation the EVSE holds its last target, and the EV counts loop
    cycles only. From the last loop message before each later ScheduleExchangeRes to the
    first loop message after it, at the power of the last one."""
    loop = ev.result.loop
    imported = exported = 0.0
    for res in exchanges(ev, "ScheduleExchangeRes")[1:]:
        before = [x for x in loop if x.t < res.t]
        after = [x for x in loop if x.t > res.t]
        if before and after:
            energy = before[-1].power_w * (after[0].t - before[-1].t) / 3600.0
            imported, exported = imported + max(energy, 0.0), exported + max(-energy, 0.0)
    return imported, exported


def check_transaction(rig: BridgeRig, ev: Any, *, stopped: str | None = None) -> dict[str, Any]:
    """One transaction Started..Ended, seqNo 0..n, every frame schema-valid, and the import /
    export registers of every event non-decreasing and, at the end, equal to what the EV
    counted (to 0.1 Wh rounding plus the last status interval), plus what the meter may have
    counted during renegotiations (``renegotiation_gaps_wh``)."""
    events = rig.tx_events()
    assert events, "no TransactionEvent reached the CSMS"
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1
    assert rig.csms.invalid_frames() == []
    ended = events[-1]
    if stopped is not None:
        assert ended["transactionInfo"]["stoppedReason"] == stopped
    seen = [registers(e) for e in events if e.get("meterValue")]
    for name in ("Energy.Active.Import.Register", "Energy.Active.Export.Register"):
        values = [r[name] for r in seen]
        assert values == sorted(values), f"{name} went backwards: {values}"
    final = registers(ended)
    r = ev.result
    import_gap, export_gap = renegotiation_gaps_wh(ev)
    for register, counted, gap in (("Energy.Active.Import.Register", r.charged_wh, import_gap),
                                   ("Energy.Active.Export.Register", r.discharged_wh, export_gap)):
        tolerance = 0.3 + 0.05 * counted
        assert counted - tolerance <= final[register] <= counted + gap + tolerance, (register, final[register], counted, gap)
    return ended


def exchanges(ev: Any, message: str) -> list[Any]:
    return [e for e in ev.timeline if e.message == message]


# --------------------------------------------------------------------------- #
# Positive paths                                                               #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("ocpp", VERSIONS)
def test_dc_bpt_plug_and_charge_charges_discharges_charges(test_pki, pki20, tmp_path, ocpp):
    """Item 1 end to end: the CSMS's TxProfile charges, discharges, charges; the EV follows it,
    the EVSE meters both ways, the CSMS gets the EV's BPT limits in the form of its version."""
    if ocpp == "2.1":
        discharge = {"startPeriod": 2, "limit": 0.0, "dischargeLimit": -7000.0, "setpoint": -7000.0,
                     "operationMode": "CentralSetpoint"}
    else:
        discharge = {"startPeriod": 2, "limit": -7000.0}  # 2.0.1: a negative limit is discharge
    periods = schedule({"startPeriod": 0, "limit": 20000.0}, discharge, {"startPeriod": 3, "limit": 20000.0})

    async def main():
        async with rig20(tmp_path, test_pki, pki20, ocpp, schedules=periods,
                         device_model={"SampledDataCtrlr/TxUpdatedInterval": "1"}) as rig:
            ev = await drive(rig, ev20(pki20, loop_messages=40, loop_interval=0.1))
            assert ev.result.ok, ev.result.reason
            assert "+-+" in signs(ev).replace("0", ""), [round(s.power_w) for s in ev.result.loop]
            assert min(s.power_w for s in ev.result.loop) == pytest.approx(-7000.0, abs=1.0)
            assert ev.result.charged_wh > 0 and ev.result.discharged_wh > 0
            # the offered tuple: a charging and a discharging schedule on the CSMS's boundaries
            tuples = ev.result.schedule_tuples
            assert len(tuples) == 1 and tuples[0].discharging_schedule is not None
            needs = rig.calls("NotifyEVChargingNeeds")[0]
            charging = needs["chargingNeeds"]
            if ocpp == "2.1":
                assert charging["requestedEnergyTransfer"] == "DC_BPT"
                assert charging["controlMode"] == "ScheduledControl"
                assert charging["availableEnergyTransfer"] == ["DC_BPT"]
                v2x = charging["v2xChargingParameters"]
            else:
                assert charging["requestedEnergyTransfer"] == "DC"
                custom = charging["customData"]
                assert custom["vendorId"] == "org.pnc-bridge.v2x" and custom["requestedEnergyTransfer"] == "DC_BPT"
                assert custom["controlMode"] == "ScheduledControl"
                v2x = custom["v2xChargingParameters"]
            cfg = ev20(pki20)
            assert v2x["maxDischargePower"] == cfg.max_discharge_power_w
            assert v2x["maxDischargeCurrent"] == cfg.max_discharge_current_a
            assert v2x["maxChargePower"] == cfg.max_charge_power_w
            assert needs["maxScheduleTuples"] == cfg.max_supporting_points
            assert rig.behaviour.profile_answers[0]["status"] == "Accepted"
            # Authorize with the -20 contract (eMAID), a TransactionEvent with both registers
            assert rig.calls("Authorize")[0]["idToken"]["type"] == "eMAID"
            ended = check_transaction(rig, ev)
            assert registers(ended)["Energy.Active.Export.Register"] > 0
            periodic = [e for e in rig.tx_events() if e["triggerReason"] == "MeterValuePeriodic"]
            assert periodic and all("Energy.Active.Export.Register" in registers(e) for e in periodic)
            # the EV's power profile (with its discharge) went out as NotifyEVChargingSchedule
            plan = rig.calls("NotifyEVChargingSchedule")
            assert plan and plan[0]["chargingSchedule"]["chargingSchedulePeriod"]
            assert rig.service.contexts[1].driver.contactors_closed is False

    run(main())


def test_dynamic_control_setpoints_from_the_csms_reach_the_charge_loop(test_pki, pki20, tmp_path):
    """OCPP 2.1 Dynamic profile + UpdateDynamicSchedule: each accepted setpoint is the EVSE's
    target in the EV's next charge-loop responses, and stays so beyond the SECC's setpoint
    validity (the bridge pushes it again); one outside the EV's range is Rejected
    (SetpointOutOfRange) and never reaches the EV."""
    validity = 0.5

    async def main():
        async with rig20(tmp_path, test_pki, pki20, "2.1", behaviour={"send_profile_on_needs": False},
                         service={"secc_timers": SeccTimers(setpoint_validity=validity)},
                         device_model={"SampledDataCtrlr/TxUpdatedInterval": "1"}) as rig:
            station = "DEMO-CS-1"
            task = asyncio.create_task(drive(rig, ev20(pki20, control_mode=ControlMode.DynamicControl,
                                                       loop_messages=200, loop_interval=0.05), wait_idle=False))
            transaction_id = await rig.csms.wait_for(lambda e: rig.behaviour.transaction_of(station, 1), 15)
            await rig.csms.wait_for(lambda e: e.received("NotifyEVChargingNeeds", station=station), 15)
            answer = await rig.csms.call_json(station, "SetChargingProfile", {"evseId": 1, "chargingProfile": {
                "id": 77, "stackLevel": 0, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Dynamic",
                "transactionId": transaction_id, "chargingSchedule": [{"id": 1, "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 20000.0, "dischargeLimit": -9000.0,
                                                "setpoint": 5000.0, "operationMode": "CentralSetpoint"}]}]}})
            assert answer["status"] == "Accepted"
            driver = rig.service.contexts[1].driver

            async def evse_follows(target: float) -> None:
                # the session steers the power electronics to the setpoint (SetDcTarget) in the
                # same cycle it tells the EV
                await rig.wait_for(lambda r: abs(driver._output().power_w - target) < 50, 10)

            await evse_follows(5000.0)
            # 1. into discharge
            answer = await rig.csms.call_json(station, "UpdateDynamicSchedule",
                                              {"chargingProfileId": 77, "scheduleUpdate": {"setpoint": -6000.0}})
            assert answer["status"] == "Accepted"
            await evse_follows(-6000.0)
            await asyncio.sleep(3 * validity)  # the SECC would drop a setpoint not pushed again by now
            assert abs(driver._output().power_w - -6000.0) < 50
            # 2. beyond the EV's discharge limit (10 kW): refused, nothing changes
            answer = await rig.csms.call_json(station, "UpdateDynamicSchedule",
                                              {"chargingProfileId": 77, "scheduleUpdate": {"setpoint": -90000.0}})
            assert answer == {"status": "Rejected", "statusInfo": {"reasonCode": "SetpointOutOfRange"}}
            assert rig.station.charging_schedule(1).periods[0].setpoint == -6000.0
            # 3. back to charging
            answer = await rig.csms.call_json(station, "UpdateDynamicSchedule",
                                              {"chargingProfileId": 77, "scheduleUpdate": {"setpoint": 8000.0}})
            assert answer["status"] == "Accepted"
            await evse_follows(8000.0)
            ev = await task
            await rig.wait_idle()
            r = ev.result
            assert r.ok, r.reason
            targets = [s.evse_target_w for s in r.loop if s.evse_target_w is not None]
            ordered = [t for i, t in enumerate(targets) if i == 0 or t != targets[i - 1]]
            # the Dynamic profile's setpoint, then each accepted update, in order; never the refused one
            assert [t for t in ordered if t in (5000.0, -6000.0, 8000.0)] == [5000.0, -6000.0, 8000.0], ordered
            assert min(targets) >= -ev20(pki20).max_discharge_power_w
            assert r.discharged_wh > 0 and r.charged_wh > 0
            check_transaction(rig, ev)
            # a V2X CSMS sees the operation mode of its Dynamic profile in the periodic events
            periodic = [e for e in rig.tx_events() if e["triggerReason"] == "MeterValuePeriodic"]
            modes = [e["transactionInfo"].get("operationMode") for e in periodic]  # None: before the profile came
            assert "CentralSetpoint" in modes and set(modes) <= {"CentralSetpoint", None}

    run(main())


def test_a_new_profile_mid_session_renegotiates_into_discharge(test_pki, pki20, tmp_path):
    """OCPP 2.0.1: the session charges on the first TxProfile; a SetChargingProfile during the
    charge loop with a negative limit makes the session renegotiate (ScheduleRenegotiation),
    and the EV then discharges on the new -20 discharging schedule."""
    async def main():
        async with rig20(tmp_path, test_pki, pki20, "2.0.1") as rig:
            task = asyncio.create_task(drive(rig, ev20(pki20, loop_messages=60, loop_interval=0.05), wait_idle=False))
            driver = rig.service.contexts[1].driver
            await rig.wait_for(lambda r: driver._output().power_w > 1000, 20)
            first = next(r.payload for r in rig.csms.record if r.action == "SetChargingProfile" and r.direction == "out")
            # the same id replaces the TxProfile (another one at the same stack level would be a duplicate)
            answer = await rig.behaviour.send_profile("DEMO-CS-1", 1, schedule({"startPeriod": 0, "limit": -6000.0}),
                                                      profile_id=first["chargingProfile"]["id"])
            assert answer["status"] == "Accepted"
            ev = await task
            await rig.wait_idle()
            r = ev.result
            assert r.ok, r.reason
            assert r.renegotiations >= 1
            assert len(exchanges(ev, "ScheduleExchangeRes")) >= 2
            assert signs(ev).replace("0", "").startswith("+-")
            assert min(s.power_w for s in r.loop) == pytest.approx(-6000.0, abs=1.0)
            check_transaction(rig, ev)

    run(main())


# --------------------------------------------------------------------------- #
# Negative paths                                                               #
# --------------------------------------------------------------------------- #


def test_ev_discharging_beyond_the_evses_limits_is_refused(test_pki, pki20, tmp_path):
    """The EV plans to discharge twice what it was offered: PowerDeliveryRes
    FAILED_EVPowerProfileInvalid, nothing flows, and the transaction ends with both registers
    at what the meter saw."""
    periods = schedule({"startPeriod": 0, "limit": -7000.0})

    async def main():
        async with rig20(tmp_path, test_pki, pki20, "2.1", discharge_w=5000.0, schedules=periods) as rig:
            ev = await drive(rig, ev20(pki20, faults=frozenset({"discharge_beyond_limits"})))
            r = ev.result
            assert not r.ok
            assert r.last_code == "FAILED_EVPowerProfileInvalid", (r.last_code, r.reason)
            # what the EV was offered: the EVSE's 5 kW, not the CSMS's 7 kW
            offered = r.schedule_tuples[0].discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
            assert min(from_rational(e.power) for e in offered) == pytest.approx(-5000.0)
            assert r.evse_discharge_limit_w == pytest.approx(5000.0)
            ended = check_transaction(rig, ev)
            assert registers(ended)["Energy.Active.Export.Register"] == 0.0
            assert rig.service.contexts[1].driver.contactors_closed is False

    run(main())


@pytest.mark.parametrize("ocpp", VERSIONS)
def test_csms_schedules_discharge_for_an_ev_without_bpt(test_pki, pki20, tmp_path, ocpp):
    """A DC (not BPT) EV: the CSMS's discharging TxProfile is Rejected NoBidirectional; the EV
    is offered the station's limits, charges, and never discharges."""
    periods = schedule({"startPeriod": 0, "limit": -7000.0})

    async def main():
        async with rig20(tmp_path, test_pki, pki20, ocpp, schedules=periods, service={"schedule_wait": 1.0}) as rig:
            ev = await drive(rig, ev20(pki20, service=DC))
            r = ev.result
            assert r.ok, r.reason
            answer = rig.behaviour.profile_answers[0]
            assert answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == "NoBidirectional"
            assert r.schedule_tuples[0].discharging_schedule is None
            assert all(s.power_w >= 0 for s in r.loop) and r.discharged_wh == 0
            needs = rig.calls("NotifyEVChargingNeeds")[0]["chargingNeeds"]
            assert needs["requestedEnergyTransfer"] == "DC"
            ended = check_transaction(rig, ev)
            assert registers(ended)["Energy.Active.Export.Register"] == 0.0

    run(main())


def test_an_evse_without_discharge_hardware_offers_no_bpt(test_pki, pki20, tmp_path):
    """``max_discharge_power_w`` 0 (the default): ServiceDiscovery offers DC only, so a BPT-only
    EV finds no service in common (FAILED_NoEnergyTransferServiceSelected or FAILED), and
    nothing is charged or discharged."""
    async def main():
        async with rig20(tmp_path, test_pki, pki20, "2.1", discharge_w=0.0) as rig:
            ev = await drive(rig, ev20(pki20))
            r = ev.result
            assert not r.ok and r.loop_messages == 0
            assert r.last_code in ("FAILED", "FAILED_NoEnergyTransferServiceSelected"), (r.last_code, r.reason)
            assert rig.calls("NotifyEVChargingNeeds") == []

    run(main())


def test_more_schedule_periods_than_the_ev_supports(test_pki, pki20, tmp_path):
    """20 alternating charge / discharge periods for an EV with MaximumSupportingPoints 12: the
    tuple holds at most 12 entries, the first ones as the CSMS gave them, the tail folded so the
    EV is never offered more than the CSMS allows, either way, at any moment."""
    csms = [{"startPeriod": 60 * i, "limit": 20000.0 - 100 * i if i % 2 == 0 else -(7000.0 - 100 * i)} for i in range(20)]  # SmartChargingCtrlr.PeriodsPerSchedule: 24

    async def main():
        async with rig20(tmp_path, test_pki, pki20, "2.0.1", schedules=schedule(*csms)) as rig:
            ev = await drive(rig, ev20(pki20, max_supporting_points=12, loop_messages=3))
            r = ev.result
            assert r.ok, r.reason
            assert rig.calls("NotifyEVChargingNeeds")[0]["maxScheduleTuples"] == 12
            t = r.schedule_tuples[0]
            charge = t.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
            discharge = t.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
            assert len(charge) + len(discharge) <= 12
            assert len(charge) == len(discharge) >= 2
            # the offer starts when the EV asks, not when the CSMS's profile started: the first
            # entry is what is left of the CSMS's first period (all of it unless time passed)
            start = csms[1]["startPeriod"] - charge[0].duration
            assert 0 <= start < csms[1]["startPeriod"]
            for c, d in zip(charge, discharge):
                end = start + c.duration
                covered = [p for i, p in enumerate(csms) if p["startPeriod"] < end
                           and (i + 1 == len(csms) or csms[i + 1]["startPeriod"] > start)]
                assert from_rational(c.power) <= min(max(0.0, p["limit"]) for p in covered) + 1e-6
                assert -from_rational(d.power) <= min(max(0.0, -p["limit"]) for p in covered) + 1e-6
                start = end
            check_transaction(rig, ev)

    run(main())


@pytest.mark.parametrize("ocpp", VERSIONS)
def test_csms_connection_drops_mid_discharge(test_pki, pki20, tmp_path, ocpp):
    """The V2X fallback (docs/bridge.md): the CSMS goes away while the EV discharges; the last
    valid schedule holds (the EV keeps discharging) for the grace time, then the session is
    renegotiated to charge-only limits (no discharge). The TransactionEvents of the outage
    reach the CSMS when it is back, marked offline, seqNo unbroken, registers consistent."""
    periods = schedule({"startPeriod": 0, "limit": 20000.0}, {"startPeriod": 1, "limit": -7000.0},
                       {"startPeriod": 60, "limit": 20000.0})

    async def main():
        async with rig20(tmp_path, test_pki, pki20, ocpp, schedules=periods,
                         service={"v2x_offline_grace": 1.0},
                         device_model={"SampledDataCtrlr/TxUpdatedInterval": "1"}) as rig:
            task = asyncio.create_task(drive(rig, ev20(pki20, loop_messages=60, loop_interval=0.05), wait_idle=False))
            driver = rig.service.contexts[1].driver
            await rig.wait_for(lambda r: driver._output().power_w < -1000, 20)
            await rig.csms.down()
            await rig.wait_for(lambda r: not r.station.online, 5)
            ev = await task
            r = ev.result
            assert r.ok, r.reason
            assert r.renegotiations >= 1
            schedule_res = exchanges(ev, "ScheduleExchangeRes")
            renegotiated_at = schedule_res[-1].t
            before = [s for s in r.loop if s.t < renegotiated_at]
            after = [s for s in r.loop if s.t > renegotiated_at]
            assert before and after
            assert before[-1].power_w < 0  # the last valid schedule: still discharging offline
            assert all(s.power_w >= 0 for s in after)  # charge-only limits
            # the renegotiated offer has no discharge left
            tuple_ = r.schedule_tuples[0]
            if tuple_.discharging_schedule is not None:
                entries = tuple_.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
                assert all(from_rational(e.power) == 0 for e in entries)
            await rig.csms.up()
            await rig.wait_idle(30)
            ended = check_transaction(rig, ev)
            assert any(e.get("offline") for e in rig.tx_events())
            assert registers(ended)["Energy.Active.Export.Register"] > 0

    run(main())
