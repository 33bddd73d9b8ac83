"""Every ISO 15118-2 handler and rule of the session core, driven request by request
(tests/secc/harness.py), with the rig's ports answering effects."""

from __future__ import annotations

import math

import pytest

from hil.secc_rig import RigBehaviour
from pnc_bridge import exi
from pnc_bridge.messages import iso2
from pnc_bridge.secc import EvseStatus, ResumeContext
from pnc_bridge.secc.effects import (
    AuthorizeExternalPayment,
    EffectFailed,
    EnergyTransferMode,
    GetChargingScheduleResult,
    OpenContactor,
    PaymentOption,
    ReportEvStatus,
    RequestEvCertificate,
    RequestEvCertificateResult,
    SetDcTarget,
    StopReason,
    StopTransaction,
)
from pnc_bridge.secc.iso2 import ALLOWED_CODES, EXPECTED, RESPONSE_OF, State
from pnc_bridge.secc.iso2._responses import NEGATIVE
from pnc_bridge.secc.iso2._state import diagram
from tests.secc.harness import Core, code, iso2_dc_to_loop, iso2_requests, pv2, res

R = iso2_requests()


def test_tables_cover_every_request_type():
    requests = {type(b) for b in R.values()}
    assert set(NEGATIVE) == requests == set(RESPONSE_OF)
    assert set(ALLOWED_CODES) == set(RESPONSE_OF.values())
    reachable = set().union(*EXPECTED.values())
    assert reachable == requests
    lines = diagram().splitlines()
    assert len(lines) == len(State) and lines[0] == "WAIT_FOR_SessionSetupReq: SessionSetupReq"


@pytest.mark.parametrize("name", sorted(R))
def test_negative_response_of_every_request_encodes(name):
    core = Core.iso2()
    body = R[name]
    for c in ("FAILED", "FAILED_SequenceError"):
        negative = NEGATIVE[type(body)](core.session._ctx, body, iso2.ResponseCode(c))
        assert type(negative) is RESPONSE_OF[type(body)]
        assert negative.response_code in ALLOWED_CODES[type(negative)]
        exi.encode("iso2", core.message(negative, bytes(8)))


@pytest.mark.parametrize("name", sorted(set(R) - {"SessionSetupReq"}))
def test_anything_before_session_setup_is_a_sequence_error(name):
    core = Core.iso2()
    step = core.send(R[name])
    assert type(res(step)) is RESPONSE_OF[type(R[name])]
    assert code(step) == "FAILED_SequenceError" and step.close and not step.effects


def test_session_setup_new_session():
    ids = iter([bytes(8), b"\x00" * 7 + b"\x05"])
    core = Core.iso2(random_bytes=lambda n: next(ids))
    step = core.send(R["SessionSetupReq"])
    assert code(step) == "OK_NewSessionEstablished"
    assert step.response.header.session_id == b"\x00" * 7 + b"\x05"  # an all-zero ID is never handed out
    assert res(step).evseid == "DE*PNC*E00001*1" and res(step).evse_time_stamp == 1_700_000_000 + 10
    assert core.session.state is State.WAIT_FOR_ServiceDiscoveryReq


def test_unknown_session_id():
    core = Core.iso2()
    core.send(R["SessionSetupReq"])
    step = core.send(R["ServiceDiscoveryReq"], session_id=b"\x01\x02")
    assert code(step) == "FAILED_UnknownSession" and step.close


def test_service_discovery_offers():
    core = Core.iso2(tls=True)
    core.send(R["SessionSetupReq"])
    body = res(core.send(R["ServiceDiscoveryReq"]))
    assert [p.value for p in body.payment_option_list.payment_option] == ["Contract", "ExternalPayment"]
    assert [e.value for e in body.charge_service.supported_energy_transfer_mode.energy_transfer_mode] == [
        "DC_extended", "AC_three_phase_core"]
    assert [(s.service_id, s.service_category.value) for s in body.service_list.service] == [(2, "ContractCertificate")]


def test_service_discovery_without_tls_has_no_plug_and_charge():
    core = Core.iso2(tls=False)
    core.send(R["SessionSetupReq"])
    body = res(core.send(R["ServiceDiscoveryReq"]))
    assert [p.value for p in body.payment_option_list.payment_option] == ["ExternalPayment"]
    assert body.service_list is None


def test_service_discovery_without_a_possible_payment_fails():
    core = Core.iso2(tls=False, payment_options=(PaymentOption.Contract,))
    core.send(R["SessionSetupReq"])
    assert code(core.send(R["ServiceDiscoveryReq"])) == "FAILED"


def test_service_category_filter():
    core = Core.iso2()
    core.send(R["SessionSetupReq"])
    body = res(core.send(iso2.ServiceDiscoveryReq(service_category=iso2.ServiceCategory.EVCharging)))
    assert body.service_list is None
    step = core.send(iso2.ServiceDetailReq(service_id=2))
    assert code(step) == "FAILED_ServiceIDInvalid"


def test_service_detail():
    core = Core.iso2()
    core.send(R["SessionSetupReq"])
    core.send(R["ServiceDiscoveryReq"])
    body = res(core.send(R["ServiceDetailReq"]))
    names = [(ps.parameter_set_id, ps.parameter[0].string_value) for ps in body.service_parameter_list.parameter_set]
    assert names == [(1, "Installation"), (2, "Update")]
    assert code(core.send(iso2.ServiceDetailReq(service_id=1))) == "OK"
    step = core.send(iso2.ServiceDetailReq(service_id=77))
    assert code(step) == "FAILED_ServiceIDInvalid" and step.close


@pytest.mark.parametrize("option,services,expected", [
    ("Contract", [1], "OK"),
    ("ExternalPayment", [1, 2], "OK"),
    ("ExternalPayment", [2], "FAILED_NoChargeServiceSelected"),
    ("ExternalPayment", [1, 9], "FAILED_ServiceSelectionInvalid"),
])
def test_payment_service_selection(option, services, expected):
    core = Core.iso2()
    core.send(R["SessionSetupReq"])
    core.send(R["ServiceDiscoveryReq"])
    req = iso2.PaymentServiceSelectionReq(
        selected_payment_option=iso2.PaymentOption(option),
        selected_service_list=iso2.SelectedServiceList(selected_service=[iso2.SelectedService(service_id=s) for s in services]))
    assert code(core.send(req)) == expected


def test_contract_not_offered_without_tls():
    core = Core.iso2(tls=False)
    core.send(R["SessionSetupReq"])
    core.send(R["ServiceDiscoveryReq"])
    req = iso2.PaymentServiceSelectionReq(
        selected_payment_option=iso2.PaymentOption.Contract,
        selected_service_list=iso2.SelectedServiceList(selected_service=[iso2.SelectedService(service_id=1)]))
    assert code(core.send(req)) == "FAILED_PaymentSelectionInvalid"


def test_external_payment_starts_authorization_early():
    core = Core.iso2()
    for name in ("SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"):
        step = core.send(R[name])
    assert [type(e) for e in step.effects] == [AuthorizeExternalPayment]
    assert res(core.send(R["AuthorizationReq"])).evse_processing is iso2.EVSEProcessing.Ongoing_WaitingForCustomerInteraction
    core.settle()
    assert res(core.send(R["AuthorizationReq"])).evse_processing is iso2.EVSEProcessing.Finished


def test_authorization_ongoing_limit():
    core = Core.iso2()
    for name in ("SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"):
        core.send(R[name])
    first = core.send(R["AuthorizationReq"])
    assert code(first) == "OK"
    step = core.send(R["AuthorizationReq"], advance=core.session._ctx.config.timers.ongoing_limit + 0.1)
    assert code(step) == "FAILED" and step.close


def _to_charge_parameter_discovery(core):
    for name in ("SessionSetupReq", "ServiceDiscoveryReq", "PaymentServiceSelectionReq"):
        core.send(R[name])
    core.settle()
    core.send(R["AuthorizationReq"])


def test_wrong_energy_transfer_mode():
    core = Core.iso2(energy_transfer_modes=(EnergyTransferMode.AC_three_phase_core,))
    _to_charge_parameter_discovery(core)
    assert code(core.send(R["ChargeParameterDiscoveryReq"])) == "FAILED_WrongEnergyTransferMode"


def test_wrong_charge_parameter():
    core = Core.iso2()
    _to_charge_parameter_discovery(core)
    req = iso2.ChargeParameterDiscoveryReq(
        requested_energy_transfer_mode=iso2.EnergyTransferMode.AC_three_phase_core,
        ev_charge_parameter=R["ChargeParameterDiscoveryReq"].ev_charge_parameter)
    assert code(core.send(req)) == "FAILED_WrongChargeParameter"


def test_charge_parameter_discovery_ongoing_then_finished_with_the_ev_needs():
    core = Core.iso2()
    _to_charge_parameter_discovery(core)
    first = core.send(R["ChargeParameterDiscoveryReq"])
    assert res(first).evse_processing is iso2.EVSEProcessing.Ongoing and res(first).sa_schedules is None
    (request,) = core.pending
    assert request.needs.max_current_a == 200 and request.needs.max_voltage_v == 450 and request.needs.soc == 50
    core.settle()
    done = res(core.send(R["ChargeParameterDiscoveryReq"]))
    assert done.evse_processing is iso2.EVSEProcessing.Finished
    assert [e.time_interval.start for e in done.sa_schedules.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry] == [0, 1800, 5400]
    assert core.session.state is State.WAIT_FOR_CableCheckReq


def test_schedule_never_comes_then_the_evse_limit_is_offered():
    core = Core.iso2(behaviour=RigBehaviour(delays={"GetChargingSchedule": math.inf}))
    _to_charge_parameter_discovery(core)
    core.send(R["ChargeParameterDiscoveryReq"])
    core.pending.clear()  # the port never answers
    step = core.send(R["ChargeParameterDiscoveryReq"], advance=core.session._ctx.config.timers.ongoing_limit + 0.1)
    assert res(step).evse_processing is iso2.EVSEProcessing.Finished
    (entry,) = res(step).sa_schedules.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert entry.p_max.value * 10 ** entry.p_max.multiplier == 150000


def test_cable_check_limit():
    core = Core.iso2(behaviour=RigBehaviour(delays={"StartCableCheck": math.inf}))
    _to_charge_parameter_discovery(core)
    core.send(R["ChargeParameterDiscoveryReq"])
    core.settle()
    core.send(R["ChargeParameterDiscoveryReq"])
    first = core.send(R["CableCheckReq"])
    assert res(first).dc_evse_status.evse_status_code is iso2.DC_EVSEStatusCode.EVSE_IsolationMonitoringActive
    core.pending.clear()
    step = core.send(R["CableCheckReq"], advance=core.session._ctx.config.timers.cable_check_limit + 0.1)
    assert code(step) == "FAILED" and step.close


def test_charge_loop_and_stop():
    core = Core.iso2()
    iso2_dc_to_loop(core)
    assert core.session.state is State.WAIT_FOR_CurrentDemandReq
    core.ports._set(present_voltage_v=399.5, present_current_a=99.0)
    body = res(core.send(R["CurrentDemandReq"]))
    assert body.evse_present_current.value * 10 ** body.evse_present_current.multiplier == pytest.approx(99.0)
    assert not body.evse_current_limit_achieved and body.evseid == "DE*PNC*E00001*1"
    assert body.receipt_required is None  # EIM: no metering receipts
    over = iso2.CurrentDemandReq(dc_ev_status=R["CurrentDemandReq"].dc_ev_status, ev_target_current=pv2(400, "A"),
                                 charging_complete=False, ev_target_voltage=pv2(400, "V"))
    body = res(core.send(over))
    assert body.evse_current_limit_achieved and body.evse_power_limit_achieved
    targets = core.effects(SetDcTarget)
    assert (targets[-1].voltage_v, targets[-1].current_a) == (400.0, 400.0)
    assert code(core.send(R["SessionStopReq"])) == "FAILED_SequenceError"  # not inside the loop


def test_soc_is_reported_when_it_changes():
    core = Core.iso2()
    iso2_dc_to_loop(core)
    before = len(core.effects(ReportEvStatus))
    core.send(R["CurrentDemandReq"])
    core.send(R["CurrentDemandReq"])
    changed = iso2.CurrentDemandReq(dc_ev_status=iso2.DC_EVStatus(ev_ready=True, ev_error_code=iso2.DC_EVErrorCode.NO_ERROR,
                                                                  evresssoc=51),
                                    ev_target_current=pv2(100, "A"), charging_complete=False, ev_target_voltage=pv2(400, "V"))
    core.send(changed)
    reports = core.effects(ReportEvStatus)[before:]
    assert [r.soc for r in reports] == [51]


def test_power_delivery_with_an_unknown_tuple():
    core = Core.iso2()
    _to_charge_parameter_discovery(core)
    core.send(R["ChargeParameterDiscoveryReq"])
    core.settle()
    core.send(R["ChargeParameterDiscoveryReq"])
    core.send(R["CableCheckReq"])
    core.settle()
    core.send(R["CableCheckReq"])
    core.send(R["PreChargeReq"])
    step = core.send(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Start, sa_schedule_tuple_id=9))
    assert code(step) == "FAILED_TariffSelectionInvalid"


@pytest.mark.parametrize("strict,expected", [(True, "FAILED_ChargingProfileInvalid"), (False, "OK")])
def test_charging_profile_above_pmax(strict, expected):
    core = Core.iso2(strict_charging_profile=strict, energy_transfer_modes=(EnergyTransferMode.AC_three_phase_core,))
    _to_charge_parameter_discovery(core)
    ac = iso2.ChargeParameterDiscoveryReq(
        requested_energy_transfer_mode=iso2.EnergyTransferMode.AC_three_phase_core,
        ev_charge_parameter=iso2.AC_EVChargeParameter(e_amount=pv2(20000, "Wh"), ev_max_voltage=pv2(400, "V"),
                                                      ev_max_current=pv2(32, "A"), ev_min_current=pv2(6, "A")))
    core.send(ac)
    core.settle()
    core.send(ac)
    profile = iso2.ChargingProfile(profile_entry=[iso2.ProfileEntry(charging_profile_entry_start=1800,
                                                                    charging_profile_entry_max_power=pv2(9000, "W"))])
    step = core.send(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Start, sa_schedule_tuple_id=1,
                                           charging_profile=profile))
    if step.response is None:
        step = core.settle()
    assert code(step) == expected


def test_renegotiate_outside_the_loop():
    core = Core.iso2()
    _to_charge_parameter_discovery(core)
    core.send(R["ChargeParameterDiscoveryReq"])
    core.settle()
    core.send(R["ChargeParameterDiscoveryReq"])
    core.send(R["CableCheckReq"])
    core.settle()
    core.send(R["CableCheckReq"])
    core.send(R["PreChargeReq"])
    step = core.send(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Renegotiate, sa_schedule_tuple_id=1))
    assert code(step) == "FAILED_SequenceError"


def test_stop_before_start_goes_to_session_stop():
    core = Core.iso2(energy_transfer_modes=(EnergyTransferMode.DC_extended,))
    iso2_dc_to_loop(core)
    step = core.send(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Stop, sa_schedule_tuple_id=1))
    assert step.response is None  # held until the contactors are open
    assert [type(e) for e in step.effects] == [SetDcTarget, OpenContactor]
    assert code(core.settle()) == "OK" and core.session.state is State.WAIT_FOR_WeldingDetectionReq
    assert code(core.send(R["WeldingDetectionReq"])) == "OK"
    stop = core.send(R["SessionStopReq"])
    assert code(stop) == "OK" and stop.close
    assert [s.reason for s in core.effects(StopTransaction)] == [StopReason.Local]


def test_a_request_while_a_response_is_held_is_a_sequence_error():
    core = Core.iso2()
    iso2_dc_to_loop(core)
    held = core.send(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Stop, sa_schedule_tuple_id=1))
    assert held.response is None
    step = core.send(R["CurrentDemandReq"])
    assert code(step) == "FAILED_SequenceError" and step.close
    assert core.effects(OpenContactor)


def test_held_response_deadline():
    core = Core.iso2(behaviour=RigBehaviour(delays={"OpenContactor": math.inf}))
    iso2_dc_to_loop(core)
    held = core.send(iso2.PowerDeliveryReq(charge_progress=iso2.ChargeProgress.Stop, sa_schedule_tuple_id=1))
    assert held.response is None
    deadline = core.session.deadline()
    assert deadline == pytest.approx(core.now + 5.0 - 0.5)  # V2G_EVCC_Msg_Timeout(PowerDeliveryReq) - margin
    step = core.tick_to_deadline()
    assert code(step) == "FAILED_ContactorError" and step.close


def test_late_and_unknown_results_are_dropped():
    core = Core.iso2()
    core.send(R["SessionSetupReq"])
    step = core.session.resolve(GetChargingScheduleResult(id=999), core.now)
    assert step.response is None and not step.close and not step.effects
    core = Core.iso2()
    iso2_dc_to_loop(core)
    core.session.stop_charging()
    body = res(core.send(R["CurrentDemandReq"]))
    assert body.dc_evse_status.evse_notification is iso2.EVSENotification.StopCharging


def test_sequence_timeout():
    core = Core.iso2()
    iso2_dc_to_loop(core)
    step = core.tick_to_deadline()
    assert step.close and step.response is None and step.reason == "no request within V2G_SECC_Sequence_Timeout"
    assert [s.reason for s in core.effects(StopTransaction)] == [StopReason.Timeout]
    assert core.effects(OpenContactor)
    assert core.session.deadline() is None
    assert core.send(R["CurrentDemandReq"]).close  # nothing more after the end


def test_decode_failure_and_connection_loss_stop_cleanly():
    for stop in ("decode_failed", "connection_lost"):
        core = Core.iso2()
        iso2_dc_to_loop(core)
        step = core.session.decode_failed("bad", core.now) if stop == "decode_failed" else core.session.connection_lost(core.now)
        core._take(step)
        assert step.close and step.response is None
        expected = StopReason.Other if stop == "decode_failed" else StopReason.EVDisconnected
        assert [s.reason for s in core.effects(StopTransaction)] == [expected]


def test_a_non_request_ends_the_session():
    core = Core.iso2()
    core.send(R["SessionSetupReq"])
    step = core.send(iso2.SessionStopRes(response_code=iso2.ResponseCode.OK))
    assert step.close and step.response is None


def test_metering_receipt_with_another_session_id():
    core = Core.iso2()
    iso2_dc_to_loop(core)
    core.session._ctx.receipt_due = None
    core.session._state = State.WAIT_FOR_MeteringReceiptReq
    step = core.send(iso2.MeteringReceiptReq(session_id=b"\x09" * 8, meter_info=iso2.MeterInfo(meter_id="M")))
    assert code(step) == "FAILED"


def test_certificate_installation_passes_the_csms_answer_through():
    core = Core.iso2()
    core.send(R["SessionSetupReq"])
    core.send(R["ServiceDiscoveryReq"])
    core.send(iso2.PaymentServiceSelectionReq(
        selected_payment_option=iso2.PaymentOption.Contract,
        selected_service_list=iso2.SelectedServiceList(selected_service=[iso2.SelectedService(service_id=1)])))
    held = core.send(R["CertificateInstallationReq"])
    (request,) = [e for e in held.effects if isinstance(e, RequestEvCertificate)]
    assert exi.decode("iso2", request.exi_request).body.body_element == R["CertificateInstallationReq"]
    failed = iso2.CertificateInstallationRes(
        response_code=iso2.ResponseCode.FAILED_NoCertificateAvailable,
        sa_provisioning_certificate_chain=iso2.CertificateChain(certificate=b""),
        contract_signature_cert_chain=iso2.CertificateChain(certificate=b""),
        contract_signature_encrypted_private_key=iso2.ContractSignatureEncryptedPrivateKey(id="ID2", value=b""),
        dh_publickey=iso2.DiffieHellmanPublickey(id="ID3", value=b""), e_maid=iso2.EMAID(id="ID4", value="ZZ00000000000Z"))
    payload = exi.encode("iso2", core.message(failed, b"\x01"))
    step = core.session.resolve(RequestEvCertificateResult(request.id, False, payload), core.now)
    assert code(step) == "FAILED_NoCertificateAvailable" and step.close
    assert step.response.header.session_id == core.session.session_id  # ours, not the CSMS's


@pytest.mark.parametrize("result", ["garbage", "wrong type", "failed"])
def test_certificate_installation_with_a_bad_csms_answer(result):
    core = Core.iso2()
    core.send(R["SessionSetupReq"])
    core.send(R["ServiceDiscoveryReq"])
    core.send(iso2.PaymentServiceSelectionReq(
        selected_payment_option=iso2.PaymentOption.Contract,
        selected_service_list=iso2.SelectedServiceList(selected_service=[iso2.SelectedService(service_id=1)])))
    held = core.send(R["CertificateInstallationReq"])
    (request,) = held.effects
    if result == "failed":
        answer = EffectFailed(request.id, "CSMS unreachable")
    else:
        payload = b"\x80\x01\x02" if result == "garbage" else exi.encode("iso2", core.message(iso2.SessionStopRes(response_code=iso2.ResponseCode.OK), b"\x01"))
        answer = RequestEvCertificateResult(request.id, True, payload)
    step = core.session.resolve(answer, core.now)
    assert code(step) == ("FAILED_NoCertificateAvailable" if result == "failed" else "FAILED") and step.close


def test_resume_needs_the_same_car():
    resume = ResumeContext(schema="iso2", session_id=b"\x11" * 8, evcc_id=bytes.fromhex("020000000001"),
                           payment=PaymentOption.ExternalPayment, energy_transfer_mode=None, sa_schedule_tuple_id=1,
                           emaid=None, authorized=True)
    core = Core.iso2(resume=resume)
    step = core.send(R["SessionSetupReq"], session_id=b"\x11" * 8)
    assert code(step) == "OK_OldSessionJoined" and step.response.header.session_id == b"\x11" * 8
    other = Core.iso2(resume=resume)
    step = other.send(iso2.SessionSetupReq(evccid=bytes(6)), session_id=b"\x11" * 8)
    assert code(step) == "OK_NewSessionEstablished"


def test_evse_status_goes_into_responses():
    core = Core.iso2()
    iso2_dc_to_loop(core)
    core.session.update_evse_status(EvseStatus(present_voltage_v=321.0, status_code="EVSE_Shutdown", max_power_w=50000))
    body = res(core.send(R["CurrentDemandReq"]))
    assert body.evse_present_voltage.value * 10 ** body.evse_present_voltage.multiplier == 321.0
    assert body.dc_evse_status.evse_status_code is iso2.DC_EVSEStatusCode.EVSE_Shutdown
    assert body.evse_maximum_power_limit.value * 10 ** body.evse_maximum_power_limit.multiplier == 50000
