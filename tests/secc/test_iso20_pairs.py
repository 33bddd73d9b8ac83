"""Our ISO 15118-20 EV core against our SECC core in memory (tests/secc/pair.py): every service
(AC, DC, AC_BPT, DC_BPT) in both control modes with EIM and Plug & Charge, a schedule that
charges, discharges and charges again, dynamic setpoints, renegotiation, standby, pause and
resume, service renegotiation, and the negative paths. Time moves only by deadlines."""

from __future__ import annotations

import itertools

import pytest

from hil.ev import Ev20Config, EvCredentials
from hil.secc_rig import RigBehaviour, RigPorts, v2g_schedule
from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc import PowerSetpoint, SeccConfig, SeccTimers
from pnc_bridge.secc.effects import (
    CloseContactor,
    ControlMode,
    EnergyService,
    EnergyTransferMode,
    GetChargingSchedule,
    OpenContactor,
    PaymentOption,
    RequestEvCertificate,
    SetDcTarget,
    StartTransaction,
    StopReason,
    StopTransaction,
    VerifyMeteringReceiptSignature,
)
from pnc_bridge.secc.iso20 import ALLOWED_CODES, RESPONSE_OF
from pnc_bridge.secc.schedule import ChargingSchedule, LimitUnit, SchedulePeriod, from_rational
from tests.secc.pair import run_pair

SERVICES = (EnergyService.DC, EnergyService.DC_BPT, EnergyService.AC, EnergyService.AC_BPT)
MODES = (ControlMode.ScheduledControl, ControlMode.DynamicControl)
#: 1 s per period and 0.25 s between charge-loop messages: 4 messages charge, 4 discharge, then charge
V2G = RigBehaviour(schedules=(v2g_schedule(period_s=1, setpoints=True),))


def secc_config(**kw) -> SeccConfig:
    kw.setdefault("energy_transfer_modes", (EnergyTransferMode.DC_extended, EnergyTransferMode.AC_three_phase_core))
    return SeccConfig(**kw)


def ev(service=EnergyService.DC_BPT, control_mode=ControlMode.ScheduledControl, **kw) -> Ev20Config:
    kw.setdefault("loop_messages", 14)
    kw.setdefault("loop_interval", 0.25)
    return Ev20Config(service=service, control_mode=control_mode, **kw)


def check_responses(run) -> None:
    """Every SECC response answers its request with an allowed code."""
    for step in run.steps:
        if step.response is None or type(step.response).__name__.startswith("SupportedAppProtocol"):
            continue
        assert step.response.response_code in ALLOWED_CODES[type(step.response)]
        if step.request is not None:
            assert type(step.response) is RESPONSE_OF[type(step.request)]


def signs(values: list[float]) -> list[int]:
    """The sign changes of a power series: [+1, -1, +1] for charge, discharge, charge."""
    out: list[int] = []
    for v in values:
        s = (v > 1) - (v < -1)
        if s != 0 and (not out or out[-1] != s):
            out.append(s)
    return out


def credentials(pki, contract: bool):
    return EvCredentials.from_test_pki(pki, with_contract=contract)


@pytest.mark.parametrize("service,control_mode", list(itertools.product(SERVICES, MODES)),
                         ids=lambda v: v.value)
def test_every_service_and_control_mode_charges_discharges_and_charges_again_with_eim(service, control_mode):
    ports = RigPorts(None, V2G)
    run = run_pair(ev(service, control_mode), secc_config(), ports)
    check_responses(run)
    r = run.result
    assert r.ok and r.reason == "session ended", r.reason
    assert r.protocol == ("iso20-dc" if service.is_dc else "iso20-ac") and r.loop_messages == 14
    powers = [s.power_w for s in r.loop]
    if service.is_bpt:
        assert signs(powers) == [1, -1, 1] and r.discharged_wh > 0 and r.charged_wh > 0
    else:
        assert signs(powers) == [1] and min(powers) >= 0 and r.discharged_wh == 0
    if control_mode is ControlMode.DynamicControl:
        # the EV follows the EVSE's target of the previous response
        targets = [s.evse_target_w for s in r.loop]
        assert signs(targets) == ([1, -1, 1] if service.is_bpt else [1])
        assert powers[1:] == targets[:-1]
    start, stop = run.effects(StartTransaction), run.effects(StopTransaction)
    assert len(start) == 1 and start[0].protocol == "iso20" and len(stop) == 1 and stop[0].reason is StopReason.Local
    assert run.effects(CloseContactor) and run.effects(OpenContactor)
    needs = run.effects(GetChargingSchedule)[0].needs
    assert needs.service is service and needs.control_mode is control_mode
    if service.is_dc:
        last = run.effects(SetDcTarget)[-1]
        assert (last.voltage_v, last.current_a) == (0.0, 0.0)
        meter = ports.status.meter
        assert meter.energy_wh > 0 and (meter.discharged_energy_wh > 0) == service.is_bpt


@pytest.mark.parametrize("install", [False, True], ids=["contract", "installation"])
@pytest.mark.parametrize("service,control_mode", [(EnergyService.DC_BPT, ControlMode.ScheduledControl),
                                                  (EnergyService.AC_BPT, ControlMode.DynamicControl),
                                                  (EnergyService.DC, ControlMode.DynamicControl),
                                                  (EnergyService.AC, ControlMode.ScheduledControl)], ids=lambda v: v.value)
def test_plug_and_charge_signs_authorization_and_metering_and_installs_a_contract(test_pki20, service, control_mode, install):
    ports = RigPorts(test_pki20, V2G)
    config = ev(service, control_mode, payment=PaymentOption.Contract, credentials=credentials(test_pki20, not install))
    run = run_pair(config, secc_config(), ports)
    check_responses(run)
    r = run.result
    assert r.ok, r.reason
    assert r.installed_contract == install and bool(run.effects(RequestEvCertificate)) == install
    start = run.effects(StartTransaction)[0]
    assert start.payment is PaymentOption.Contract and start.emaid == test_pki20.emaid
    assert r.receipts >= 1 and run.effects(VerifyMeteringReceiptSignature)


def test_the_charge_discharge_charge_schedule_reaches_the_ev_as_three_periods_both_ways():
    run = run_pair(ev(loop_messages=3), secc_config(), RigPorts(None, RigBehaviour(schedules=(v2g_schedule(period_s=1800),))))
    (tup,) = run.result.schedule_tuples
    charge = [(e.duration, from_rational(e.power)) for e in tup.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry]
    discharge = [(e.duration, from_rational(e.power)) for e in tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry]
    assert charge == [(1800, 11000), (1800, 0), (3600, 11000)]  # up to the EV's departure time (7200 s)
    assert discharge == [(1800, 0), (1800, -7000), (3600, 0)]


def test_more_periods_than_the_ev_supports_are_folded_into_its_maximum_supporting_points():
    periods = tuple(SchedulePeriod(i * 60, 11000 - 100 * i, discharge_limit=-(1000 + 50 * i)) for i in range(40))
    ports = RigPorts(None, RigBehaviour(schedules=(ChargingSchedule(1, LimitUnit.W, periods),)))
    run = run_pair(ev(max_supporting_points=12, loop_messages=3), secc_config(), ports)
    assert run.result.ok
    (tup,) = run.result.schedule_tuples
    charge = tup.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
    discharge = tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
    assert len(charge) + len(discharge) <= 12 and len(charge) == len(discharge) == 6
    # the first five periods as they are, the rest folded to their lowest limits both ways
    assert [from_rational(e.power) for e in charge] == [11000, 10900, 10800, 10700, 10600, 7100]
    assert [from_rational(e.power) for e in discharge] == [-1000, -1050, -1100, -1150, -1200, -1250]


def test_a_setpoint_pushed_mid_session_is_in_the_next_charge_loop_response():
    pushed: dict = {}

    def on_tick(run, now):
        if "at" not in pushed and run.result.loop_messages >= 3:
            run.secc.update_setpoint(PowerSetpoint(-4000), now)
            pushed["at"], pushed["loop"] = now - run.ev._t0, run.result.loop_messages

    ports = RigPorts(None, RigBehaviour(schedules=(ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 11000),)),)))
    run = run_pair(ev(control_mode=ControlMode.DynamicControl, loop_messages=8), secc_config(), ports, on_tick=on_tick)
    samples = run.result.loop
    n = pushed["loop"]
    assert [s.evse_target_w for s in samples[:n]] == [11000] * n
    assert samples[n].evse_target_w == -4000  # the first response after the push: one cycle
    assert all(s.evse_target_w == -4000 for s in samples[n:])
    assert run.effects(SetDcTarget)[-2].current_a == pytest.approx(-10.0)  # -4 kW at the EV's 400 V


def test_a_setpoint_beyond_what_the_ev_may_give_back_is_held_at_its_limit():
    def on_tick(run, now):
        run.secc.update_setpoint(PowerSetpoint(-40000), now)

    run = run_pair(ev(control_mode=ControlMode.DynamicControl, loop_messages=4, max_discharge_power_w=9000),
                   secc_config(), RigPorts(None), on_tick=on_tick)
    assert {s.evse_target_w for s in run.result.loop[1:]} == {-9000}


def test_the_ev_renegotiates_and_the_evse_asks_for_renegotiation():
    run = run_pair(ev(renegotiate_after=3), secc_config(), RigPorts(None, V2G))
    assert run.result.ok and run.result.renegotiations == 1
    needs = run.effects(GetChargingSchedule)
    assert [n.renegotiation for n in needs] == [False, True]
    assert len(run.effects(CloseContactor)) == 1  # the contactors stay closed

    def on_tick(run, now):
        if run.result.loop_messages == 2 and not run.result.renegotiations:
            run.secc.session.renegotiate()

    run = run_pair(ev(), secc_config(), RigPorts(None, V2G), on_tick=on_tick)
    assert run.result.ok and run.result.renegotiations == 1


def test_standby_stops_the_power_for_a_while():
    run = run_pair(ev(standby_after=2, standby_loops=3, control_mode=ControlMode.ScheduledControl,
                      service=EnergyService.DC), secc_config(), RigPorts(None, V2G))
    assert run.result.ok and run.result.standbys == 1
    powers = [s.power_w for s in run.result.loop]
    assert powers[2:5] == [0.0, 0.0, 0.0] and powers[5] > 0


def test_pause_then_resume_joins_the_session_and_keeps_the_transaction():
    first = run_pair(ev(pause=True, loop_messages=3), secc_config(), RigPorts(None, V2G))
    assert first.result.ok and first.result.paused and not first.effects(StopTransaction)
    resume = first.resume()
    second = run_pair(ev(resume_session_id=resume.session_id, loop_messages=3), secc_config(), RigPorts(None, V2G), resume=resume)
    assert second.result.ok and second.result.resumed
    assert second.result.session_id == first.result.session_id
    assert second.effects(StartTransaction)[0].resumed and second.effects(StopTransaction)[0].reason is StopReason.Local


def test_service_renegotiation_charges_again_in_the_same_transaction():
    run = run_pair(ev(service=EnergyService.AC_BPT, service_renegotiations=1, loop_messages=3), secc_config(), RigPorts(None, V2G))
    assert run.result.ok and run.result.service_renegotiations == 1 and run.result.loop_messages == 6
    assert len(run.effects(StartTransaction)) == 1 and len(run.effects(StopTransaction)) == 1
    assert len(run.effects(GetChargingSchedule)) == 2


# --------------------------------------------------------------------------- #
# Negative paths                                                               #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("fault,expected", [
    ("unsigned_authorization", "FAILED_SignatureError"),
    ("bad_authorization_signature", "FAILED_SignatureError"),
    ("bad_metering_signature", "FAILED_MeteringSignatureNotValid"),
    ("foreign_session_id", "FAILED_UnknownSession"),
    ("skip_to_power_delivery", "FAILED_SequenceError"),
    ("discharge_beyond_limits", "FAILED_EVPowerProfileInvalid"),
    ("wrong_control_mode", "FAILED"),
    ("unknown_schedule_tuple", "FAILED_ScheduleSelectionInvalid"),
])
def test_ev_faults_get_the_named_code_and_a_clean_stop(test_pki20, fault, expected):
    ports = RigPorts(test_pki20, V2G)
    config = ev(payment=PaymentOption.Contract, credentials=credentials(test_pki20, True), faults=frozenset({fault}))
    run = run_pair(config, secc_config(), ports)
    check_responses(run)
    assert not run.result.ok and run.result.last_code == expected, run.result.reason
    assert run.last.close
    if run.effects(CloseContactor):
        assert run.effects(OpenContactor)
    if run.effects(StartTransaction):
        assert run.effects(StopTransaction)


def test_a_wrong_gen_challenge_is_refused_with_a_warning_and_the_ev_stops(test_pki20):
    config = ev(payment=PaymentOption.Contract, credentials=credentials(test_pki20, True), faults=frozenset({"wrong_gen_challenge"}))
    run = run_pair(config, secc_config(), RigPorts(test_pki20, V2G))
    assert not run.result.ok and run.result.reason == "authorization refused: WARNING_ChallengeInvalid"
    assert not run.effects(StartTransaction) and run.last.close and run.last.response.response_code is m.ResponseCode.OK


def test_an_ev_without_bpt_that_tries_to_discharge_gets_no_power_back():
    ports = RigPorts(None, V2G)
    run = run_pair(ev(service=EnergyService.DC, faults=frozenset({"discharge_without_bpt"})), secc_config(), ports)
    assert run.result.ok
    assert min(s.power_w for s in run.result.loop) < 0  # the EV asked ...
    assert min(e.current_a for e in run.effects(SetDcTarget)) >= 0  # ... the power electronics never gave
    assert ports.status.meter.discharged_energy_wh == 0


def test_an_ev_silent_in_the_loop_ends_with_timeout_and_open_contactors():
    run = run_pair(ev(faults=frozenset({"silent_in_loop"})), secc_config(timers=SeccTimers(sequence_timeout=5.0)), RigPorts(None, V2G))
    assert run.effects(StopTransaction)[-1].reason is StopReason.Timeout and run.effects(OpenContactor)


def test_a_connection_lost_mid_discharge_stops_the_current_opens_and_ends_the_transaction():
    def cut(run, step):
        if run.result.loop and run.result.loop[-1].power_w < 0:
            return "cut"
        return None

    ports = RigPorts(None, V2G)
    run = run_pair(ev(), secc_config(), ports, on_step=cut)
    assert not run.result.ok
    end = [type(e).__name__ for e in run.last.effects]
    assert end == ["SetDcTarget", "OpenContactor", "ReportChargingState", "StopTransaction"]
    assert run.effects(StopTransaction)[-1].reason is StopReason.EVDisconnected
    assert ports.status.present_current_a == 0.0


def test_a_csms_that_never_answers_gives_charge_only_limits():
    ports = RigPorts(None, RigBehaviour(delays={"GetChargingSchedule": float("inf")}))
    run = run_pair(ev(loop_messages=3), secc_config(timers=SeccTimers(ongoing_limit=3.0)), ports)
    assert run.result.ok
    (tup,) = run.result.schedule_tuples
    assert [from_rational(e.power) for e in tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry] == [0]
    assert all(s.power_w >= 0 for s in run.result.loop)


def test_no_minus_20_over_plain_tcp_unless_configured():
    run = run_pair(ev(), secc_config(), RigPorts(None), tls=False)
    assert not run.result.ok and "no common protocol" in run.result.reason
    from pnc_bridge.secc import Iso20Config

    run = run_pair(ev(loop_messages=2), secc_config(iso20=Iso20Config(without_tls=True)), RigPorts(None), tls=False)
    assert run.result.ok


def test_an_ac_only_charger_does_not_negotiate_minus_20_dc():
    run = run_pair(ev(service=EnergyService.DC), secc_config(energy_transfer_modes=(EnergyTransferMode.AC_three_phase_core,)),
                   RigPorts(None))
    assert not run.result.ok and "no common protocol" in run.result.reason


@pytest.fixture(scope="module")
def pki_ed448(tmp_path_factory):
    from pnc_bridge.pki import generate_test_pki

    return generate_test_pki(tmp_path_factory.mktemp("pki20ed448"), variant="iso20-ed448")


def test_plug_and_charge_with_an_ed448_contract(pki_ed448):
    ports = RigPorts(pki_ed448, V2G)
    run = run_pair(ev(payment=PaymentOption.Contract, credentials=credentials(pki_ed448, True), loop_messages=6), secc_config(), ports)
    assert run.result.ok and run.result.receipts >= 1, run.result.reason
    assert run.effects(StartTransaction)[0].emaid == pki_ed448.emaid


def test_ed448_contract_installation_is_refused_by_the_rigs_cps_and_the_ev_stops(pki_ed448):
    # the rig's -20 key transport covers P-521 only (hil/cps20.py): X448 gets WARNING_NoCertificateAvailable
    run = run_pair(ev(payment=PaymentOption.Contract, credentials=credentials(pki_ed448, False)), secc_config(), RigPorts(pki_ed448))
    assert not run.result.ok and run.result.reason == "CertificateInstallationRes: WARNING_NoCertificateAvailable"
    assert not run.effects(StartTransaction) and run.last.close
