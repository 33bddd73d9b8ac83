"""Whole sessions through the bridge: the ``hil.ev`` EV emulator over TCP / TLS on loopback,
``pnc_bridge.bridge.Service`` (what ``pnc-bridge run`` runs) with the EVSE simulator, and the
``hil.csms`` CSMS emulator (the ``ocpp`` package: its CSMS side checks every frame against the
official OCPP 2.0.1 schemas). Each test checks what the EV got (response codes, schedules)
and what the CSMS saw (the OCPP frames, TransactionEvents with their trigger and reason,
seqNo without gaps): the positive paths and every negative path of issue 9."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest

from hil.csms import FaultPlan
from hil.demo_rig import BridgeRig
from hil.ev import EvConfig, EvCredentials, iso2_tls_context, run_ev
from pnc_bridge.pki import RootKind, certificate_hash_data, generate_test_pki
from pnc_bridge.secc import SeccTimers
from pnc_bridge.secc.effects import EnergyTransferMode, PaymentOption
from tests.bridge.conftest import run
from tests.bridge.relay import ResettingRelay

DC = EnergyTransferMode.DC_extended
AC = EnergyTransferMode.AC_three_phase_core
PNC, EIM = PaymentOption.Contract, PaymentOption.ExternalPayment
#: start the transaction at the handshake, so refused sessions show their TransactionEvents
EV_CONNECTED = {"TxCtrlr/TxStartPoint": "EVConnected"}


def ev_config(pki: Any, *, payment: PaymentOption = PNC, contract: bool = True, **kw: Any) -> EvConfig:
    defaults: dict[str, Any] = dict(protocols=("iso2",), energy_mode=DC, payment=payment, loop_messages=3,
                                    loop_interval=0.02, ongoing_interval=0.02)
    if payment is PNC:
        defaults["credentials"] = kw.pop("credentials", None) or EvCredentials.from_test_pki(pki, with_contract=contract)
        defaults["certificate_action"] = "none" if contract else "install"
    return EvConfig(**{**defaults, **kw})


async def charge(rig: BridgeRig, config: EvConfig, *, port: int | None = None, wait_end: bool = True):
    """One EV session against the rig (TLS for Plug & Charge), then wait until the bridge is idle."""
    if config.payment is PNC:
        ev = await run_ev(config, "::1", port or rig.endpoint.tls_port, tls=iso2_tls_context([rig.pki.v2g_root]))
    else:
        ev = await run_ev(config, "::1", port or rig.endpoint.tcp_port)
    if wait_end:
        await rig.wait_idle()
    return ev


def codes(ev: Any, message: str) -> list[str]:
    return [e.detail for e in ev.timeline if e.message == message]


def check_transaction(events: list[dict[str, Any]], *, stopped: str, trigger: str | None = None) -> dict[str, Any]:
    """One transaction from Started to Ended with seqNo 0..n (nothing lost); returns Ended."""
    assert events, "no TransactionEvent reached the CSMS"
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"
    assert {e["transactionInfo"]["transactionId"] for e in events} == {events[0]["transactionInfo"]["transactionId"]}
    ended = events[-1]
    assert ended["transactionInfo"]["stoppedReason"] == stopped
    if trigger is not None:
        assert ended["triggerReason"] == trigger
    return ended


def pmax(entry: Any) -> float:
    return entry.p_max.value * 10 ** entry.p_max.multiplier


# --------------------------------------------------------------------------- #
# Positive paths                                                               #
# --------------------------------------------------------------------------- #


def test_plug_and_charge_with_installation_and_the_csms_schedule(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model={"ISO15118Ctrlr/RequestMeteringReceipt": "true"}) as rig:
            ev = await charge(rig, ev_config(test_pki, contract=False, loop_messages=5))
            return ev, rig

    ev, rig = run(main())
    assert ev.result.ok, ev.result.reason
    assert ev.result.installed_contract and ev.result.receipts >= 1 and ev.result.loop_messages == 5
    # every period of both chargingSchedules of the CSMS's TxProfile, and its SalesTariff
    tuples = {t.sa_schedule_tuple_id: t for t in ev.result.schedules.sa_schedule_tuple}
    assert sorted(tuples) == [1, 2]
    first = tuples[1].p_max_schedule.p_max_schedule_entry
    assert [e.time_interval.start for e in first] == [0, 900, 2700, 5400]
    assert [pmax(e) for e in first] == [50000, 22000, 11000, 50000]
    assert tuples[1].sales_tariff is not None and tuples[2].sales_tariff is None
    assert [pmax(e) for e in tuples[2].p_max_schedule.p_max_schedule_entry] == [30000]

    assert rig.csms.invalid_frames() == []
    (install,) = rig.calls("Get15118EVCertificate")
    assert install["action"] == "Install" and install["iso15118SchemaVersion"] == "urn:iso:15118:2:2013:MsgDef"
    (authorize,) = rig.calls("Authorize")
    assert authorize["idToken"] == {"idToken": test_pki.emaid, "type": "eMAID"} and "certificate" not in authorize
    leaf, (sub2, sub1) = test_pki.chain("contract")
    expected = [certificate_hash_data(c, i).as_ocpp() for c, i in ((leaf, sub2), (sub2, sub1), (sub1, test_pki.mo_root))]
    assert authorize["iso15118CertificateHashData"] == expected
    (needs,) = rig.calls("NotifyEVChargingNeeds")
    assert needs["chargingNeeds"]["requestedEnergyTransfer"] == "DC" and needs["evseId"] == 1
    assert needs["chargingNeeds"]["dcChargingParameters"]["evMaxCurrent"] == 200
    (ev_schedule,) = rig.calls("NotifyEVChargingSchedule")
    assert ev_schedule["chargingSchedule"]["id"] == 1 and ev_schedule["chargingSchedule"]["chargingSchedulePeriod"]
    events = rig.tx_events()
    ended = check_transaction(events, stopped="StoppedByEV", trigger="EVCommunicationLost")
    started = events[0]
    assert started["triggerReason"] == "Authorized" and started["idToken"] == {"idToken": test_pki.emaid, "type": "eMAID"}
    assert any(e["transactionInfo"].get("chargingState") == "Charging" for e in events)
    energy = [v["value"] for v in ended["meterValue"][0]["sampledValue"] if v["measurand"] == "Energy.Active.Import.Register"]
    assert energy and energy[0] > 0
    statuses = [c["connectorStatus"] for c in rig.calls("StatusNotification")]
    assert statuses[-2:] == ["Occupied", "Available"]


def test_the_schedule_fits_max_entries_and_departure_time(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki) as rig:
            return await charge(rig, ev_config(test_pki, max_entries=3, departure_time=2000))

    ev = run(main())
    assert ev.result.ok, ev.result.reason
    limits = {0: 50000, 900: 22000, 2700: 11000, 5400: 50000}  # the CSMS's first chargingSchedule

    def csms_limit(t: int) -> float:
        return limits[max(s for s in limits if s <= t)]

    for t in ev.result.schedules.sa_schedule_tuple:
        entries = t.p_max_schedule.p_max_schedule_entry
        tariff = len(t.sales_tariff.sales_tariff_entry) if t.sales_tariff is not None else 0
        assert len(entries) + tariff <= 3
        starts = [e.time_interval.start for e in entries]
        assert all(start < 2000 for start in starts)
        if t.sa_schedule_tuple_id == 1:  # never more than the CSMS allows at any moment
            for e, end in zip(entries, starts[1:] + [2000]):
                moments = [e.time_interval.start] + [s for s in limits if e.time_interval.start < s < end]
                assert pmax(e) <= min(csms_limit(m) for m in moments)


@pytest.mark.parametrize("protocol,mode", [("din", DC), ("iso2", DC), ("iso2", AC)])
def test_eim_authorized_by_a_remote_start(test_pki, tmp_path, protocol, mode):
    async def main():
        async with BridgeRig(tmp_path, test_pki, phases=0 if mode.is_dc else 3,
                             behaviour={"remote_start_on_plug_in": True}) as rig:
            return await charge(rig, ev_config(test_pki, payment=EIM, protocols=(protocol,), energy_mode=mode)), rig

    ev, rig = run(main())
    assert ev.result.ok and ev.result.protocol == protocol, ev.result.reason
    (remote,) = [r.payload for r in rig.csms.sent() if r.action == "RequestStartTransaction"]
    events = rig.tx_events()
    check_transaction(events, stopped="StoppedByEV")
    assert events[0]["triggerReason"] == "RemoteStart"
    assert events[0]["transactionInfo"]["remoteStartId"] == remote["remoteStartId"]
    assert events[0]["idToken"] == {"idToken": "DEMO-APP-USER", "type": "Central"}
    assert rig.calls("NotifyEVChargingNeeds")[0]["chargingNeeds"]["requestedEnergyTransfer"] == (
        "DC" if mode.is_dc else "AC_three_phase")


def test_free_charging_when_authorization_is_off(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model={"AuthCtrlr/Enabled": "false"}) as rig:
            return await charge(rig, ev_config(test_pki, payment=EIM, protocols=("din",))), rig

    ev, rig = run(main())
    assert ev.result.ok, ev.result.reason
    events = rig.tx_events()
    check_transaction(events, stopped="StoppedByEV")
    assert events[0]["idToken"] == {"idToken": "", "type": "NoAuthorization"}


@pytest.mark.parametrize("start,trigger,state", [
    ("EVConnected", "CablePluggedIn", "EVConnected"),
    ("EnergyTransfer", "ChargingStateChanged", "Charging"),
])
def test_tx_start_point(test_pki, tmp_path, start, trigger, state):
    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model={"TxCtrlr/TxStartPoint": start}) as rig:
            return await charge(rig, ev_config(test_pki)), rig

    ev, rig = run(main())
    assert ev.result.ok, ev.result.reason
    events = rig.tx_events()
    check_transaction(events, stopped="StoppedByEV")
    assert events[0]["triggerReason"] == trigger and events[0]["transactionInfo"]["chargingState"] == state
    # the idToken comes with the authorization, whenever the transaction started (E02)
    assert any(e.get("idToken", {}).get("idToken") == test_pki.emaid for e in events)


def test_tx_stop_point_energy_transfer_ends_when_the_ev_stops_charging(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model={"TxCtrlr/TxStopPoint": "EnergyTransfer"}) as rig:
            return await charge(rig, ev_config(test_pki)), rig

    ev, rig = run(main())
    assert ev.result.ok
    ended = check_transaction(rig.tx_events(), stopped="StoppedByEV", trigger="ChargingStateChanged")
    assert ended["transactionInfo"]["chargingState"] == "EVConnected"


def test_central_contract_validation_sends_the_chain(test_pki, tmp_path):
    """No MO root in the trust store; CentralContractValidationAllowed: the CSMS decides with the chain."""
    async def main():
        async with BridgeRig(tmp_path, test_pki, roots=("v2g", "oem"),
                             device_model={"ISO15118Ctrlr/CentralContractValidationAllowed": "true"}) as rig:
            return await charge(rig, ev_config(test_pki)), rig

    ev, rig = run(main())
    assert ev.result.ok, ev.result.reason
    (authorize,) = rig.calls("Authorize")
    leaf, subs = test_pki.chain("contract")
    from cryptography.hazmat.primitives.serialization import Encoding

    assert authorize["certificate"] == "".join(c.public_bytes(Encoding.PEM).decode() for c in (leaf, *subs))
    assert len(authorize["iso15118CertificateHashData"]) == 2  # the root's key is not known here


def test_remote_stop_ends_the_session(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki) as rig:
            task = asyncio.create_task(charge(rig, ev_config(test_pki, loop_messages=1000, loop_interval=0.05)))
            await rig.wait_for(lambda r: r.service.contexts[1].tracker.charging_state == "Charging")
            tid = rig.service.contexts[1].transaction_id
            answer = await rig.csms.call_json("DEMO-CS-1", "RequestStopTransaction", {"transactionId": tid})
            return answer, await asyncio.wait_for(task, 30), rig

    answer, ev, rig = run(main())
    assert answer["status"] == "Accepted"
    assert ev.result.ok and ev.result.loop_messages < 1000  # the EV stopped on EVSENotification=StopCharging
    check_transaction(rig.tx_events(), stopped="Remote")


def test_pause_and_resume_keep_one_transaction(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki) as rig:
            first = await charge(rig, ev_config(test_pki, pause=True))
            assert first.result.ok and first.result.paused, first.result.reason
            assert not any(e["eventType"] == "Ended" for e in rig.tx_events())
            second = await charge(rig, ev_config(test_pki, resume_session_id=first.result.session_id))
            return first, second, rig

    first, second, rig = run(main())
    assert second.result.ok and second.result.resumed, second.result.reason
    events = rig.tx_events()
    check_transaction(events, stopped="StoppedByEV")
    assert [e["transactionInfo"].get("chargingState") for e in events if "chargingState" in e["transactionInfo"]].count(
        "SuspendedEV") == 1


# --------------------------------------------------------------------------- #
# Negative paths                                                               #
# --------------------------------------------------------------------------- #


def test_bad_authorization_signature(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model=EV_CONNECTED) as rig:
            return await charge(rig, ev_config(test_pki, faults=frozenset({"bad_authorization_signature"}))), rig

    ev, rig = run(main())
    assert not ev.result.ok and ev.result.last_code == "FAILED_SignatureError"
    check_transaction(rig.tx_events(), stopped="DeAuthorized", trigger="Deauthorized")
    assert not rig.service.drivers[1].contactors_closed


def test_expired_contract_is_refused_locally(test_pki, tmp_path):
    expired = generate_test_pki(tmp_path / "old", at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3 * 365))
    leaf, subs = expired.chain("contract")
    base = EvCredentials.from_test_pki(test_pki, with_contract=False)
    credentials = EvCredentials(base.oem_chain, base.oem_key, base.v2g_root, (leaf, *subs), expired.key("contract_leaf"),
                                expired.emaid)

    async def main():
        async with BridgeRig(tmp_path / "rig", test_pki, device_model=EV_CONNECTED) as rig:
            rig.trust_store.add_roots(RootKind.MO, [expired.mo_root])
            return await charge(rig, ev_config(test_pki, credentials=credentials)), rig

    ev, rig = run(main())
    assert ev.result.last_code == "FAILED_CertificateExpired" and codes(ev, "PaymentDetailsRes")
    assert rig.calls("Authorize") == []  # refused here: nothing to ask the CSMS
    check_transaction(rig.tx_events(), stopped="DeAuthorized", trigger="Deauthorized")


@pytest.mark.parametrize("certificate_status,code", [
    ("CertificateRevoked", "FAILED_CertificateRevoked"),
    ("ContractCancelled", "FAILED_ContractCanceled"),
])
def test_contract_refused_by_the_csms(test_pki, tmp_path, certificate_status, code):
    refuse = {"idTokenInfo": {"status": "Invalid"}, "certificateStatus": certificate_status}

    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model=EV_CONNECTED, behaviour={"authorize": refuse}) as rig:
            return await charge(rig, ev_config(test_pki)), rig

    ev, rig = run(main())
    assert ev.result.last_code == code and codes(ev, "AuthorizationRes")
    check_transaction(rig.tx_events(), stopped="DeAuthorized", trigger="Deauthorized")


def test_unknown_mo_root_without_central_validation(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki, roots=("v2g", "oem"), device_model=EV_CONNECTED) as rig:
            return await charge(rig, ev_config(test_pki)), rig

    ev, rig = run(main())
    assert ev.result.last_code == "FAILED_CertChainError"
    assert rig.calls("Authorize") == []
    check_transaction(rig.tx_events(), stopped="DeAuthorized")


@pytest.mark.parametrize("status", ["Blocked", "Invalid", "Unknown"])
def test_csms_rejects_authorize(test_pki, tmp_path, status):
    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model=EV_CONNECTED,
                             behaviour={"authorize": {"idTokenInfo": {"status": status}}}) as rig:
            return await charge(rig, ev_config(test_pki)), rig

    ev, rig = run(main())
    assert ev.result.last_code == "FAILED"
    assert codes(ev, "AuthorizationRes")[-1].startswith("response_code=FAILED")
    check_transaction(rig.tx_events(), stopped="DeAuthorized", trigger="Deauthorized")


def test_csms_silent_gives_ongoing_then_failed(test_pki, tmp_path):
    """The CSMS never answers Authorize: the EV hears Ongoing, then FAILED from the SECC (after
    the OCPP MessageTimeout), not its own V2G_EVCC_Ongoing_Timeout."""
    silent = FaultPlan(drop_in=1.0, actions=frozenset({"Authorize"}))  # the CSMS never sees it

    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model=EV_CONNECTED, message_timeout=2.0,
                             csms={"faults": silent}) as rig:
            return await charge(rig, ev_config(test_pki, ongoing_interval=0.2)), rig

    ev, rig = run(main())
    answers = codes(ev, "AuthorizationRes")
    assert ev.result.last_code == "FAILED" and "no response" not in ev.result.reason
    assert len(answers) > 2 and all("Ongoing" in a for a in answers[:-1])
    check_transaction(rig.tx_events(), stopped="DeAuthorized")


def test_ev_goes_silent_mid_loop(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki, service={"secc_timers": SeccTimers(sequence_timeout=1.0)}) as rig:
            ev = await charge(rig, ev_config(test_pki, faults=frozenset({"silent_in_loop"})))
            return ev, rig

    ev, rig = run(main())
    assert not ev.result.ok
    check_transaction(rig.tx_events(), stopped="Timeout", trigger="EVCommunicationLost")
    driver = rig.service.drivers[1]
    assert not driver.contactors_closed


def test_tcp_reset_mid_session(test_pki, tmp_path):
    async def main():
        async with BridgeRig(tmp_path, test_pki, device_model={"AuthCtrlr/Enabled": "false"}) as rig:
            async with ResettingRelay("::1", rig.endpoint.tcp_port) as relay:
                task = asyncio.create_task(charge(rig, ev_config(test_pki, payment=EIM, loop_messages=1000),
                                                  port=relay.port, wait_end=False))
                await rig.wait_for(lambda r: r.service.contexts[1].tracker.charging_state == "Charging")
                relay.reset()
                await rig.wait_idle()
                task.cancel()
            return rig

    rig = run(main(), timeout=60)
    check_transaction(rig.tx_events(), stopped="EVDisconnected", trigger="EVCommunicationLost")
    assert not rig.service.drivers[1].contactors_closed


@pytest.mark.parametrize("offline_validation", [True, False])
def test_csms_down_during_the_whole_session(test_pki, tmp_path, offline_validation):
    """ContractValidationOffline true: the locally valid contract charges, the TransactionEvents
    wait in the outbox and reach the CSMS when it is back, marked offline, none lost (E04.FR.03).
    False: no charging (C07.FR.07 as libocpp quotes it)."""
    async def main():
        dm = {"ISO15118Ctrlr/ContractValidationOffline": str(offline_validation).lower()}
        async with BridgeRig(tmp_path, test_pki, device_model=dm) as rig:
            await rig.csms.down()
            await rig.wait_for(lambda r: not r.station.online)
            ev = await charge(rig, ev_config(test_pki), wait_end=False)
            await rig.wait_for(lambda r: r.service.contexts[1].adapter is None)
            queued = len(rig.tx_events())
            await rig.csms.up()
            if offline_validation:
                await rig.wait_ended(30)
            else:
                await rig.wait_for(lambda r: r.station.online, 30)
            return ev, queued, rig

    ev, queued, rig = run(main())
    assert queued == 0  # nothing reached the CSMS while it was down
    if offline_validation:
        assert ev.result.ok, ev.result.reason
        events = rig.tx_events()
        check_transaction(events, stopped="StoppedByEV")
        assert all(e.get("offline") is True for e in events)
        # offline: the station's own limit, one period (no CSMS profile)
        (t,) = ev.result.schedules.sa_schedule_tuple
        assert [pmax(e) for e in t.p_max_schedule.p_max_schedule_entry] == [150000]
    else:
        assert ev.result.last_code == "FAILED" and codes(ev, "AuthorizationRes")
        assert rig.tx_events() == []


def test_renegotiation_with_a_new_profile(test_pki, tmp_path):
    new_schedule = [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": 20000.0}, {"startPeriod": 600, "limit": 10000.0}]}]

    async def main():
        async with BridgeRig(tmp_path, test_pki) as rig:
            task = asyncio.create_task(charge(rig, ev_config(test_pki, loop_messages=60, loop_interval=0.05)))
            await rig.wait_for(lambda r: r.service.contexts[1].tracker.charging_state == "Charging")
            first_id = 101  # the profile PncCsms set after NotifyEVChargingNeeds
            answer = await rig.behaviour.send_profile("DEMO-CS-1", 1, new_schedule, profile_id=first_id)
            return answer, await asyncio.wait_for(task, 30), rig

    answer, ev, rig = run(main())
    assert answer["status"] == "Accepted"
    assert ev.result.ok and ev.result.renegotiations == 1, ev.result.reason
    (t,) = ev.result.schedules.sa_schedule_tuple  # the renegotiated schedule: the new profile
    assert [pmax(e) for e in t.p_max_schedule.p_max_schedule_entry] == [20000, 10000]
    assert len(rig.calls("NotifyEVChargingNeeds")) == 1  # the CSMS's own change: not asked again
    assert len(rig.calls("NotifyEVChargingSchedule")) == 2  # the EV's profile after each PowerDelivery Start
    check_transaction(rig.tx_events(), stopped="StoppedByEV")
    assert rig.csms.invalid_frames() == []
