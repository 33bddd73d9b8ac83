"""Our EV core against our SECC core in memory (tests/secc/pair.py): every protocol, energy
transfer and payment combination reaches the charge loop and stops cleanly, and each negative
path ends with the response code the standard names, the clean stop (contactors open,
transaction ended with its reason) and nothing left pending. Time only moves by jumping to
the next deadline, so no test waits."""

from __future__ import annotations

import datetime as dt
import math

import pytest

from hil.ev import EvConfig, EvCredentials
from hil.secc_rig import RigBehaviour, RigPorts, default_schedules
from pnc_bridge.messages import din
from pnc_bridge.pki import generate_test_pki
from pnc_bridge.secc import SeccConfig, SupportedProtocol, message_name
from pnc_bridge.secc.effects import (
    AuthorizeWithCsms,
    CloseContactor,
    EnergyTransferMode,
    GetChargingSchedule,
    Isolation,
    OpenContactor,
    PaymentOption,
    ReportChargingState,
    ReportEvChargingSchedule,
    SetDcTarget,
    StartTransaction,
    StopReason,
    StopTransaction,
)
from pnc_bridge.secc.schedule import ChargingSchedule, LimitUnit, SchedulePeriod
from tests.secc.pair import run_pair

DC = EnergyTransferMode.DC_extended
AC = EnergyTransferMode.AC_three_phase_core
EIM = PaymentOption.ExternalPayment
PNC = PaymentOption.Contract
SECC = SeccConfig(energy_transfer_modes=(DC, AC, EnergyTransferMode.AC_single_phase_core))


def _ev(pki, protocol="iso2", mode=DC, payment=EIM, *, contract=False, **kw) -> EvConfig:
    creds = EvCredentials.from_test_pki(pki, with_contract=contract) if payment is PNC else None
    return EvConfig(protocols=(protocol,), energy_mode=mode, payment=payment, credentials=creds, **kw)


def _names(run, cls) -> list:
    return run.effects(cls)


def _assert_clean_end(run, *, charged: bool, stop_reason: StopReason | None):
    effects = run.effects()
    names = [type(e).__name__ for e in effects]
    if charged:
        assert "CloseContactor" in names
        last_close = max(i for i, n in enumerate(names) if n == "CloseContactor")
        assert "OpenContactor" in names[last_close:], "contactors left closed"
    stops = run.effects(StopTransaction)
    if stop_reason is None:
        assert not stops
    else:
        assert [s.reason for s in stops] == [stop_reason]
        assert names.index("StartTransaction") < names.index("StopTransaction")
    assert run.secc.closed


# --------------------------------------------------------------------------- #
# Every combination charges and stops cleanly                                  #
# --------------------------------------------------------------------------- #

COMBINATIONS = [
    ("din", DC, EIM, False, None),
    ("iso2", DC, EIM, False, None),
    ("iso2", AC, EIM, False, None),
    ("iso2", EnergyTransferMode.AC_single_phase_core, EIM, False, None),
    ("iso2", DC, PNC, True, None),  # contract already installed
    ("iso2", AC, PNC, True, None),
    ("iso2", DC, PNC, False, "install"),  # CertificateInstallation first
    ("iso2", AC, PNC, False, "install"),
    ("iso2", DC, PNC, True, "update"),  # CertificateUpdate first
]


@pytest.mark.parametrize("protocol,mode,payment,contract,action", COMBINATIONS,
                         ids=[f"{p}-{m.value}-{pay.value}-{a or ('contract' if c else 'none')}" for p, m, pay, c, a in COMBINATIONS])
def test_every_combination_charges_and_stops(test_pki, protocol, mode, payment, contract, action):
    ev = _ev(test_pki, protocol, mode, payment, contract=contract, certificate_action=action, loop_messages=6)
    run = run_pair(ev, SECC, RigPorts(test_pki), tls=payment is PNC)
    r = run.result
    assert r.ok, r.reason
    assert r.protocol == protocol and r.loop_messages == 6
    assert r.installed_contract == (action == "install")
    assert r.updated_contract == (action == "update")
    if payment is PNC:
        assert r.receipts >= 1  # MeteringReceipt asked for and its signature checked
    starts = run.effects(StartTransaction)
    assert len(starts) == 1 and starts[0].payment is payment and starts[0].protocol == protocol
    if payment is PNC:
        assert starts[0].emaid == test_pki.emaid
        assert len(run.effects(AuthorizeWithCsms)) == 1
    reported = run.effects(ReportEvChargingSchedule)
    assert len(reported) == 1 and reported[0].sa_schedule_tuple_id == 1
    states = [e.state.value for e in run.effects(ReportChargingState)]
    assert states == ["Charging", "EVConnected"]
    if mode.is_dc:
        assert run.effects(SetDcTarget)[-1].current_a == 0.0  # ramped down before the contactors opened
    _assert_clean_end(run, charged=True, stop_reason=StopReason.Local)
    assert run.last.reason == "the EV ended the session"


def test_schedule_with_all_periods_reaches_the_ev(test_pki):
    periods = tuple(SchedulePeriod(i * 600, 11000 - i * 500) for i in range(8))
    ports = RigPorts(test_pki, RigBehaviour(schedules=(ChargingSchedule(1, LimitUnit.W, periods),)))
    run = run_pair(_ev(test_pki, mode=AC, departure_time=7200), SECC, ports)
    assert run.result.ok
    entries = run.result.schedules.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert [e.time_interval.start for e in entries] == [p.start for p in periods]
    assert entries[-1].time_interval.duration == 7200 - periods[-1].start
    needs = run.effects(GetChargingSchedule)[0].needs
    assert needs.departure_time == 7200 and needs.energy_transfer_mode is AC


def test_max_entries_of_the_ev_is_honoured(test_pki):
    periods = tuple(SchedulePeriod(i * 600, 11000 - i * 500) for i in range(8))
    ports = RigPorts(test_pki, RigBehaviour(schedules=(ChargingSchedule(1, LimitUnit.W, periods),)))
    run = run_pair(_ev(test_pki, mode=AC, max_entries=3), SECC, ports)
    assert run.result.ok
    entries = run.result.schedules.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert len(entries) == 3
    assert run.effects(GetChargingSchedule)[0].needs.max_entries == 3


def test_pause_and_resume_with_the_same_session_id(test_pki):
    first = run_pair(_ev(test_pki, mode=DC, payment=PNC, contract=True, pause=True), SECC, RigPorts(test_pki))
    assert first.result.ok and first.result.paused
    resume = first.resume()
    assert resume is not None and resume.session_id == first.result.session_id
    assert not first.effects(StopTransaction)  # the transaction stays open over the pause
    assert [e.state.value for e in first.effects(ReportChargingState)][-1] == "SuspendedEV"
    second = run_pair(_ev(test_pki, mode=DC, payment=PNC, contract=True, resume_session_id=resume.session_id),
                      SECC, RigPorts(test_pki), resume=resume)
    assert second.result.ok and second.result.resumed
    assert second.result.session_id == first.result.session_id
    assert second.effects(StartTransaction)[0].resumed
    # the SAScheduleTupleID chosen before is offered again
    ids = [t.sa_schedule_tuple_id for t in second.result.schedules.sa_schedule_tuple]
    assert resume.sa_schedule_tuple_id in ids
    _assert_clean_end(second, charged=True, stop_reason=StopReason.Local)


def test_resume_with_an_unknown_session_id_starts_a_new_session(test_pki):
    first = run_pair(_ev(test_pki, pause=True), SECC, RigPorts(test_pki))
    second = run_pair(_ev(test_pki, resume_session_id=bytes(8 * [7])), SECC, RigPorts(test_pki), resume=first.resume())
    assert second.result.ok and not second.result.resumed
    assert second.result.session_id != first.result.session_id


def test_renegotiation_asked_by_the_secc_with_a_new_profile(test_pki):
    new = (ChargingSchedule(7, LimitUnit.W, (SchedulePeriod(0, 20000), SchedulePeriod(900, 10000))),)
    ports = RigPorts(test_pki)

    def hook(run, step):
        # the CSMS sends a new profile after the second charge-loop response
        loop = [s for s in run.steps if s.response is not None and message_name(s.response) == "CurrentDemandRes"]
        if len(loop) == 2 and step is loop[-1]:
            ports.behaviour = RigBehaviour(schedules=new)
            run.secc.session.renegotiate()

    run = run_pair(_ev(test_pki, loop_messages=8), SECC, ports, on_step=hook)
    assert run.result.ok and run.result.renegotiations == 1
    requests = run.effects(GetChargingSchedule)
    assert [r.renegotiation for r in requests] == [False, True]
    tuples = run.result.schedules.sa_schedule_tuple
    assert [t.sa_schedule_tuple_id for t in tuples] == [7]
    assert [e.time_interval.start for e in tuples[0].p_max_schedule.p_max_schedule_entry] == [0, 900]
    assert [e.sa_schedule_tuple_id for e in run.effects(ReportEvChargingSchedule)] == [1, 7]
    _assert_clean_end(run, charged=True, stop_reason=StopReason.Local)


def test_renegotiation_asked_by_the_ev(test_pki):
    run = run_pair(_ev(test_pki, mode=AC, loop_messages=6, renegotiate_after=2), SECC, RigPorts(test_pki))
    assert run.result.ok and run.result.renegotiations == 1
    assert len(run.effects(GetChargingSchedule)) == 2


def test_stop_charging_asked_by_the_secc(test_pki):
    def hook(run, step):
        if message_name(step.response) == "ChargingStatusRes":
            run.secc.session.stop_charging()

    run = run_pair(_ev(test_pki, mode=AC, loop_messages=50), SECC, RigPorts(test_pki), on_step=hook)
    assert run.result.ok and run.result.loop_messages == 2
    _assert_clean_end(run, charged=True, stop_reason=StopReason.Local)


def test_slow_csms_gets_ongoing_then_finished(test_pki):
    ports = RigPorts(test_pki, RigBehaviour(delays={"AuthorizeWithCsms": 3.0, "GetChargingSchedule": 2.0}))
    run = run_pair(_ev(test_pki, payment=PNC, contract=True), SECC, ports)
    assert run.result.ok
    auth = [e for e in run.ev.timeline if e.message == "AuthorizationRes"]
    assert "evse_processing=Ongoing" in auth[0].detail and "evse_processing=Finished" in auth[-1].detail
    assert len(auth) > 2


def test_eim_waits_for_the_customer(test_pki):
    ports = RigPorts(test_pki, RigBehaviour(delays={"AuthorizeExternalPayment": 5.0}))
    run = run_pair(_ev(test_pki), SECC, ports)
    assert run.result.ok
    auth = [e for e in run.ev.timeline if e.message == "AuthorizationRes"]
    assert "Ongoing_WaitingForCustomerInteraction" in auth[0].detail


# --------------------------------------------------------------------------- #
# Negative paths                                                               #
# --------------------------------------------------------------------------- #


def _failed(run, response: str, code: str):
    r = run.result
    assert not r.ok
    assert r.reason == f"{response}: {code}", r.reason
    assert run.secc.closed


@pytest.mark.parametrize("fault,code", [
    ("bad_authorization_signature", "FAILED_SignatureError"),
    ("unsigned_authorization", "FAILED_SignatureError"),
    ("wrong_gen_challenge", "FAILED_ChallengeInvalid"),
])
def test_bad_authorization(test_pki, fault, code):
    run = run_pair(_ev(test_pki, payment=PNC, contract=True, faults=frozenset({fault})), SECC, RigPorts(test_pki))
    _failed(run, "AuthorizationRes", code)
    assert not run.effects(StartTransaction) and not run.effects(CloseContactor)


def test_expired_contract(test_pki):
    later = test_pki.contract_leaf.not_valid_after_utc + dt.timedelta(days=1)
    run = run_pair(_ev(test_pki, payment=PNC, contract=True), SECC, RigPorts(test_pki, clock=lambda: later))
    _failed(run, "PaymentDetailsRes", "FAILED_CertificateExpired")


def test_unknown_mo_root(test_pki, tmp_path):
    other = generate_test_pki(tmp_path)
    run = run_pair(_ev(test_pki, payment=PNC, contract=True), SECC, RigPorts(test_pki, mo_roots=[other.mo_root]))
    _failed(run, "PaymentDetailsRes", "FAILED_CertChainError")


@pytest.mark.parametrize("certificate_status,code", [
    ("CertificateRevoked", "FAILED_CertificateRevoked"),
    ("ContractCancelled", "FAILED_ContractCanceled"),
    ("CertificateExpired", "FAILED_CertificateExpired"),
])
def test_csms_refuses_the_certificate(test_pki, certificate_status, code):
    ports = RigPorts(test_pki, RigBehaviour(csms_status="Invalid", csms_certificate_status=certificate_status))
    run = run_pair(_ev(test_pki, payment=PNC, contract=True), SECC, ports)
    _failed(run, "AuthorizationRes", code)


@pytest.mark.parametrize("status", ["Blocked", "Invalid", "Expired", "NoCredit"])
def test_csms_rejects_authorize(test_pki, status):
    ports = RigPorts(test_pki, RigBehaviour(csms_status=status, csms_certificate_status=None))
    run = run_pair(_ev(test_pki, payment=PNC, contract=True), SECC, ports)
    _failed(run, "AuthorizationRes", "FAILED")
    assert not run.effects(StartTransaction) and not run.effects(StopTransaction)


def test_csms_silent_gets_ongoing_then_failed_before_the_ev_gives_up(test_pki):
    ports = RigPorts(test_pki, RigBehaviour(delays={"AuthorizeWithCsms": math.inf}))
    run = run_pair(_ev(test_pki, payment=PNC, contract=True, ongoing_interval=1.0), SECC, ports)
    # the EV hears FAILED from the SECC, not its own V2G_EVCC_Ongoing_Timeout
    _failed(run, "AuthorizationRes", "FAILED")
    auth = [e for e in run.ev.timeline if e.message == "AuthorizationRes"]
    assert all("Ongoing" in e.detail for e in auth[:-1]) and len(auth) > 10


def test_csms_down_during_the_whole_session(test_pki):
    """CSMS unreachable: Authorize fails as a port error (the bridge's offline policy answers
    with a result when it may authorize locally); schedules fall back to the EVSE's limits."""
    ports = RigPorts(test_pki, RigBehaviour(fail=frozenset({"AuthorizeWithCsms", "GetChargingSchedule"})))
    run = run_pair(_ev(test_pki, payment=PNC, contract=True), SECC, ports)
    _failed(run, "AuthorizationRes", "FAILED")
    eim = run_pair(_ev(test_pki), SECC, RigPorts(test_pki, RigBehaviour(fail=frozenset({"GetChargingSchedule"}))))
    assert eim.result.ok
    entries = eim.result.schedules.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert len(entries) == 1 and entries[0].p_max.value * 10 ** entries[0].p_max.multiplier == 150000


def test_csms_offline_policy_accepts_locally(test_pki):
    """The offline policy lives in the fulfiller: when it authorizes from its local list the
    session charges as usual."""
    ports = RigPorts(test_pki, RigBehaviour(csms_status="Accepted", csms_certificate_status=None,
                                            fail=frozenset({"GetChargingSchedule"})))
    run = run_pair(_ev(test_pki, payment=PNC, contract=True), SECC, ports)
    assert run.result.ok


def test_ev_goes_silent_mid_loop(test_pki):
    run = run_pair(_ev(test_pki, faults=frozenset({"silent_in_loop"})), SECC, RigPorts(test_pki))
    assert run.last.close and run.last.response is None
    assert run.last.reason == "no request within V2G_SECC_Sequence_Timeout"
    _assert_clean_end(run, charged=True, stop_reason=StopReason.Timeout)


def test_tcp_reset_mid_session(test_pki):
    def hook(run, step):
        loop = [s for s in run.steps if s.response is not None and message_name(s.response) == "CurrentDemandRes"]
        return "cut" if len(loop) == 2 and step is loop[-1] else None

    run = run_pair(_ev(test_pki, loop_messages=10), SECC, RigPorts(test_pki), on_step=hook)
    assert run.last.reason == "connection lost"
    _assert_clean_end(run, charged=True, stop_reason=StopReason.EVDisconnected)
    assert run.effects(SetDcTarget)[-1].current_a == 0.0


def test_contactor_does_not_close(test_pki):
    run = run_pair(_ev(test_pki, mode=AC), SECC, RigPorts(test_pki, RigBehaviour(contactor_ok=False)))
    _failed(run, "PowerDeliveryRes", "FAILED_ContactorError")
    _assert_clean_end(run, charged=False, stop_reason=StopReason.Other)


def test_contactor_does_not_close_din(test_pki):
    run = run_pair(_ev(test_pki, "din"), SECC, RigPorts(test_pki, RigBehaviour(contactor_ok=False)))
    _failed(run, "PowerDeliveryRes", "FAILED_PowerDeliveryNotApplied")


def test_contactor_never_answers(test_pki):
    ports = RigPorts(test_pki, RigBehaviour(delays={"CloseContactor": math.inf}))
    run = run_pair(_ev(test_pki, mode=AC), SECC, ports)
    # answered by the SECC before the EV's V2G_EVCC_Msg_Timeout for PowerDeliveryReq
    _failed(run, "PowerDeliveryRes", "FAILED_PowerDeliveryNotApplied")
    assert run.effects(OpenContactor)  # the clean stop opens what may have closed


@pytest.mark.parametrize("protocol", ["din", "iso2"])
@pytest.mark.parametrize("isolation", [Isolation.Fault, Isolation.Invalid])
def test_isolation_fault(test_pki, protocol, isolation):
    run = run_pair(_ev(test_pki, protocol), SECC, RigPorts(test_pki, RigBehaviour(isolation=isolation)))
    _failed(run, "CableCheckRes", "FAILED")
    _assert_clean_end(run, charged=False, stop_reason=StopReason.Other)


@pytest.mark.parametrize("protocol", ["din", "iso2"])
def test_eim_refused(test_pki, protocol):
    run = run_pair(_ev(test_pki, protocol), SECC, RigPorts(test_pki, RigBehaviour(eim_accept=False)))
    _failed(run, "ContractAuthenticationRes" if protocol == "din" else "AuthorizationRes", "FAILED")


@pytest.mark.parametrize("protocol", ["din", "iso2"])
def test_sequence_error(test_pki, protocol):
    run = run_pair(_ev(test_pki, protocol, faults=frozenset({"skip_to_power_delivery"})), SECC, RigPorts(test_pki))
    _failed(run, "PowerDeliveryRes", "FAILED_SequenceError")
    assert not run.effects(CloseContactor)


@pytest.mark.parametrize("protocol", ["din", "iso2"])
def test_unknown_session(test_pki, protocol):
    run = run_pair(_ev(test_pki, protocol, faults=frozenset({"foreign_session_id"})), SECC, RigPorts(test_pki))
    _failed(run, "ServiceDiscoveryRes", "FAILED_UnknownSession")


def test_bad_metering_receipt_signature(test_pki):
    run = run_pair(_ev(test_pki, payment=PNC, contract=True, faults=frozenset({"bad_metering_signature"})), SECC,
                   RigPorts(test_pki))
    _failed(run, "MeteringReceiptRes", "FAILED_MeteringSignatureNotValid")
    _assert_clean_end(run, charged=True, stop_reason=StopReason.Other)


def test_certificate_installation_without_cps(test_pki):
    run = run_pair(_ev(test_pki, payment=PNC), SECC, RigPorts(test_pki, RigBehaviour(fail=frozenset({"RequestEvCertificate"}))))
    _failed(run, "CertificateInstallationRes", "FAILED_NoCertificateAvailable")


def test_certificate_installation_csms_silent(test_pki):
    ports = RigPorts(test_pki, RigBehaviour(delays={"RequestEvCertificate": math.inf}))
    run = run_pair(_ev(test_pki, payment=PNC), SECC, ports)
    _failed(run, "CertificateInstallationRes", "FAILED")


def test_plug_and_charge_is_not_offered_without_tls(test_pki):
    run = run_pair(_ev(test_pki, payment=PNC, contract=True), SECC, RigPorts(test_pki), tls=False)
    assert not run.result.ok and run.result.reason.startswith("Contract not offered")


def test_no_common_protocol(test_pki):
    secc = SeccConfig(protocols=(SupportedProtocol.DIN_70121,), energy_transfer_modes=(DC,))
    run = run_pair(_ev(test_pki, "iso2"), secc, RigPorts(test_pki))
    assert run.result.reason == "SupportedAppProtocol: no common protocol"
    assert run.last.close and not run.effects()


def test_din_is_not_offered_by_an_ac_only_evse(test_pki):
    secc = SeccConfig(energy_transfer_modes=(AC,))
    run = run_pair(EvConfig(protocols=("din", "iso2"), energy_mode=AC), secc, RigPorts(test_pki))
    assert run.result.ok and run.result.protocol == "iso2"


def test_responses_carry_the_evse_status(test_pki):
    run = run_pair(_ev(test_pki), SECC, RigPorts(test_pki))
    demand = [s.response.body.body_element for s in run.steps if message_name(s.response) == "CurrentDemandRes"]
    assert demand and all(d.evse_present_voltage.value * 10 ** d.evse_present_voltage.multiplier == 400 for d in demand)
    assert all(d.meter_info is not None and d.meter_info.meter_id == "RIG-METER-1" for d in demand)
    readings = [d.meter_info.meter_reading for d in demand]
    assert readings == sorted(readings) and readings[-1] > readings[0]  # the meter counts


def test_din_responses(test_pki):
    run = run_pair(_ev(test_pki, "din"), SECC, RigPorts(test_pki))
    bodies = [s.response.body.body_element for s in run.steps if hasattr(s.response, "body")]
    setup = next(b for b in bodies if isinstance(b, din.SessionSetupRes))
    assert setup.evseid == b"\x00"
    cpd = [b for b in bodies if isinstance(b, din.ChargeParameterDiscoveryRes)]
    assert cpd[0].evse_processing is din.EVSEProcessing.Ongoing and cpd[0].sa_schedules.sa_schedule_tuple  # mandatory
    tuples = cpd[-1].sa_schedules.sa_schedule_tuple
    entries = tuples[0].p_max_schedule.p_max_schedule_entry
    assert [e.time_interval.start for e in entries] == [0, 1800, 5400]
    assert all(e.p_max <= 32767 for e in entries)
    assert default_schedules(True)[0].periods[0].limit == 50000.0
