"""ISO 15118-2 request handlers: one pure function per request type.

Rules of this module:

- ``handler(ctx, request, now) -> Reply | Hold``. Sequence and SessionID were checked before
  a handler runs; a handler checks the request's content and answers with the response code
  ISO 15118-2 names for what is wrong (every FAILED ends the session).
- Effects are started with ``ctx.request(purpose, ...)``, which starts each purpose once,
  so a handler re-run after a result (held responses) does not repeat them.
- Requests whose response has ``EVSEProcessing`` (Authorization, ChargeParameterDiscovery,
  CableCheck) are answered at once, ``Ongoing`` while their effect is pending, until the
  Ongoing limit. The others (PaymentDetails, Certificate*, PowerDelivery, MeteringReceipt)
  hold the response until the effect's result, at most until shortly before the EV's
  message timeout.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pnc_bridge import exi
from pnc_bridge.messages import iso2 as m
from pnc_bridge.secc._common import ResumeContext
from pnc_bridge.secc._core import Context, Hold, Reply
from pnc_bridge.secc._helpers import authorized as _authorized
from pnc_bridge.secc._helpers import dc_target as _dc_target
from pnc_bridge.secc._helpers import ev_status as _ev_status
from pnc_bridge.secc._helpers import value as _value
from pnc_bridge.secc.effects import (
    CSMS_CERTIFICATE_STATUS_CODE,
    AuthorizeExternalPayment,
    AuthorizeExternalPaymentResult,
    AuthorizeWithCsms,
    AuthorizeWithCsmsResult,
    CertificateAction,
    ChargingState,
    CloseContactor,
    CloseContactorResult,
    EnergyTransferMode,
    EvChargingNeeds,
    GetChargingSchedule,
    GetChargingScheduleResult,
    Isolation,
    OpenContactor,
    OpenContactorResult,
    PaymentOption,
    ProfileEntry,
    ReportChargingState,
    ReportEvChargingSchedule,
    RequestEvCertificate,
    RequestEvCertificateResult,
    StartCableCheck,
    StartCableCheckResult,
    StopReason,
    ValidateContractChain,
    ValidateContractChainResult,
    VerifyAuthorizationSignature,
    VerifyAuthorizationSignatureResult,
    VerifyMeteringReceiptSignature,
    VerifyMeteringReceiptSignatureResult,
)
from pnc_bridge.secc.iso2._responses import (
    NEGATIVE,
    ac_evse_charge_parameter,
    ac_evse_status,
    dc_evse_charge_parameter,
    dc_evse_status,
    meter_info,
    pv,
)
from pnc_bridge.secc.iso2._state import State
from pnc_bridge.secc.schedule import to_iso2_sa_schedule_list

__all__ = ["HANDLERS"]

_OK = m.ResponseCode.OK
#: ServiceIDs as Josev, EVerest and RISE V2G number them: 1 = the charge service,
#: 2 = the ContractCertificate service (Installation / Update parameter sets)
CHARGE_SERVICE_ID = 1
CERTIFICATE_SERVICE_ID = 2


def _fail(ctx: Context, req: Any, code: str, reason: str, stop: StopReason = StopReason.Other) -> Reply:
    return Reply(NEGATIVE[type(req)](ctx, req, m.ResponseCode(code)), State.STOPPED, close=True,
                 reason=f"{code}: {reason}", stop_reason=stop)


def _timeout(ctx: Context, name: str) -> float:
    return ctx.config.timers.msg_timeouts_iso2.get(name, 2.0)


# --------------------------------------------------------------------------- #
# Communication setup                                                          #
# --------------------------------------------------------------------------- #


def session_setup(ctx: Context, req: m.SessionSetupReq, now: float) -> Reply:
    resume = ctx.resume
    if resume is not None and ctx.request_session_id == resume.session_id and req.evccid == resume.evcc_id:
        # the EV resumes its paused session with the same SessionID
        ctx.session_id = resume.session_id
        ctx.resumed = True
        ctx.emaid = resume.emaid
        ctx.sa_schedule_tuple_id = resume.sa_schedule_tuple_id
        ctx.transaction_started = resume.authorized
        code = m.ResponseCode.OK_OldSessionJoined
    else:
        session_id = ctx.config.random_bytes(8)
        while not any(session_id):
            session_id = ctx.config.random_bytes(8)
        ctx.session_id = session_id
        code = m.ResponseCode.OK_NewSessionEstablished
    ctx.evcc_id = req.evccid
    ctx.resume = None
    return Reply(
        m.SessionSetupRes(response_code=code, evseid=ctx.config.evse_id, evse_time_stamp=ctx.unix_time(now)),
        State.WAIT_FOR_ServiceDiscoveryReq,
    )


def _offered_payment(ctx: Context) -> tuple[PaymentOption, ...]:
    return tuple(p for p in ctx.config.payment_options if p is not PaymentOption.Contract or ctx.tls)


def service_discovery(ctx: Context, req: m.ServiceDiscoveryReq, now: float) -> Reply:
    offered = _offered_payment(ctx)
    if not offered:
        return _fail(ctx, req, "FAILED", "no payment option is possible on this connection (Plug & Charge needs TLS)")
    ctx.offered_payment = offered
    services: list[m.Service] = []
    if PaymentOption.Contract in offered and ctx.config.certificate_installation:
        services.append(
            m.Service(service_id=CERTIFICATE_SERVICE_ID, service_category=m.ServiceCategory.ContractCertificate, free_service=True)
        )
    if req.service_category is not None:
        services = [s for s in services if s.service_category is req.service_category]
    ctx.offered_service_ids = (CHARGE_SERVICE_ID,) + tuple(s.service_id for s in services)
    return Reply(
        m.ServiceDiscoveryRes(
            response_code=_OK,
            payment_option_list=m.PaymentOptionList(payment_option=[m.PaymentOption(p.value) for p in offered]),
            charge_service=m.ChargeService(
                service_id=CHARGE_SERVICE_ID,
                service_category=m.ServiceCategory.EVCharging,
                free_service=ctx.config.free_service,
                supported_energy_transfer_mode=m.SupportedEnergyTransferMode(
                    energy_transfer_mode=[m.EnergyTransferMode(e.value) for e in ctx.config.energy_transfer_modes]
                ),
            ),
            service_list=m.ServiceList(service=services) if services else None,
        ),
        State.WAIT_FOR_PaymentServiceSelectionReq,
    )


def service_detail(ctx: Context, req: m.ServiceDetailReq, now: float) -> Reply:
    if req.service_id not in ctx.offered_service_ids:
        return _fail(ctx, req, "FAILED_ServiceIDInvalid", f"ServiceID {req.service_id} was not offered")
    parameters = None
    if req.service_id == CERTIFICATE_SERVICE_ID:
        parameters = m.ServiceParameterList(
            parameter_set=[
                m.ParameterSet(parameter_set_id=1, parameter=[m.Parameter(name="Service", string_value="Installation")]),
                m.ParameterSet(parameter_set_id=2, parameter=[m.Parameter(name="Service", string_value="Update")]),
            ]
        )
    return Reply(m.ServiceDetailRes(response_code=_OK, service_id=req.service_id, service_parameter_list=parameters))


def payment_service_selection(ctx: Context, req: m.PaymentServiceSelectionReq, now: float) -> Reply:
    option = PaymentOption(req.selected_payment_option.value)
    if option not in ctx.offered_payment:
        return _fail(ctx, req, "FAILED_PaymentSelectionInvalid", f"{option.value} was not offered")
    selected = req.selected_service_list.selected_service
    if not any(s.service_id == CHARGE_SERVICE_ID for s in selected):
        return _fail(ctx, req, "FAILED_NoChargeServiceSelected", "the charge service was not selected")
    for s in selected:
        if s.service_id not in ctx.offered_service_ids:
            return _fail(ctx, req, "FAILED_ServiceSelectionInvalid", f"ServiceID {s.service_id} was not offered")
        if s.service_id == CERTIFICATE_SERVICE_ID and s.parameter_set_id not in (None, 1, 2):
            return _fail(ctx, req, "FAILED_ServiceSelectionInvalid", f"ParameterSetID {s.parameter_set_id} of ServiceID 2")
    ctx.payment = option
    if option is PaymentOption.ExternalPayment:
        if not (ctx.resumed and ctx.transaction_started):
            # start now: by the time AuthorizationReq comes the answer may be there
            ctx.request("eim", AuthorizeExternalPayment, evcc_id=ctx.evcc_id.hex())
        return Reply(m.PaymentServiceSelectionRes(response_code=_OK), State.WAIT_FOR_AuthorizationReq)
    return Reply(m.PaymentServiceSelectionRes(response_code=_OK), State.WAIT_FOR_PaymentDetailsReq)


# --------------------------------------------------------------------------- #
# Plug & Charge                                                                #
# --------------------------------------------------------------------------- #


def _certificate(ctx: Context, req: Any, now: float, action: CertificateAction, res_type: type) -> Reply | Hold:
    name = type(req).__name__
    if "certificate" not in ctx.ids:
        exi_request = ctx.request_raw
        if exi_request is None:
            try:
                exi_request = exi.encode("iso2", ctx.request_message)
            except exi.ExiEncodeError as exc:
                return _fail(ctx, req, "FAILED", f"{name} cannot be passed on: {exc}")
        ctx.request("certificate", RequestEvCertificate, action=action, exi_request=exi_request)
    result = ctx.result("certificate")
    if result is None:
        return Hold(ctx.hold_deadline(_timeout(ctx, name)), _fail(ctx, req, "FAILED", "the CSMS did not answer in time"))
    ctx.restart("certificate")
    response = None
    if isinstance(result, RequestEvCertificateResult) and result.exi_response:
        try:
            response = exi.decode("iso2", result.exi_response, strict=False)
        except exi.ExiDecodeError as exc:
            ctx.log.warning("CSMS sent an undecodable %s: %s", res_type.__name__, exc)
    body = getattr(getattr(response, "body", None), "body_element", None)
    if not isinstance(body, res_type):
        accepted = isinstance(result, RequestEvCertificateResult) and result.accepted
        reason = getattr(result, "reason", "") or f"no {res_type.__name__} from the CSMS"
        return _fail(ctx, req, "FAILED" if accepted else "FAILED_NoCertificateAvailable", reason)
    if body.response_code.value.startswith("FAILED"):
        return Reply(body, State.STOPPED, close=True, reason=f"{body.response_code.value}: from the CSMS",
                     signature=response.header.signature)
    return Reply(body, State.WAIT_FOR_PaymentDetailsReq, signature=response.header.signature)


def certificate_installation(ctx: Context, req: m.CertificateInstallationReq, now: float) -> Reply | Hold:
    return _certificate(ctx, req, now, CertificateAction.Install, m.CertificateInstallationRes)


def certificate_update(ctx: Context, req: m.CertificateUpdateReq, now: float) -> Reply | Hold:
    return _certificate(ctx, req, now, CertificateAction.Update, m.CertificateUpdateRes)


def payment_details(ctx: Context, req: m.PaymentDetailsReq, now: float) -> Reply | Hold:
    chain = req.contract_signature_cert_chain
    leaf = chain.certificate
    sub_cas = tuple(chain.sub_certificates.certificate) if chain.sub_certificates else ()
    if not leaf:
        return _fail(ctx, req, "FAILED_CertChainError", "no contract certificate", StopReason.DeAuthorized)
    ctx.emaid, ctx.contract_leaf, ctx.contract_sub_cas = req.e_maid, leaf, sub_cas
    ctx.request("contract", ValidateContractChain, leaf=leaf, sub_cas=sub_cas, emaid=req.e_maid)
    # OCPP Authorize starts now, in parallel, so its answer can be there by AuthorizationReq
    ctx.request("csms_auth", AuthorizeWithCsms, emaid=req.e_maid, contract_chain=(leaf,) + sub_cas)
    verdict = ctx.result("contract")
    if verdict is None:
        return Hold(
            ctx.hold_deadline(_timeout(ctx, "PaymentDetailsReq")),
            _fail(ctx, req, "FAILED", "contract chain validation did not finish in time"),
        )
    if not isinstance(verdict, ValidateContractChainResult):
        return _fail(ctx, req, "FAILED", f"contract chain validation failed: {getattr(verdict, 'reason', '')}")
    if verdict.response_code is not None:
        code = verdict.response_code if verdict.response_code in m.ResponseCode.__members__ else "FAILED_CertChainError"
        return _fail(ctx, req, code, verdict.reason or "contract chain refused", StopReason.DeAuthorized)
    ctx.gen_challenge = ctx.config.random_bytes(16)
    return Reply(
        m.PaymentDetailsRes(response_code=_OK, gen_challenge=ctx.gen_challenge, evse_time_stamp=ctx.unix_time(now)),
        State.WAIT_FOR_AuthorizationReq,
    )


def _signed_element_present(message: Any, body: Any) -> bool:
    signature = message.header.signature
    if signature is None or body.id is None:
        return False
    return any((r.uri or "").lstrip("#") == body.id for r in signature.signed_info.reference)


def authorization(ctx: Context, req: m.AuthorizationReq, now: float) -> Reply:
    limit = ctx.config.timers.ongoing_limit
    if ctx.payment is PaymentOption.ExternalPayment:
        if ctx.authorized or (ctx.resumed and ctx.transaction_started and "eim" not in ctx.ids):
            if not ctx.authorized:
                _authorized(ctx)
            return Reply(m.AuthorizationRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished),
                         State.WAIT_FOR_ChargeParameterDiscoveryReq)
        ctx.request("eim", AuthorizeExternalPayment, evcc_id=ctx.evcc_id.hex())
        result = ctx.result("eim")
        if result is None:
            if ctx.ongoing_expired("eim", now, limit):
                return _fail(ctx, req, "FAILED", "no authorization (EIM) within the Ongoing limit", StopReason.DeAuthorized)
            # [V2G2-854] (as Josev and EVerest quote it): EIM pending -> waiting for the customer
            return Reply(m.AuthorizationRes(response_code=_OK,
                                            evse_processing=m.EVSEProcessing.Ongoing_WaitingForCustomerInteraction))
        if not (isinstance(result, AuthorizeExternalPaymentResult) and result.accepted):
            return _fail(ctx, req, "FAILED", f"authorization refused: {getattr(result, 'reason', '')}", StopReason.DeAuthorized)
        _authorized(ctx)
        return Reply(m.AuthorizationRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished),
                     State.WAIT_FOR_ChargeParameterDiscoveryReq)

    # Contract (Plug & Charge)
    first = "signature" not in ctx.ids
    if first or req.gen_challenge is not None:
        # [V2G2-475] (as Josev and EVerest quote it): GenChallenge equals the one of PaymentDetailsRes
        if ctx.gen_challenge is None or req.gen_challenge != ctx.gen_challenge:
            return _fail(ctx, req, "FAILED_ChallengeInvalid", "GenChallenge differs from PaymentDetailsRes", StopReason.DeAuthorized)
    if first:
        if not _signed_element_present(ctx.request_message, req):
            return _fail(ctx, req, "FAILED_SignatureError", "AuthorizationReq is not signed", StopReason.DeAuthorized)
        ctx.request("signature", VerifyAuthorizationSignature, schema="iso2", message=ctx.request_message,
                    certificate=ctx.contract_leaf or b"")
    signature = ctx.result("signature")
    if signature is not None and not (isinstance(signature, VerifyAuthorizationSignatureResult) and signature.valid):
        return _fail(ctx, req, "FAILED_SignatureError", getattr(signature, "reason", "") or "bad signature",
                     StopReason.DeAuthorized)
    auth = ctx.result("csms_auth")
    if auth is not None:
        if not isinstance(auth, AuthorizeWithCsmsResult):
            return _fail(ctx, req, "FAILED", f"CSMS authorization failed: {getattr(auth, 'reason', '')}", StopReason.DeAuthorized)
        if auth.certificate_status not in (None, "Accepted"):
            code = CSMS_CERTIFICATE_STATUS_CODE.get(auth.certificate_status, "FAILED")
            return _fail(ctx, req, code, f"CSMS: certificate {auth.certificate_status}", StopReason.DeAuthorized)
        if auth.status != "Accepted":
            return _fail(ctx, req, "FAILED", f"CSMS: authorization {auth.status}", StopReason.DeAuthorized)
    if signature is not None and auth is not None:
        _authorized(ctx)
        return Reply(m.AuthorizationRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished),
                     State.WAIT_FOR_ChargeParameterDiscoveryReq)
    if ctx.ongoing_expired("authorization", now, limit):
        waiting = "the CSMS" if auth is None else "the signature check"
        return _fail(ctx, req, "FAILED", f"{waiting} did not answer within the Ongoing limit", StopReason.DeAuthorized)
    return Reply(m.AuthorizationRes(response_code=_OK, evse_processing=m.EVSEProcessing.Ongoing))


# --------------------------------------------------------------------------- #
# Charge parameters and schedules                                              #
# --------------------------------------------------------------------------- #


def _needs(req: m.ChargeParameterDiscoveryReq, mode: EnergyTransferMode) -> EvChargingNeeds:
    p = req.ev_charge_parameter
    if isinstance(p, m.AC_EVChargeParameter):
        return EvChargingNeeds(
            energy_transfer_mode=mode, departure_time=p.departure_time, max_entries=req.max_entries_sa_schedule_tuple,
            energy_request_wh=_value(p.e_amount), max_current_a=_value(p.ev_max_current),
            min_current_a=_value(p.ev_min_current), max_voltage_v=_value(p.ev_max_voltage),
        )
    assert isinstance(p, m.DC_EVChargeParameter)
    return EvChargingNeeds(
        energy_transfer_mode=mode, departure_time=p.departure_time, max_entries=req.max_entries_sa_schedule_tuple,
        energy_request_wh=_value(p.ev_energy_request), energy_capacity_wh=_value(p.ev_energy_capacity),
        max_current_a=_value(p.ev_maximum_current_limit), max_voltage_v=_value(p.ev_maximum_voltage_limit),
        max_power_w=_value(p.ev_maximum_power_limit), soc=p.dc_ev_status.evresssoc, full_soc=p.full_soc,
        bulk_soc=p.bulk_soc,
    )


def _sa_schedule_list(ctx: Context, result: Any) -> m.SAScheduleList:
    status, mode, needs = ctx.status, ctx.energy_mode, ctx.needs
    assert mode is not None and needs is not None
    if mode.is_dc:
        voltage = min(needs.max_voltage_v or status.max_voltage_v, status.max_voltage_v)
        phases, fallback = 1, status.max_power_w
    else:
        voltage, phases = status.nominal_voltage_v, mode.phases
        fallback = min(status.max_power_w, status.max_current_a * status.nominal_voltage_v * phases)
    schedules = list(result.schedules) if isinstance(result, GetChargingScheduleResult) else []
    resumed_tuple = ctx.resumed and ctx.sa_schedules is None and ctx.sa_schedule_tuple_id is not None
    if resumed_tuple and schedules and all(s.id != ctx.sa_schedule_tuple_id for s in schedules):
        # resumed session: the tuple the EV chose before keeps its ID ([V2G2-741] as Josev quotes it)
        schedules[0] = replace(schedules[0], id=ctx.sa_schedule_tuple_id)
    return to_iso2_sa_schedule_list(
        schedules, max_entries=needs.max_entries, departure_time=needs.departure_time, voltage_v=voltage,
        phases=phases, fallback_power_w=fallback,
    )


def charge_parameter_discovery(ctx: Context, req: m.ChargeParameterDiscoveryReq, now: float) -> Reply:
    try:
        mode = EnergyTransferMode(req.requested_energy_transfer_mode.value)
    except ValueError:  # pragma: no cover - the enumerations are the same
        return _fail(ctx, req, "FAILED_WrongEnergyTransferMode", "unknown energy transfer mode")
    if mode not in ctx.config.energy_transfer_modes:
        return _fail(ctx, req, "FAILED_WrongEnergyTransferMode", f"{mode.value} is not offered")
    if ctx.renegotiating and ctx.energy_mode is not None and mode is not ctx.energy_mode:
        return _fail(ctx, req, "FAILED_WrongEnergyTransferMode", "the energy transfer mode changed in a renegotiation")
    param = req.ev_charge_parameter
    if isinstance(param, m.DC_EVChargeParameter) != mode.is_dc or type(param) is m.EVChargeParameter:
        return _fail(ctx, req, "FAILED_WrongChargeParameter", f"{type(param).__name__} does not fit {mode.value}")
    ctx.energy_mode = mode
    ctx.needs = _needs(req, mode)
    if isinstance(param, m.DC_EVChargeParameter):
        _ev_status(ctx, param.dc_ev_status)
    evse_parameter = dc_evse_charge_parameter(ctx) if mode.is_dc else ac_evse_charge_parameter(ctx)
    ctx.request("schedule", GetChargingSchedule, needs=ctx.needs, renegotiation=ctx.renegotiating)
    result = ctx.result("schedule")
    if result is None and not ctx.ongoing_expired("schedule", now, ctx.config.timers.ongoing_limit):
        return Reply(m.ChargeParameterDiscoveryRes(response_code=_OK, evse_processing=m.EVSEProcessing.Ongoing,
                                                   evse_charge_parameter=evse_parameter))
    if not isinstance(result, GetChargingScheduleResult):
        ctx.log.warning("session %s: no charging schedule (%s); offering the EVSE's own limits", ctx.session_id.hex(),
                        "timed out" if result is None else getattr(result, "reason", "failed"))
    ctx.sa_schedules = _sa_schedule_list(ctx, result)
    ctx.restart("schedule")
    next_state = State.WAIT_FOR_PowerDeliveryReq if (ctx.renegotiating or not mode.is_dc) else State.WAIT_FOR_CableCheckReq
    return Reply(
        m.ChargeParameterDiscoveryRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished,
                                      sa_schedules=ctx.sa_schedules, evse_charge_parameter=evse_parameter),
        next_state,
    )


# --------------------------------------------------------------------------- #
# DC preparation                                                               #
# --------------------------------------------------------------------------- #


def cable_check(ctx: Context, req: m.CableCheckReq, now: float) -> Reply:
    _ev_status(ctx, req.dc_ev_status)
    needs = ctx.needs
    voltage = min((needs.max_voltage_v if needs and needs.max_voltage_v else ctx.status.max_voltage_v), ctx.status.max_voltage_v)
    ctx.request("cable_check", StartCableCheck, voltage_v=voltage)
    result = ctx.result("cable_check")
    if result is None:
        if ctx.ongoing_expired("cable_check", now, ctx.config.timers.cable_check_limit):
            return _fail(ctx, req, "FAILED", "the isolation check did not finish in time")
        return Reply(m.CableCheckRes(response_code=_OK, evse_processing=m.EVSEProcessing.Ongoing,
                                     dc_evse_status=dc_evse_status(ctx, isolation=m.IsolationLevel.Invalid,
                                                                   code="EVSE_IsolationMonitoringActive")))
    if not isinstance(result, StartCableCheckResult) or result.isolation in (Isolation.Fault, Isolation.Invalid):
        what = result.isolation.value if isinstance(result, StartCableCheckResult) else getattr(result, "reason", "failed")
        return _fail(ctx, req, "FAILED", f"isolation check: {what}")
    return Reply(
        m.CableCheckRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished,
                        dc_evse_status=dc_evse_status(ctx, isolation=m.IsolationLevel(result.isolation.value), code="EVSE_Ready")),
        State.WAIT_FOR_PreChargeReq,
    )


def pre_charge(ctx: Context, req: m.PreChargeReq, now: float) -> Reply:
    _ev_status(ctx, req.dc_ev_status)
    _dc_target(ctx, req.ev_target_voltage, req.ev_target_current)
    return Reply(
        m.PreChargeRes(response_code=_OK, dc_evse_status=dc_evse_status(ctx),
                       evse_present_voltage=pv(ctx.status.present_voltage_v, "V")),
        State.WAIT_FOR_PowerDeliveryReq,
    )


# --------------------------------------------------------------------------- #
# Power delivery and the charge loop                                           #
# --------------------------------------------------------------------------- #


def _pmax_at(entries: list[m.PMaxScheduleEntry], t: int) -> float | None:
    limit = None
    for e in entries:
        if e.time_interval.start <= t:
            limit = _value(e.p_max)
    return limit


def _profile_problem(ctx: Context, req: m.PowerDeliveryReq, tuple_: m.SAScheduleTuple) -> str | None:
    if req.charging_profile is None:
        return None
    entries = tuple_.p_max_schedule.p_max_schedule_entry
    for e in req.charging_profile.profile_entry:
        pmax = _pmax_at(entries, e.charging_profile_entry_start)
        power = _value(e.charging_profile_entry_max_power) or 0.0
        if pmax is not None and power > pmax + 1e-6:
            return f"ChargingProfile entry at {e.charging_profile_entry_start} s asks {power:.0f} W over PMax {pmax:.0f} W"
    return None


def _evse_status(ctx: Context) -> m.AC_EVSEStatus | m.DC_EVSEStatus:
    return dc_evse_status(ctx) if ctx.energy_mode is not None and ctx.energy_mode.is_dc else ac_evse_status(ctx)


def _loop_state(ctx: Context) -> State:
    return State.WAIT_FOR_CurrentDemandReq if ctx.energy_mode is not None and ctx.energy_mode.is_dc else State.WAIT_FOR_ChargingStatusReq


def power_delivery(ctx: Context, req: m.PowerDeliveryReq, now: float) -> Reply | Hold:
    progress = req.charge_progress
    in_loop = ctx.energy_flowing
    timeout = _timeout(ctx, "PowerDeliveryReq")
    if progress is m.ChargeProgress.Start:
        if in_loop and not ctx.renegotiating:
            return _fail(ctx, req, "FAILED_SequenceError", "PowerDelivery Start while charging")
        tuples = ctx.sa_schedules.sa_schedule_tuple if ctx.sa_schedules is not None else []
        chosen = next((t for t in tuples if t.sa_schedule_tuple_id == req.sa_schedule_tuple_id), None)
        if chosen is None:
            return _fail(ctx, req, "FAILED_TariffSelectionInvalid", f"SAScheduleTupleID {req.sa_schedule_tuple_id} was not offered")
        problem = _profile_problem(ctx, req, chosen)
        if problem is not None:
            # EVerest leaves this a warning because some EVs send profiles above PMax
            if ctx.config.strict_charging_profile:
                return _fail(ctx, req, "FAILED_ChargingProfileInvalid", problem)
            ctx.log.warning("session %s: %s", ctx.session_id.hex(), problem)
        if "close_contactor" not in ctx.ids:  # once per PowerDeliveryReq (a held request is re-run)
            entries = tuple(
                ProfileEntry(e.charging_profile_entry_start, _value(e.charging_profile_entry_max_power) or 0.0,
                             e.charging_profile_entry_max_number_of_phases_in_use)
                for e in (req.charging_profile.profile_entry if req.charging_profile else [])
            )
            ctx.notify(ReportEvChargingSchedule, sa_schedule_tuple_id=req.sa_schedule_tuple_id, entries=entries)
        if not ctx.contactor_closed:  # after a renegotiation they still are
            ctx.request("close_contactor", CloseContactor)
            result = ctx.result("close_contactor")
            if result is None:
                return Hold(ctx.hold_deadline(timeout),
                            _fail(ctx, req, "FAILED_PowerDeliveryNotApplied", "contactors did not close in time"))
            ctx.restart("close_contactor")
            if not (isinstance(result, CloseContactorResult) and result.closed):
                return _fail(ctx, req, "FAILED_ContactorError", getattr(result, "reason", "") or "contactors did not close")
            ctx.contactor_closed = True
            ctx.receipt_due = now
        if not ctx.energy_flowing:
            ctx.energy_flowing = True
            ctx.notify(ReportChargingState, state=ChargingState.Charging)
        ctx.renegotiating = False
        ctx.notification = "None"
        ctx.sa_schedule_tuple_id = req.sa_schedule_tuple_id
        return Reply(m.PowerDeliveryRes(response_code=_OK, evse_status=_evse_status(ctx)), _loop_state(ctx))

    if progress is m.ChargeProgress.Renegotiate:
        if not in_loop:
            return _fail(ctx, req, "FAILED_SequenceError", "PowerDelivery Renegotiate outside the charge loop")
        ctx.renegotiating = True
        ctx.notification = "None"
        return Reply(m.PowerDeliveryRes(response_code=_OK, evse_status=_evse_status(ctx)),
                     State.WAIT_FOR_ChargeParameterDiscoveryReq)

    # Stop
    if ctx.contactor_closed:
        if ctx.dc_target is not None:
            _dc_target(ctx, None, None)
        ctx.request("open_contactor", OpenContactor)
        result = ctx.result("open_contactor")
        if result is None:
            return Hold(ctx.hold_deadline(timeout), _fail(ctx, req, "FAILED_ContactorError", "contactors did not open in time"))
        ctx.restart("open_contactor")
        if not (isinstance(result, OpenContactorResult) and result.opened):
            return _fail(ctx, req, "FAILED_ContactorError", getattr(result, "reason", "") or "contactors did not open")
        ctx.contactor_closed = ctx.contactor_maybe_closed = False
    if ctx.energy_flowing:
        ctx.energy_flowing = False
        ctx.notify(ReportChargingState, state=ChargingState.EVConnected)
    ctx.notification = "None"
    dc = ctx.energy_mode is not None and ctx.energy_mode.is_dc
    return Reply(m.PowerDeliveryRes(response_code=_OK, evse_status=_evse_status(ctx)),
                 State.WAIT_FOR_WeldingDetectionReq if dc else State.WAIT_FOR_SessionStopReq)


def _receipt_required(ctx: Context, now: float) -> bool:
    if not (ctx.payment is PaymentOption.Contract and ctx.config.metering_receipts and ctx.status.meter is not None):
        return False
    if ctx.receipt_due is None or now < ctx.receipt_due:
        return False
    ctx.receipt_due = now + ctx.config.timers.metering_receipt_interval
    return True


def charging_status(ctx: Context, req: m.ChargingStatusReq, now: float) -> Reply:
    receipt = _receipt_required(ctx, now)
    return Reply(
        m.ChargingStatusRes(
            response_code=_OK, evseid=ctx.config.evse_id, sa_schedule_tuple_id=ctx.sa_schedule_tuple_id or 1,
            evse_max_current=pv(ctx.status.max_current_a, "A", floor=True), meter_info=meter_info(ctx),
            receipt_required=receipt if ctx.payment is PaymentOption.Contract else None,
            ac_evse_status=ac_evse_status(ctx),
        ),
        State.WAIT_FOR_MeteringReceiptReq if receipt else None,
    )


def current_demand(ctx: Context, req: m.CurrentDemandReq, now: float) -> Reply:
    _ev_status(ctx, req.dc_ev_status)
    _dc_target(ctx, req.ev_target_voltage, req.ev_target_current)
    status = ctx.status
    target_v, target_i = ctx.dc_target or (0.0, 0.0)
    receipt = _receipt_required(ctx, now)
    return Reply(
        m.CurrentDemandRes(
            response_code=_OK,
            dc_evse_status=dc_evse_status(ctx),
            evse_present_voltage=pv(status.present_voltage_v, "V"),
            evse_present_current=pv(status.present_current_a, "A"),
            evse_current_limit_achieved=target_i >= status.max_current_a,
            evse_voltage_limit_achieved=target_v >= status.max_voltage_v,
            evse_power_limit_achieved=target_v * target_i >= status.max_power_w,
            evse_maximum_voltage_limit=pv(status.max_voltage_v, "V", floor=True),
            evse_maximum_current_limit=pv(status.max_current_a, "A", floor=True),
            evse_maximum_power_limit=pv(status.max_power_w, "W", floor=True),
            evseid=ctx.config.evse_id,
            sa_schedule_tuple_id=ctx.sa_schedule_tuple_id or 1,
            meter_info=meter_info(ctx),
            receipt_required=receipt if ctx.payment is PaymentOption.Contract else None,
        ),
        State.WAIT_FOR_MeteringReceiptReq if receipt else None,
    )


def metering_receipt(ctx: Context, req: m.MeteringReceiptReq, now: float) -> Reply | Hold:
    if req.session_id != ctx.session_id:
        return _fail(ctx, req, "FAILED", "MeteringReceiptReq names another SessionID")
    if ctx.payment is PaymentOption.Contract:
        if "metering_signature" not in ctx.ids and not _signed_element_present(ctx.request_message, req):
            return _fail(ctx, req, "FAILED_MeteringSignatureNotValid", "MeteringReceiptReq is not signed")
        ctx.request("metering_signature", VerifyMeteringReceiptSignature, schema="iso2", message=ctx.request_message,
                    certificate=ctx.contract_leaf or b"")
        result = ctx.result("metering_signature")
        if result is None:
            return Hold(ctx.hold_deadline(_timeout(ctx, "MeteringReceiptReq")),
                        _fail(ctx, req, "FAILED", "the signature check did not finish in time"))
        ctx.restart("metering_signature")
        if not (isinstance(result, VerifyMeteringReceiptSignatureResult) and result.valid):
            return _fail(ctx, req, "FAILED_MeteringSignatureNotValid", getattr(result, "reason", "") or "bad signature")
    return Reply(m.MeteringReceiptRes(response_code=_OK, evse_status=_evse_status(ctx)), _loop_state(ctx))


def welding_detection(ctx: Context, req: m.WeldingDetectionReq, now: float) -> Reply:
    _ev_status(ctx, req.dc_ev_status)
    return Reply(m.WeldingDetectionRes(response_code=_OK, dc_evse_status=dc_evse_status(ctx),
                                       evse_present_voltage=pv(ctx.status.present_voltage_v, "V")))


def session_stop(ctx: Context, req: m.SessionStopReq, now: float) -> Reply:
    res = m.SessionStopRes(response_code=_OK)
    if req.charging_session is m.ChargingSession.Pause:
        resume = ResumeContext(
            schema="iso2", session_id=ctx.session_id, evcc_id=ctx.evcc_id,
            payment=ctx.payment or PaymentOption.ExternalPayment, energy_transfer_mode=ctx.energy_mode,
            sa_schedule_tuple_id=ctx.sa_schedule_tuple_id, emaid=ctx.emaid, authorized=ctx.authorized,
        )
        return Reply(res, State.STOPPED, close=True, reason="the EV paused the session", resume=resume)
    return Reply(res, State.STOPPED, close=True, reason="the EV ended the session", stop_reason=StopReason.Local)


HANDLERS = {
    m.SessionSetupReq: session_setup,
    m.ServiceDiscoveryReq: service_discovery,
    m.ServiceDetailReq: service_detail,
    m.PaymentServiceSelectionReq: payment_service_selection,
    m.CertificateInstallationReq: certificate_installation,
    m.CertificateUpdateReq: certificate_update,
    m.PaymentDetailsReq: payment_details,
    m.AuthorizationReq: authorization,
    m.ChargeParameterDiscoveryReq: charge_parameter_discovery,
    m.CableCheckReq: cable_check,
    m.PreChargeReq: pre_charge,
    m.PowerDeliveryReq: power_delivery,
    m.ChargingStatusReq: charging_status,
    m.CurrentDemandReq: current_demand,
    m.MeteringReceiptReq: metering_receipt,
    m.WeldingDetectionReq: welding_detection,
    m.SessionStopReq: session_stop,
}
