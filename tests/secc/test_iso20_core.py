"""Every ISO 15118-20 handler and rule, driven request by request (harness20.Core20 checks each
response's type, code and EXI round trip). Fakes only at the ports (hil.secc_rig)."""

from __future__ import annotations

import dataclasses
import logging

import pytest

from hil.ev._core import EvCredentials
from hil.secc_rig import RigBehaviour, rig_evse_status, v2g_schedule
from pnc_bridge import exi, xmldsig
from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc import PowerSetpoint
from pnc_bridge.secc._common import Iso20Config, SeccTimers
from pnc_bridge.secc.effects import (
    AuthorizeExternalPayment,
    ChargingState,
    CloseContactor,
    ControlMode,
    EnergyService,
    EnergyTransferMode,
    GetChargingSchedule,
    OpenContactor,
    PaymentOption,
    ReportChargingState,
    ReportEvChargingSchedule,
    ReportEvStatus,
    RequestEvCertificate,
    SetDcTarget,
    StartTransaction,
    StopReason,
    StopTransaction,
    ValidateContractChain,
    VerifyAuthorizationSignature,
)
from pnc_bridge.secc.iso20 import EXPECTED as _E
from pnc_bridge.secc.iso20 import State
from pnc_bridge.secc.iso20._responses import NEGATIVE
from pnc_bridge.secc.iso20._state import diagram
from pnc_bridge.secc.schedule import ChargingSchedule, LimitUnit, SchedulePeriod, Tariff, TariffEntry, from_rational
from tests.secc.harness20 import (
    DYNAMIC,
    SCHEDULED,
    Core20,
    ac_cpd,
    ac_loop,
    authorization_eim,
    authorization_setup,
    cable_check,
    code,
    dc_cpd,
    dc_loop,
    header,
    metering_confirmation,
    one_of_each,
    power_delivery,
    pre_charge,
    schedule_exchange,
    service_detail,
    service_discovery,
    service_selection,
    session_setup,
    session_stop,
    set_id,
    to_state,
    welding,
)

DC, DC_BPT, AC, AC_BPT = EnergyService.DC, EnergyService.DC_BPT, EnergyService.AC, EnergyService.AC_BPT
V2G = RigBehaviour(schedules=(v2g_schedule(period_s=100, charge_w=11000, discharge_w=7000),))


def f(r) -> float:
    return from_rational(r)


# --------------------------------------------------------------------------- #
# Tables                                                                       #
# --------------------------------------------------------------------------- #


def test_every_request_type_has_a_handler_a_state_and_a_minimal_negative_response():
    core = Core20.make()
    requests = one_of_each()
    assert set(NEGATIVE) == {type(r) for r in requests.values()}
    assert set().union(*_E.values()) == set(NEGATIVE)
    for request in requests.values():
        body = NEGATIVE[type(request)](core.ctx, request, m.ResponseCode.FAILED)
        schema = "iso20-dc" if type(body).__name__.startswith("DC_") else "iso20-ac" if type(body).__name__.startswith("AC_") else "iso20-common"
        assert exi.decode(schema, exi.encode(schema, body)) == body


def test_the_state_diagram_in_the_docs_is_derived_from_the_table():
    from tests.conftest import REPO

    doc = (REPO / "docs" / "secc.md").read_text()
    assert diagram() in doc


# --------------------------------------------------------------------------- #
# Setup, sequence, session                                                     #
# --------------------------------------------------------------------------- #


def test_session_setup_gives_a_new_session_id_and_the_evse_id():
    core = Core20.make()
    step = core.send(session_setup("WMIV1234567890ABCDEX"))
    assert code(step) == "OK_NewSessionEstablished"
    assert step.response.evseid == core.ctx.config.evse_id
    assert len(core.session.session_id) == 8 and any(core.session.session_id)
    assert step.response.header.time_stamp == int(1_700_000_000.0 + core.now)
    assert core.session.state is State.WAIT_FOR_AuthorizationSetupReq


@pytest.mark.parametrize("name", ["AuthorizationReq", "ServiceDiscoveryReq", "DC_ChargeLoopReq", "PowerDeliveryReq"])
def test_a_request_out_of_sequence_is_FAILED_SequenceError_and_ends_the_session(name):
    core = Core20.make()
    core.send(session_setup())
    step = core.send(one_of_each()[name])
    assert code(step) == "FAILED_SequenceError" and step.close
    assert core.session.state is State.STOPPED


def test_an_ac_request_in_a_dc_session_is_a_sequence_error():
    core = Core20.make(dc=True)
    to_state(core, State.WAIT_FOR_ChargeParameterDiscoveryReq, DC)
    assert code(core.send(ac_cpd(False))) == "FAILED_SequenceError"


def test_a_foreign_session_id_is_FAILED_UnknownSession():
    core = Core20.make()
    core.send(session_setup())
    step = core.send(authorization_setup(), session_id=bytes(range(8)))
    assert code(step) == "FAILED_UnknownSession" and step.close


def test_request_before_session_setup_is_a_sequence_error():
    core = Core20.make()
    assert code(core.send(authorization_setup(), session_id=bytes(8))) == "FAILED_SequenceError"


def test_silence_ends_the_session_after_the_sequence_timeout_with_StopTransaction_Timeout():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ServiceDiscoveryReq, DC)
    step = core.tick_to_deadline()
    assert step.close and "V2G_SECC_Sequence_Timeout" in step.reason
    assert core.effects(StopTransaction)[-1].reason is StopReason.Timeout


# --------------------------------------------------------------------------- #
# Authorization                                                                #
# --------------------------------------------------------------------------- #


def test_authorization_setup_offers_pnc_with_a_challenge_on_tls_and_eim():
    core = Core20.make(tls=True)
    core.send(session_setup())
    res = core.send(authorization_setup()).response
    assert res.authorization_services == [m.Authorization.PnC, m.Authorization.EIM]
    assert res.certificate_installation_service is True
    assert len(res.pnc_asres_authorization_mode.gen_challenge) == 16 and res.eim_asres_authorization_mode is None


def test_authorization_setup_without_tls_offers_eim_only():
    core = Core20.make(tls=False)
    core.send(session_setup())
    res = core.send(authorization_setup()).response
    assert res.authorization_services == [m.Authorization.EIM] and res.certificate_installation_service is False
    assert res.eim_asres_authorization_mode is not None and res.pnc_asres_authorization_mode is None


def test_no_authorization_service_possible_is_FAILED():
    core = Core20.make(tls=False, payment_options=(PaymentOption.Contract,))
    core.send(session_setup())
    step = core.send(authorization_setup())
    assert code(step) == "FAILED" and step.close


def test_eim_waits_for_the_customer_then_finishes_and_starts_the_transaction():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_AuthorizationReq, DC)
    first = core.send(authorization_eim()).response
    assert first.evse_processing is m.Processing.Ongoing_WaitingForCustomerInteraction
    assert [type(e) for e in core.pending] == [AuthorizeExternalPayment]
    core.settle()
    done = core.send(authorization_eim()).response
    assert done.evse_processing is m.Processing.Finished and done.response_code is m.ResponseCode.OK
    start = core.effects(StartTransaction)[-1]
    assert start.protocol == "iso20" and start.evcc_id == "PNCBRIDGETEST01" and start.payment is PaymentOption.ExternalPayment
    assert core.session.state is State.WAIT_FOR_ServiceDiscoveryReq


def test_eim_refused_is_a_warning_and_the_ev_may_try_again_or_stop():
    core = Core20.make(behaviour=RigBehaviour(eim_accept=False))
    to_state(core, State.WAIT_FOR_AuthorizationReq, DC)
    core.send(authorization_eim())
    core.settle()
    step = core.send(authorization_eim())
    assert code(step) == "WARNING_EIMAuthorizationFailure" and step.response.evse_processing is m.Processing.Finished
    assert not step.close and core.session.state is State.WAIT_FOR_AuthorizationReq
    # a new try asks again, then the EV stops; no transaction was started
    core.send(authorization_eim())
    assert len(core.effects(AuthorizeExternalPayment)) == 2
    assert code(core.send(session_stop())) == "OK"
    assert not core.effects(StartTransaction) and not core.effects(StopTransaction)


def test_eim_without_answer_fails_at_the_ongoing_limit():
    core = Core20.make(timers=SeccTimers(ongoing_limit=3.0))
    to_state(core, State.WAIT_FOR_AuthorizationReq, DC)
    core.pending.clear()  # the customer never shows up
    core.send(authorization_eim())
    step = core.send(authorization_eim(), advance=3.5)
    assert code(step) == "FAILED" and step.close


def test_an_authorization_service_not_offered_is_WARNING_AuthorizationSelectionInvalid():
    core = Core20.make(tls=False)
    to_state(core, State.WAIT_FOR_AuthorizationReq, DC)
    req = m.AuthorizationReq(header=header(), selected_authorization_service=m.Authorization.PnC,
                             pnc_areq_authorization_mode=m.PnC_AReqAuthorizationMode(
                                 id="ID1", gen_challenge=bytes(16), contract_certificate_chain=m.ContractCertificateChain(
                                     certificate=b"\x30\x00", sub_certificates=m.SubCertificates(certificate=[b"\x30\x00"]))))
    step = core.send(req)
    assert code(step) == "WARNING_AuthorizationSelectionInvalid" and not step.close


# --------------------------------------------------------------------------- Plug & Charge


def _pnc_request(core: Core20, pki, *, challenge: bytes | None = None, sign: bool = True, key=None):
    creds = EvCredentials.from_test_pki(pki, with_contract=True)
    from cryptography.hazmat.primitives.serialization import Encoding

    leaf, *subs = creds.contract_chain
    req = m.AuthorizationReq(
        header=header(core.session.session_id), selected_authorization_service=m.Authorization.PnC,
        pnc_areq_authorization_mode=m.PnC_AReqAuthorizationMode(
            id="ID1", gen_challenge=challenge if challenge is not None else core.ctx.gen_challenge,
            contract_certificate_chain=m.ContractCertificateChain(
                certificate=leaf.public_bytes(Encoding.DER),
                sub_certificates=m.SubCertificates(certificate=[c.public_bytes(Encoding.DER) for c in subs]))))
    return xmldsig.sign_authorization_req(req, key or creds.contract_key) if sign else req


def _to_pnc_authorization(test_pki20, **kw) -> Core20:
    core = Core20.make(pki=test_pki20, **kw)
    core.send(session_setup())
    core.send(authorization_setup())
    return core


def test_pnc_checks_signature_chain_and_csms_in_parallel_then_finishes(test_pki20):
    core = _to_pnc_authorization(test_pki20)
    first = core.send(_pnc_request(core, test_pki20))
    assert first.response.evse_processing is m.Processing.Ongoing
    kinds = [type(e) for e in core.pending]
    assert kinds[:2] == [VerifyAuthorizationSignature, ValidateContractChain]
    signature = core.pending[0]
    assert signature.schema == "iso20-common" and signature.certificate == core.ctx.contract_leaf
    assert core.pending[1].emaid == test_pki20.emaid  # from the contract certificate's CN
    core.settle()
    done = core.send(_pnc_request(core, test_pki20))
    assert code(done) == "OK" and done.response.evse_processing is m.Processing.Finished
    start = core.effects(StartTransaction)[-1]
    assert start.payment is PaymentOption.Contract and start.emaid == test_pki20.emaid


def test_pnc_with_another_gen_challenge_is_WARNING_ChallengeInvalid(test_pki20):
    core = _to_pnc_authorization(test_pki20)
    step = core.send(_pnc_request(core, test_pki20, challenge=bytes(16)))
    assert code(step) == "WARNING_ChallengeInvalid" and not step.close and not core.pending


def test_pnc_unsigned_is_FAILED_SignatureError(test_pki20):
    core = _to_pnc_authorization(test_pki20)
    step = core.send(_pnc_request(core, test_pki20, sign=False))
    assert code(step) == "FAILED_SignatureError" and step.close


def test_pnc_signed_with_another_key_is_FAILED_SignatureError_and_deauthorized(test_pki20):
    core = _to_pnc_authorization(test_pki20)
    core.send(_pnc_request(core, test_pki20, key=test_pki20.key("oem_prov_leaf")))
    step = core.settle()
    step = core.send(_pnc_request(core, test_pki20, key=test_pki20.key("oem_prov_leaf")))
    assert code(step) == "FAILED_SignatureError" and step.close


def test_pnc_contract_from_an_unknown_mo_root_is_WARNING_CertificateValidationError(test_pki20):
    core = Core20.make(pki=test_pki20)
    core.ports.mo_roots = [test_pki20.v2g_root]  # the MO root is not trusted here
    core.send(session_setup())
    core.send(authorization_setup())
    core.send(_pnc_request(core, test_pki20))
    core.settle()
    step = core.send(_pnc_request(core, test_pki20))
    assert code(step) == "WARNING_CertificateValidationError" and not step.close
    assert core.session.state is State.WAIT_FOR_AuthorizationReq
    # the EV falls back to EIM in the same session
    core.send(authorization_eim())
    core.settle()
    assert code(core.send(authorization_eim())) == "OK"


@pytest.mark.parametrize("status,certificate,expected", [
    ("Invalid", None, "WARNING_GeneralPnCAuthorizationError"),
    ("Accepted", "CertificateRevoked", "WARNING_CertificateRevoked"),
    ("Accepted", "ContractCancelled", "WARNING_GeneralPnCAuthorizationError"),
    ("Accepted", "SignatureError", "FAILED_SignatureError"),
])
def test_pnc_refused_by_the_csms_gives_the_mapped_code(test_pki20, status, certificate, expected):
    core = Core20.make(pki=test_pki20, behaviour=RigBehaviour(csms_status=status, csms_certificate_status=certificate))
    core.send(session_setup())
    core.send(authorization_setup())
    core.send(_pnc_request(core, test_pki20))
    core.settle()
    step = core.send(_pnc_request(core, test_pki20))
    assert code(step) == expected
    assert step.close == expected.startswith("FAILED")


def test_certificate_installation_is_passed_on_with_the_evs_own_bytes(test_pki20):
    core = _to_pnc_authorization(test_pki20)
    creds = EvCredentials.from_test_pki(test_pki20, with_contract=False)
    from hil.ev._core20 import Ev20Config, Ev20Session

    ev = Ev20Session(Ev20Config(payment=PaymentOption.Contract, credentials=creds), now=0.0, unix_time=1_700_000_000.0)
    ev._session_id = core.session.session_id
    req = ev._certificate_installation()
    raw = exi.encode("iso20-common", req)
    held = core.send(req, raw=raw)
    assert held.response is None  # held until the CSMS answers
    effect = core.pending[0]
    assert isinstance(effect, RequestEvCertificate) and effect.exi_request == raw
    assert effect.schema_version == "urn:iso:std:iso:15118:-20:CommonMessages"
    step = core.settle()
    res = step.response
    assert code(step) == "OK" and res.header.session_id == core.session.session_id
    assert res.header.signature is not None
    assert xmldsig.verify_certificate_installation_res(res).valid  # the CPS signature survived the SECC
    assert core.session.state is State.WAIT_FOR_AuthorizationReq


def test_certificate_installation_answers_ongoing_when_the_csms_is_slower_than_the_ev(test_pki20):
    core = _to_pnc_authorization(test_pki20)
    req = one_of_each()["CertificateInstallationReq"]
    core.send(req, raw=b"\x80")
    step = core.tick_to_deadline()
    assert step.response.evse_processing is m.Processing.Ongoing and code(step) == "OK" and not step.close
    core.settle()  # the CSMS answers meanwhile; the EV asks again
    again = core.send(req, raw=b"\x80")
    assert again.response.evse_processing is m.Processing.Finished


def test_certificate_installation_without_a_cps_is_WARNING_NoCertificateAvailable():
    core = Core20.make(pki=None)
    core.send(session_setup())
    core.send(authorization_setup())
    core.send(one_of_each()["CertificateInstallationReq"], raw=b"\x80")
    step = core.settle()
    assert code(step) == "WARNING_NoCertificateAvailable" and not step.close


def test_certificate_installation_when_not_offered_is_FAILED():
    core = Core20.make(tls=False)
    to_state(core, State.WAIT_FOR_AuthorizationReq, DC)
    step = core.send(one_of_each()["CertificateInstallationReq"])
    assert code(step) == "FAILED" and step.close


# --------------------------------------------------------------------------- #
# Services                                                                     #
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dc,ids", [(True, [2, 6]), (False, [1, 5])])
def test_service_discovery_offers_the_families_services(dc, ids):
    core = Core20.make(dc=dc)
    to_state(core, State.WAIT_FOR_ServiceDiscoveryReq, DC if dc else AC)
    res = core.send(service_discovery()).response
    assert [s.service_id for s in res.energy_transfer_service_list.service] == ids
    assert res.service_renegotiation_supported is True and res.vas_list is None


def test_service_discovery_keeps_to_the_evs_supported_services_and_fails_without_one_in_common():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ServiceDiscoveryReq, DC)
    res = core.send(service_discovery([6])).response
    assert [s.service_id for s in res.energy_transfer_service_list.service] == [6]
    other = Core20.make()
    to_state(other, State.WAIT_FOR_ServiceDiscoveryReq, DC)
    step = other.send(service_discovery([1, 3]))
    assert code(step) == "FAILED" and step.close


def test_service_detail_lists_a_parameter_set_per_control_mode_and_pricing():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ServiceSelectionReq, DC_BPT)
    from pnc_bridge.secc.iso20 import read_parameter_set

    sets = [read_parameter_set(p) for p in core.send(service_detail(6)).response.service_parameter_list.parameter_set]
    assert [(s["ControlMode"], s["Pricing"]) for s in sets] == [(1, 0), (1, 2), (2, 0)]
    assert all(s["Connector"] == 2 and s["BPTChannel"] == 1 and s["GeneratorMode"] == 1 for s in sets)
    ac = Core20.make(dc=False)
    to_state(ac, State.WAIT_FOR_ServiceSelectionReq, AC)
    assert read_parameter_set(ac.send(service_detail(1)).response.service_parameter_list.parameter_set[0])["EVSENominalVoltage"] == 230


def test_service_detail_of_a_service_not_offered_is_FAILED_ServiceIDInvalid():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ServiceSelectionReq, DC)
    step = core.send(service_detail(1))
    assert code(step) == "FAILED_ServiceIDInvalid" and step.close


def test_service_selection_of_a_pair_not_offered_and_of_a_vas():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ServiceSelectionReq, DC)
    assert code(core.send(service_selection(DC, 9))) == "FAILED_NoEnergyTransferServiceSelected"
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ServiceSelectionReq, DC)
    vas = [m.SelectedService(service_id=65, parameter_set_id=1)]
    assert code(core.send(service_selection(DC, 1, vas))) == "FAILED_ServiceSelectionInvalid"


# --------------------------------------------------------------------------- #
# Charge parameters and schedules                                              #
# --------------------------------------------------------------------------- #


def test_dc_bpt_charge_parameters_give_the_evse_limits_both_ways():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ChargeParameterDiscoveryReq, DC_BPT)
    res = core.send(dc_cpd(True)).response.dc_cpd_res_energy_transfer_mode
    assert isinstance(res, m.BPT_DC_CPDResEnergyTransferMode)
    s = rig_evse_status()
    assert f(res.evse_maximum_charge_power) == s.max_power_w and f(res.evse_maximum_discharge_power) == s.max_discharge_power_w
    assert f(res.evse_maximum_discharge_current) == s.max_discharge_current_a
    assert core.ctx.ev_limits.max_discharge_w == 20000 and core.ctx.ev_limits.max_discharge_a == 50


@pytest.mark.parametrize("service,bpt_request", [(DC, True), (DC_BPT, False)])
def test_charge_parameters_that_do_not_fit_the_service_are_FAILED_WrongChargeParameter(service, bpt_request):
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ChargeParameterDiscoveryReq, service)
    step = core.send(dc_cpd(bpt_request))
    assert code(step) == "FAILED_WrongChargeParameter" and step.close


def test_ac_bpt_charge_parameters_sum_the_phases():
    core = Core20.make(dc=False)
    to_state(core, State.WAIT_FOR_ChargeParameterDiscoveryReq, AC_BPT)
    req = ac_cpd(True)
    mode = dataclasses.replace(req.ac_cpd_req_energy_transfer_mode, ev_maximum_charge_power=m.RationalNumber(exponent=0, value=3700),
                               ev_maximum_charge_power_l2=m.RationalNumber(exponent=0, value=3700),
                               ev_maximum_charge_power_l3=m.RationalNumber(exponent=0, value=3600))
    res = core.send(dataclasses.replace(req, ac_cpd_req_energy_transfer_mode=mode)).response
    assert isinstance(res.ac_cpd_res_energy_transfer_mode, m.BPT_AC_CPDResEnergyTransferMode)
    assert core.ctx.ev_limits.max_charge_w == 11000


def _scheduled_exchange(service=DC_BPT, behaviour=V2G, control_mode=SCHEDULED, **kw):
    core = Core20.make(dc=service.is_dc, behaviour=behaviour, **kw)
    to_state(core, State.WAIT_FOR_ScheduleExchangeReq, service, control_mode)
    first = core.send(schedule_exchange(control_mode, bpt=service.is_bpt))
    core.settle()
    return core, first, core.send(schedule_exchange(control_mode, bpt=service.is_bpt))


def test_schedule_exchange_asks_for_schedules_with_the_v2x_needs_and_sends_charge_and_discharge_schedules():
    core, first, done = _scheduled_exchange()
    assert first.response.evse_processing is m.Processing.Ongoing
    assert first.response.scheduled_se_res_control_mode.schedule_tuple  # the XSD wants one even while Ongoing
    needs = core.effects(GetChargingSchedule)[0].needs
    assert needs.service is DC_BPT and needs.control_mode is ControlMode.ScheduledControl
    assert needs.energy_transfer_mode is EnergyTransferMode.DC_extended and needs.max_entries == 1024
    v2x = needs.v2x
    # OCPP 2.1 V2XChargingParametersType: maxima min(EV, EVSE), minima max(EV, EVSE), magnitudes
    assert v2x.max_charge_power == 100000 and v2x.max_discharge_power == 20000 and v2x.max_discharge_current == 50
    assert v2x.max_charge_current == 200 and v2x.max_voltage == 450 and v2x.min_voltage == 200
    assert v2x.ev_target_energy_request == 30000 and v2x.target_soc == 80 and needs.departure_time == 7200
    res = done.response
    assert res.evse_processing is m.Processing.Finished
    (tup,) = res.scheduled_se_res_control_mode.schedule_tuple
    charge = [f(e.power) for e in tup.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry]
    discharge = [f(e.power) for e in tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry]
    assert charge == [11000, 0, 11000] and discharge == [0, -7000, 0]
    assert core.session.state is State.WAIT_FOR_CableCheckReq


def test_dynamic_needs_carry_the_v2x_energy_requests():
    core, _, done = _scheduled_exchange(control_mode=DYNAMIC)
    needs = core.effects(GetChargingSchedule)[0].needs
    assert needs.control_mode is ControlMode.DynamicControl and needs.min_soc == 20
    assert needs.v2x.ev_min_v2x_energy_request == -10000 and needs.v2x.ev_max_v2x_energy_request == 40000
    assert done.response.dynamic_se_res_control_mode is not None


def test_discharge_for_an_ev_without_bpt_becomes_periods_without_power(caplog):
    with caplog.at_level(logging.WARNING, "pnc_bridge.secc"):
        core, _, done = _scheduled_exchange(service=DC)
    (tup,) = done.response.scheduled_se_res_control_mode.schedule_tuple
    assert tup.discharging_schedule is None
    assert [f(e.power) for e in tup.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry] == [11000, 0, 11000]
    assert "has no BPT" in caplog.text


def test_the_schedule_control_mode_must_be_the_selected_one():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_ScheduleExchangeReq, DC, SCHEDULED)
    step = core.send(schedule_exchange(DYNAMIC))
    assert code(step) == "FAILED_WrongChargeParameter" and step.close


def test_a_silent_csms_gives_the_evses_own_limits_at_the_ongoing_limit():
    core = Core20.make(timers=SeccTimers(ongoing_limit=2.0))
    to_state(core, State.WAIT_FOR_ScheduleExchangeReq, DC_BPT)
    core.send(schedule_exchange(SCHEDULED))
    core.pending.clear()
    step = core.send(schedule_exchange(SCHEDULED), advance=2.5)
    (tup,) = step.response.scheduled_se_res_control_mode.schedule_tuple
    assert step.response.evse_processing is m.Processing.Finished
    assert [f(e.power) for e in tup.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry] == [150000]
    # without a CSMS schedule the EV may not discharge
    assert [f(e.power) for e in tup.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry] == [0]


def test_price_levels_go_out_only_with_the_pricing_parameter_set():
    tariff = Tariff(7, (TariffEntry(0, price_level=1), TariffEntry(600, price_level=3)), num_price_levels=4)
    schedules = (ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 11000),), tariff=tariff),)
    core = Core20.make(behaviour=RigBehaviour(schedules=schedules))
    to_state(core, State.WAIT_FOR_ServiceSelectionReq, DC)
    core.send(service_selection(DC, set_id(DC, SCHEDULED, pricing=2)))
    core.send(dc_cpd(False))
    core.send(schedule_exchange(SCHEDULED))
    core.settle()
    (tup,) = core.send(schedule_exchange(SCHEDULED)).response.scheduled_se_res_control_mode.schedule_tuple
    levels = tup.charging_schedule.price_level_schedule
    assert levels.number_of_price_levels == 4
    assert [(e.duration, e.price_level) for e in levels.price_level_schedule_entries.price_level_schedule_entry] == [(600, 1), (6600, 3)]
    _, _, done = _scheduled_exchange(service=DC, behaviour=RigBehaviour(schedules=schedules))
    assert done.response.scheduled_se_res_control_mode.schedule_tuple[0].charging_schedule.price_level_schedule is None


# --------------------------------------------------------------------------- #
# DC preparation and power delivery                                            #
# --------------------------------------------------------------------------- #


def test_cable_check_is_ongoing_until_the_isolation_result():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_CableCheckReq, DC)
    assert core.send(cable_check()).response.evse_processing is m.Processing.Ongoing
    core.settle()
    assert core.send(cable_check()).response.evse_processing is m.Processing.Finished
    assert core.session.state is State.WAIT_FOR_PreChargeReq


def test_an_isolation_fault_is_FAILED():
    from pnc_bridge.secc.effects import Isolation

    core = Core20.make(behaviour=RigBehaviour(isolation=Isolation.Fault))
    to_state(core, State.WAIT_FOR_CableCheckReq, DC)
    core.send(cable_check())
    core.settle()
    assert code(core.send(cable_check())) == "FAILED"


def test_pre_charge_sets_the_dc_target_and_reports_the_present_voltage():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_PreChargeReq, DC)
    step = core.send(pre_charge(380.0))
    assert core.effects(SetDcTarget)[-1] == SetDcTarget(core.effects(SetDcTarget)[-1].id, 380.0, 2.0)
    assert f(core.send(pre_charge(380.0)).response.evse_present_voltage) == 380.0
    assert step.response.response_code is m.ResponseCode.OK and core.session.state is State.WAIT_FOR_PowerDeliveryReq


def test_power_delivery_start_closes_the_contactors_reports_the_profile_and_enters_the_loop():
    core = Core20.make(behaviour=V2G)
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC_BPT)
    held = core.send(power_delivery(tuple_id=1, entries=[(100, 11000), (100, -5000), (7000, 11000)]))
    assert held.response is None and isinstance(core.pending[0], CloseContactor)
    step = core.settle()
    assert code(step) == "OK" and core.session.state is State.WAIT_FOR_ChargeLoopReq
    report = core.effects(ReportEvChargingSchedule)[-1]
    assert report.sa_schedule_tuple_id == 1 and [(e.start, e.max_power_w) for e in report.entries] == [(0, 11000), (100, -5000), (200, 11000)]
    assert core.effects(ReportChargingState)[-1].state is ChargingState.Charging


def test_power_delivery_while_the_ev_is_still_processing_changes_nothing():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC)
    step = core.send(power_delivery(processing=m.Processing.Ongoing))
    assert code(step) == "OK" and not core.pending and core.session.state is State.WAIT_FOR_PowerDeliveryReq


def test_a_schedule_tuple_not_offered_is_FAILED_ScheduleSelectionInvalid():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC)
    step = core.send(power_delivery(tuple_id=99))
    assert code(step) == "FAILED_ScheduleSelectionInvalid" and step.close


def test_a_profile_that_discharges_beyond_the_offered_discharge_is_FAILED_EVPowerProfileInvalid():
    core = Core20.make(behaviour=V2G)
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC_BPT)
    step = core.send(power_delivery(tuple_id=1, entries=[(100, 11000), (100, -9000)]))
    assert code(step) == "FAILED_EVPowerProfileInvalid" and step.close
    assert "9000 W at 100 s, 7000 W allowed" in step.reason


def test_a_profile_that_discharges_in_a_session_without_bpt_is_FAILED_EVPowerProfileInvalid():
    core = Core20.make(behaviour=V2G)
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC)
    step = core.send(power_delivery(tuple_id=1, entries=[(100, -1000)]))
    assert code(step) == "FAILED_EVPowerProfileInvalid" and "without BPT" in step.reason


def test_charging_a_little_over_the_limit_is_logged_unless_strict(caplog):
    core = Core20.make(behaviour=V2G)
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC_BPT)
    with caplog.at_level(logging.WARNING, "pnc_bridge.secc"):
        core.send(power_delivery(tuple_id=1, entries=[(100, 11500)]))
    assert code(core.settle()) == "OK" and "over the offered" in caplog.text
    strict = Core20.make(behaviour=V2G, strict_charging_profile=True)
    to_state(strict, State.WAIT_FOR_PowerDeliveryReq, DC_BPT)
    assert code(strict.send(power_delivery(tuple_id=1, entries=[(100, 11500)]))) == "FAILED_EVPowerProfileInvalid"


def test_contactors_that_do_not_close_are_FAILED_ContactorError_and_opened():
    core = Core20.make(behaviour=RigBehaviour(contactor_ok=False))
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC)
    core.send(power_delivery())
    step = core.settle()
    assert code(step) == "FAILED_ContactorError" and step.close
    assert core.effects(OpenContactor)


def test_contactors_that_do_not_answer_are_FAILED_PowerDeliveryNotApplied_before_the_evs_timeout():
    core = Core20.make(behaviour=RigBehaviour(delays={"CloseContactor": 100.0}))
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC)
    core.send(power_delivery())
    core.pending.clear()
    sent = core.now
    step = core.tick_to_deadline()
    assert code(step) == "FAILED_PowerDeliveryNotApplied"
    assert core.now - sent < 2.0  # the EV waits V2G_EVCC_Msg_Timeout (2 s) for PowerDeliveryRes


def _loop(service=DC_BPT, control_mode=SCHEDULED, behaviour=V2G, entries=None, **kw) -> Core20:
    core = Core20.make(dc=service.is_dc, behaviour=behaviour, **kw)
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, service, control_mode)
    core.send(power_delivery(tuple_id=1 if control_mode is SCHEDULED else None, entries=entries, dynamic=control_mode is DYNAMIC))
    core.settle()
    assert core.session.state is State.WAIT_FOR_ChargeLoopReq
    return core


def test_standby_pauses_the_power_and_start_resumes_it():
    core = _loop()
    core.send(dc_loop(SCHEDULED, True, current=25))
    assert code(core.send(power_delivery(m.ChargeProgress.Standby))) == "OK"
    assert core.effects(SetDcTarget)[-1].current_a == 0.0
    core.send(dc_loop(SCHEDULED, True, current=25))
    assert core.effects(SetDcTarget)[-1].current_a == 0.0  # standby: no power whatever the EV asks
    assert code(core.send(power_delivery(tuple_id=1))) == "OK"
    core.send(dc_loop(SCHEDULED, True, current=25))
    assert core.effects(SetDcTarget)[-1].current_a == 25.0


def test_standby_not_allowed_is_a_warning_and_charging_goes_on():
    core = _loop(iso20=Iso20Config(standby_allowed=False))
    step = core.send(power_delivery(m.ChargeProgress.Standby))
    assert code(step) == "WARNING_StandbyNotAllowed" and not step.close
    assert core.session.state is State.WAIT_FOR_ChargeLoopReq


def test_power_delivery_stop_opens_the_contactors_and_welding_detection_follows():
    core = _loop()
    core.send(dc_loop(SCHEDULED, True, current=25))
    core.send(power_delivery(m.ChargeProgress.Stop))
    step = core.settle()
    assert code(step) == "OK" and core.session.state is State.WAIT_FOR_WeldingDetectionReq
    sets = core.effects(SetDcTarget)
    assert (sets[-1].voltage_v, sets[-1].current_a) == (0.0, 0.0)
    assert core.effects(ReportChargingState)[-1].state is ChargingState.EVConnected
    assert code(core.send(welding())) == "OK"
    step = core.send(session_stop())
    assert step.close and core.effects(StopTransaction)[-1].reason is StopReason.Local


def test_ac_stop_goes_to_session_stop():
    core = _loop(service=AC)
    core.send(power_delivery(m.ChargeProgress.Stop))
    core.settle()
    assert core.session.state is State.WAIT_FOR_SessionStopReq


# --------------------------------------------------------------------------- #
# The charge loops                                                             #
# --------------------------------------------------------------------------- #


def test_scheduled_dc_bpt_follows_the_evs_target_both_ways():
    core = _loop()
    res = core.send(dc_loop(SCHEDULED, True, current=25, soc=51)).response
    assert core.effects(SetDcTarget)[-1].current_a == 25.0 and not res.evse_current_limit_achieved
    assert isinstance(res.cl_res_control_mode, m.BPT_Scheduled_DC_CLResControlMode)
    assert core.effects(ReportEvStatus)[-1].soc == 51
    core.now += 100  # the schedule's discharging period: up to 7 kW back
    res = core.send(dc_loop(SCHEDULED, True, current=-15)).response
    assert core.effects(SetDcTarget)[-1].current_a == -15.0 and not res.evse_power_limit_achieved


def test_scheduled_dc_discharge_beyond_the_limits_is_held_at_them_with_the_limit_flags():
    core = _loop()
    core.now += 100
    res = core.send(dc_loop(SCHEDULED, True, current=-40)).response  # 16 kW asked, 7 kW allowed
    assert core.effects(SetDcTarget)[-1].current_a == pytest.approx(-7000 / 400)
    assert res.evse_power_limit_achieved
    status = dataclasses.replace(rig_evse_status(), max_discharge_current_a=10.0)
    core.session.update_evse_status(status)
    res = core.send(dc_loop(SCHEDULED, True, current=-40)).response
    assert core.effects(SetDcTarget)[-1].current_a == -10.0 and res.evse_current_limit_achieved


def test_scheduled_dc_may_not_discharge_while_the_schedule_charges():
    core = _loop()
    res = core.send(dc_loop(SCHEDULED, True, current=-10)).response
    assert core.effects(SetDcTarget)[-1].current_a == 0.0 and res.evse_power_limit_achieved


def test_a_negative_target_without_bpt_is_held_at_zero():
    core = _loop(service=DC)
    res = core.send(dc_loop(SCHEDULED, False, current=-10)).response
    assert core.effects(SetDcTarget)[-1].current_a == 0.0 and res.evse_current_limit_achieved


def test_a_charge_loop_request_of_the_other_control_mode_is_FAILED():
    core = _loop(control_mode=SCHEDULED)
    step = core.send(dc_loop(DYNAMIC, True))
    assert code(step) == "FAILED" and step.close


def _dyn_target(res) -> float:
    mode = res.cl_res_control_mode
    charge = f(mode.evse_maximum_charge_power)
    return charge if charge > 0 else -f(mode.evse_maximum_discharge_power)


def test_dynamic_dc_bpt_sends_the_schedules_setpoints():
    behaviour = RigBehaviour(schedules=(v2g_schedule(period_s=100, setpoints=True),))
    core = _loop(control_mode=DYNAMIC, behaviour=behaviour)
    assert _dyn_target(core.send(dc_loop(DYNAMIC, True)).response) == 11000
    assert core.effects(SetDcTarget)[-1].current_a == pytest.approx(11000 / 400)
    core.now += 100
    assert _dyn_target(core.send(dc_loop(DYNAMIC, True)).response) == -7000
    assert core.effects(SetDcTarget)[-1].current_a == pytest.approx(-7000 / 400)
    core.now += 100
    assert _dyn_target(core.send(dc_loop(DYNAMIC, True)).response) == 11000


def test_a_pushed_setpoint_reaches_the_next_charge_loop_response_without_an_effect():
    core = _loop(control_mode=DYNAMIC)
    core.send(dc_loop(DYNAMIC, True))
    core.push_setpoint(PowerSetpoint(-5000))
    pending_before = list(core.pending)
    res = core.send(dc_loop(DYNAMIC, True)).response
    assert _dyn_target(res) == -5000 and core.pending == pending_before  # no round trip on the loop's path
    assert f(res.cl_res_control_mode.evse_maximum_charge_power) == 0


def test_a_setpoint_outside_the_evs_range_is_clamped_and_logged(caplog):
    core = _loop(control_mode=DYNAMIC)
    core.push_setpoint(PowerSetpoint(-60000))  # the EV gives back 20 kW at most
    with caplog.at_level(logging.WARNING, "pnc_bridge.secc"):
        res = core.send(dc_loop(DYNAMIC, True)).response
    assert _dyn_target(res) == -20000 and res.evse_power_limit_achieved
    assert "setpoint -60000 W is outside [-20000" in caplog.text
    core.push_setpoint(PowerSetpoint(500000))  # the schedule's 11 kW charging limit holds it
    assert _dyn_target(core.send(dc_loop(DYNAMIC, True)).response) == 11000


def test_a_setpoint_expires_and_the_schedule_applies_again():
    core = _loop(control_mode=DYNAMIC, timers=SeccTimers(setpoint_validity=5.0))
    core.push_setpoint(PowerSetpoint(-3000))
    assert _dyn_target(core.send(dc_loop(DYNAMIC, True)).response) == -3000
    core.now += 6
    assert _dyn_target(core.send(dc_loop(DYNAMIC, True)).response) == 11000  # the schedule's charging limit
    core.push_setpoint(PowerSetpoint(-3000))
    core.push_setpoint(None)
    assert _dyn_target(core.send(dc_loop(DYNAMIC, True)).response) == 11000


def test_a_setpoint_for_an_ev_without_bpt_never_discharges():
    core = _loop(service=DC, control_mode=DYNAMIC)
    core.push_setpoint(PowerSetpoint(-5000))
    res = core.send(dc_loop(DYNAMIC, False)).response
    assert isinstance(res.cl_res_control_mode, m.Dynamic_DC_CLResControlMode) and f(res.cl_res_control_mode.evse_maximum_charge_power) == 0


def test_dynamic_ac_bpt_sends_the_target_active_power():
    core = _loop(service=AC_BPT, control_mode=DYNAMIC)
    core.push_setpoint(PowerSetpoint(-4000))
    res = core.send(ac_loop(DYNAMIC, True)).response
    assert isinstance(res.cl_res_control_mode, m.BPT_Dynamic_AC_CLResControlMode)
    assert f(res.cl_res_control_mode.evse_target_active_power) == -4000
    core.push_setpoint(PowerSetpoint(-9000))  # the EV gives back 7 kW at most
    assert f(core.send(ac_loop(DYNAMIC, True)).response.cl_res_control_mode.evse_target_active_power) == -7000


def test_scheduled_ac_reports_the_present_power():
    core = _loop(service=AC)
    res = core.send(ac_loop(SCHEDULED, False, present=7000)).response
    assert isinstance(res.cl_res_control_mode, m.Scheduled_AC_CLResControlMode)
    assert res.cl_res_control_mode.evse_target_active_power is None


def test_the_evse_asks_for_renegotiation_or_a_stop_in_the_loop():
    core = _loop()
    core.session.renegotiate()
    res = core.send(dc_loop(SCHEDULED, True, current=10)).response
    assert res.evse_status.evse_notification is m.EvseNotification.ScheduleRenegotiation
    assert code(core.send(power_delivery(m.ChargeProgress.ScheduleRenegotiation))) == "OK"
    assert core.session.state is State.WAIT_FOR_ScheduleExchangeReq
    core.send(schedule_exchange(SCHEDULED, bpt=True))
    core.settle()
    core.send(schedule_exchange(SCHEDULED, bpt=True))
    assert core.session.state is State.WAIT_FOR_PowerDeliveryReq  # no cable check after a renegotiation
    assert core.effects(GetChargingSchedule)[-1].renegotiation is True
    assert code(core.send(power_delivery(tuple_id=1))) == "OK" and not core.pending  # contactors still closed
    core.session.stop_charging()
    assert core.send(dc_loop(SCHEDULED, True)).response.evse_status.evse_notification is m.EvseNotification.Terminate


def test_schedule_renegotiation_outside_the_loop_is_a_sequence_error():
    core = Core20.make()
    to_state(core, State.WAIT_FOR_PowerDeliveryReq, DC)
    assert code(core.send(power_delivery(m.ChargeProgress.ScheduleRenegotiation))) == "FAILED_SequenceError"


def test_the_loop_carries_imported_and_exported_energy_when_asked():
    core = _loop()
    req = dataclasses.replace(dc_loop(SCHEDULED, True, current=10), meter_info_requested=True)
    info = core.send(req).response.meter_info
    assert info.meter_id == "RIG-METER-1" and info.bpt_discharged_energy_reading_wh == 0


# --------------------------------------------------------------------------- #
# Metering confirmation                                                        #
# --------------------------------------------------------------------------- #


def _pnc_loop(test_pki20, **kw) -> Core20:
    core = Core20.make(pki=test_pki20, behaviour=V2G, **kw)
    core.send(session_setup())
    core.send(authorization_setup())
    core.send(_pnc_request(core, test_pki20))
    core.settle()
    core.send(_pnc_request(core, test_pki20))
    for request in (service_discovery(), service_selection(DC_BPT, 1), dc_cpd(True), schedule_exchange(SCHEDULED)):
        core.send(request)
        core.settle()
    core.send(schedule_exchange(SCHEDULED))
    core.send(cable_check())
    core.settle()
    core.send(cable_check())
    core.send(pre_charge())
    core.send(power_delivery(tuple_id=1))
    core.settle()
    assert core.session.state is State.WAIT_FOR_ChargeLoopReq
    return core


def _signed_metering(core: Core20, pki, info, session_id=None):
    req = metering_confirmation(session_id or core.session.session_id, info)
    req = dataclasses.replace(req, header=header(core.session.session_id))
    return xmldsig.sign_metering_receipt_req(req, EvCredentials.from_test_pki(pki, with_contract=True).contract_key)


def test_plug_and_charge_asks_for_metering_confirmation_and_checks_its_signature(test_pki20):
    core = _pnc_loop(test_pki20)
    res = core.send(dc_loop(SCHEDULED, True, current=10)).response
    assert res.evse_status.evse_notification is m.EvseNotification.MeteringConfirmation and res.meter_info is not None
    assert core.send(dc_loop(SCHEDULED, True, current=10)).response.evse_status is None  # once, then every interval
    core.send(_signed_metering(core, test_pki20, res.meter_info))
    step = core.settle()
    assert code(step) == "OK" and core.ctx.received_receipts == 1


def test_a_bad_metering_signature_is_FAILED_MeteringSignatureNotValid(test_pki20):
    core = _pnc_loop(test_pki20)
    info = core.send(dc_loop(SCHEDULED, True, current=10)).response.meter_info
    signed = _signed_metering(core, test_pki20, info)
    value = bytearray(signed.header.signature.signature_value.value)
    value[3] ^= 1
    signed.header.signature.signature_value.value = bytes(value)
    core.send(signed)
    step = core.settle()
    assert code(step) == "FAILED_MeteringSignatureNotValid" and step.close


def test_metering_data_of_another_session_is_FAILED(test_pki20):
    core = _pnc_loop(test_pki20)
    info = core.send(dc_loop(SCHEDULED, True, current=10)).response.meter_info
    step = core.send(_signed_metering(core, test_pki20, info, session_id=bytes(range(8))))
    assert code(step) == "FAILED"


# --------------------------------------------------------------------------- #
# Session stop, pause, resume, service renegotiation                           #
# --------------------------------------------------------------------------- #


def test_pause_leaves_a_resume_context_and_the_same_ev_joins_its_session():
    core = _loop()
    core.send(power_delivery(m.ChargeProgress.Stop))
    core.settle()
    core.send(welding())
    step = core.send(session_stop(m.ChargingSession.Pause))
    assert step.close and step.resume is not None and step.resume.schema == "iso20"
    assert not core.effects(StopTransaction)
    assert core.effects(ReportChargingState)[-1].state is ChargingState.SuspendedEV
    again = Core20.make(resume=step.resume)
    joined = again.send(session_setup(), session_id=step.resume.session_id)
    assert code(joined) == "OK_OldSessionJoined" and again.session.session_id == step.resume.session_id
    other = Core20.make(resume=step.resume)
    assert code(other.send(session_setup("ANOTHEREV"), session_id=step.resume.session_id)) == "OK_NewSessionEstablished"


def test_pause_not_allowed_is_FAILED_PauseNotAllowed():
    core = Core20.make(iso20=Iso20Config(pause_allowed=False))
    to_state(core, State.WAIT_FOR_ServiceDiscoveryReq, DC)
    assert code(core.send(session_stop(m.ChargingSession.Pause))) == "FAILED_PauseNotAllowed"


def test_service_renegotiation_leads_back_to_service_discovery_in_the_same_transaction():
    core = _loop(service=AC)
    core.send(power_delivery(m.ChargeProgress.Stop))
    core.settle()
    step = core.send(session_stop(m.ChargingSession.ServiceRenegotiation))
    assert code(step) == "OK" and not step.close and core.session.state is State.WAIT_FOR_ServiceDiscoveryReq
    assert not core.effects(StopTransaction)
    core.send(service_discovery())
    core.send(service_selection(AC_BPT, 1))
    assert core.session.state is State.WAIT_FOR_ChargeParameterDiscoveryReq


def test_service_renegotiation_not_supported_is_FAILED_NoServiceRenegotiationSupported():
    core = Core20.make(iso20=Iso20Config(service_renegotiation=False))
    to_state(core, State.WAIT_FOR_ServiceDiscoveryReq, DC)
    assert code(core.send(session_stop(m.ChargingSession.ServiceRenegotiation))) == "FAILED_NoServiceRenegotiationSupported"


def test_session_stop_is_not_accepted_inside_the_charge_loop():
    core = _loop()
    assert code(core.send(session_stop())) == "FAILED_SequenceError"


def test_connection_lost_mid_discharge_zeroes_the_target_opens_and_ends_the_transaction():
    core = _loop()
    core.now += 100
    core.send(dc_loop(SCHEDULED, True, current=-15))
    step = core.session.connection_lost(core.now)
    kinds = [type(e) for e in step.effects]
    assert kinds == [SetDcTarget, OpenContactor, ReportChargingState, StopTransaction]
    assert step.effects[0].current_a == 0.0 and step.effects[-1].reason is StopReason.EVDisconnected
