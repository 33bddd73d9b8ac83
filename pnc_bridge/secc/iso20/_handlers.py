"""ISO 15118-20 request handlers: one pure function per request type.

Rules of this module (as in the ISO 15118-2 core):

- ``handler(ctx, request, now) -> Reply | Hold``. Sequence, family (AC / DC) and SessionID
  were checked before a handler runs; a handler checks the request's content and answers
  with the code this core uses for what is wrong. Every FAILED ends the session; a WARNING
  does not (ISO 15118-20 answers a refused authorization with a WARNING code and
  ``EVSEProcessing=Finished``: the EV may try another service or stop).
- Effects are started with ``ctx.request(purpose, ...)``, once per purpose.
- Requests whose response has ``EVSEProcessing`` (Authorization, ScheduleExchange,
  DC_CableCheck) are answered at once, ``Ongoing`` while their effect is pending, until the
  Ongoing limit. CertificateInstallation is held until the CSMS answers, and answered
  ``Ongoing`` when the EV's message timeout comes first (the EV asks again). The others
  (PowerDelivery, MeteringConfirmation) hold the response, at most until shortly before
  the EV's message timeout.
- The charge loops answer from the pushed EVSE status and setpoint only (no effect on the
  loop's path); the targets are computed by ``_control``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from pnc_bridge import exi
from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc._common import ResumeContext
from pnc_bridge.secc._core import Hold, Reply
from pnc_bridge.secc.effects import (
    AuthorizeExternalPayment,
    AuthorizeExternalPaymentResult,
    AuthorizeWithCsms,
    AuthorizeWithCsmsResult,
    CertificateAction,
    ChargingState,
    CloseContactor,
    CloseContactorResult,
    ControlMode,
    EnergyService,
    EnergyTransferMode,
    EvChargingNeeds,
    EvPowerScheduleEntry,
    GetChargingSchedule,
    GetChargingScheduleResult,
    Isolation,
    OpenContactor,
    OpenContactorResult,
    PaymentOption,
    ProfileEntry,
    ReportChargingState,
    ReportEvChargingSchedule,
    ReportEvStatus,
    RequestEvCertificate,
    RequestEvCertificateResult,
    SetDcTarget,
    StartCableCheck,
    StartCableCheckResult,
    StartTransaction,
    StopReason,
    V2xChargingParameters,
    ValidateContractChain,
    ValidateContractChainResult,
    VerifyAuthorizationSignature,
    VerifyAuthorizationSignatureResult,
    VerifyMeteringReceiptSignature,
    VerifyMeteringReceiptSignatureResult,
)
from pnc_bridge.secc.iso20._context import Iso20Context
from pnc_bridge.secc.iso20._control import dc_scheduled_target, evse_charge_limit_w, steer, window
from pnc_bridge.secc.iso20._responses import (
    NEGATIVE,
    ac_cpd_res_mode,
    dc_cpd_res_mode,
    evse_status,
    meter_info,
    rn,
    rn_limit,
)
from pnc_bridge.secc.iso20._services import offered_services, parameter_list, parameter_sets
from pnc_bridge.secc.iso20._state import State
from pnc_bridge.secc.schedule import from_rational, has_discharge, period_at, to_iso20_schedule_tuples

__all__ = ["CSMS_CERTIFICATE_STATUS_CODE_ISO20", "CONTRACT_CODE_ISO20", "HANDLERS", "SCHEMA_VERSION"]

_OK = m.ResponseCode.OK
_H = m.MessageHeader(session_id=bytes(8), time_stamp=0)  # replaced by the session's envelope
#: OCPP Get15118EVCertificate ``iso15118SchemaVersion`` of a -20 CertificateInstallationReq
SCHEMA_VERSION = "urn:iso:std:iso:15118:-20:CommonMessages"
#: the EV's precharge current limit the power electronics get with the target voltage
PRECHARGE_CURRENT_A = 2.0

#: the PKI's contract-chain verdict (ISO 15118-2 names) -> the ISO 15118-20 AuthorizationRes code
CONTRACT_CODE_ISO20: dict[str, str] = {
    "FAILED_CertChainError": "WARNING_CertificateValidationError",
    "FAILED_CertificateExpired": "WARNING_CertificateExpired",
    "FAILED_CertificateRevoked": "WARNING_CertificateRevoked",
}
#: OCPP AuthorizeCertificateStatusEnumType -> the ISO 15118-20 AuthorizationRes code
CSMS_CERTIFICATE_STATUS_CODE_ISO20: dict[str, str] = {
    "SignatureError": "FAILED_SignatureError",
    "CertificateExpired": "WARNING_CertificateExpired",
    "CertificateRevoked": "WARNING_CertificateRevoked",
    "CertChainError": "WARNING_CertificateValidationError",
    "NoCertificateAvailable": "WARNING_GeneralPnCAuthorizationError",
    "ContractCancelled": "WARNING_GeneralPnCAuthorizationError",
}


def _fail(ctx: Iso20Context, req: Any, code: str, reason: str, stop: StopReason = StopReason.Other) -> Reply:
    return Reply(NEGATIVE[type(req)](ctx, req, m.ResponseCode(code)), State.STOPPED, close=True,
                 reason=f"{code}: {reason}", stop_reason=stop)


def _timeout(ctx: Iso20Context, name: str) -> float:
    return ctx.config.timers.msg_timeouts_iso20.get(name, 2.0)


def _phases(ctx: Iso20Context) -> int:
    if ctx.dc:
        return 1
    connector = ctx.parameter_set.connector if ctx.parameter_set is not None else ctx.config.iso20.ac_connector
    return 3 if connector == 2 else 1


def _bpt(ctx: Iso20Context) -> bool:
    return ctx.service is not None and ctx.service.is_bpt


def _scheduled(ctx: Iso20Context) -> bool:
    return ctx.parameter_set is None or ctx.parameter_set.control_mode is ControlMode.ScheduledControl


def _f(r: Any) -> float | None:
    return from_rational(r)


def _sum3(a: Any, b: Any, c: Any) -> float | None:
    """A per-phase triple as a total: the field alone is the total unless L2 / L3 are given."""
    first = _f(a)
    if first is None:
        return None
    if b is None and c is None:
        return first
    return first + (_f(b) or 0.0) + (_f(c) or 0.0)


# --------------------------------------------------------------------------- #
# Communication setup and authorization                                        #
# --------------------------------------------------------------------------- #


def session_setup(ctx: Iso20Context, req: m.SessionSetupReq, now: float) -> Reply:
    resume = ctx.resume
    evcc_id = req.evccid.encode()
    if resume is not None and ctx.request_session_id == resume.session_id and evcc_id == resume.evcc_id:
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
    ctx.evcc_id, ctx.evccid = evcc_id, req.evccid
    ctx.resume = None
    return Reply(m.SessionSetupRes(header=_H, response_code=code, evseid=ctx.config.evse_id),
                 State.WAIT_FOR_AuthorizationSetupReq)


def authorization_setup(ctx: Iso20Context, req: m.AuthorizationSetupReq, now: float) -> Reply:
    offered: list[m.Authorization] = []
    pnc = PaymentOption.Contract in ctx.config.payment_options and ctx.tls
    if pnc:
        offered.append(m.Authorization.PnC)
    if PaymentOption.ExternalPayment in ctx.config.payment_options:
        offered.append(m.Authorization.EIM)
    if not offered:
        return _fail(ctx, req, "FAILED", "no authorization service is possible on this connection (Plug & Charge needs TLS)")
    ctx.offered_auth = tuple(offered)
    eim_mode = pnc_mode = None
    if pnc:
        # the XSD lets the response carry one of the two modes: PnC's, with the GenChallenge
        ctx.gen_challenge = ctx.config.random_bytes(16)
        pnc_mode = m.PnC_ASResAuthorizationMode(gen_challenge=ctx.gen_challenge)
    else:
        eim_mode = m.EIM_ASResAuthorizationMode()
    return Reply(
        m.AuthorizationSetupRes(
            header=_H, response_code=_OK, authorization_services=offered,
            certificate_installation_service=pnc and ctx.config.certificate_installation,
            eim_asres_authorization_mode=eim_mode, pnc_asres_authorization_mode=pnc_mode,
        ),
        State.WAIT_FOR_AuthorizationReq,
    )


def _authorized(ctx: Iso20Context) -> None:
    ctx.authorized = True
    ctx.transaction_started = True
    ctx.notify(
        StartTransaction, session_id=ctx.session_id.hex(), evcc_id=ctx.evccid, protocol="iso20",
        payment=ctx.payment or PaymentOption.ExternalPayment, emaid=ctx.emaid, resumed=ctx.resumed,
    )


def _auth_res(processing: m.Processing, code: m.ResponseCode = _OK) -> m.AuthorizationRes:
    return m.AuthorizationRes(header=_H, response_code=code, evse_processing=processing)


def _finished(ctx: Iso20Context) -> Reply:
    if not ctx.authorized:
        _authorized(ctx)
    return Reply(_auth_res(m.Processing.Finished), State.WAIT_FOR_ServiceDiscoveryReq)


def _refused(ctx: Iso20Context, code: str, reason: str, *purposes: str) -> Reply:
    """A refused authorization: the WARNING code with Finished; the EV may try again (with
    another service) or stop. The purposes are forgotten so that a new try starts anew."""
    for purpose in purposes:
        ctx.restart(purpose)
    ctx.log.warning("session %s: authorization refused (%s): %s", ctx.session_id.hex(), code, reason)
    return Reply(_auth_res(m.Processing.Finished, m.ResponseCode(code)))


def _emaid_of(leaf: bytes) -> str:
    try:
        names = x509.load_der_x509_certificate(leaf).subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return ""
    return str(names[0].value) if names else ""


def _signed(message: Any, element: Any) -> bool:
    signature = message.header.signature
    if signature is None or not getattr(element, "id", None):
        return False
    return any((r.uri or "").lstrip("#") == element.id for r in signature.signed_info.reference)


def authorization(ctx: Iso20Context, req: m.AuthorizationReq, now: float) -> Reply:
    limit = ctx.config.timers.ongoing_limit
    selected = req.selected_authorization_service
    if selected not in ctx.offered_auth:
        return _refused(ctx, "WARNING_AuthorizationSelectionInvalid", f"{selected.value} was not offered")
    if selected is m.Authorization.EIM:
        ctx.payment = PaymentOption.ExternalPayment
        if ctx.authorized or (ctx.resumed and ctx.transaction_started and "eim" not in ctx.ids):
            return _finished(ctx)
        ctx.request("eim", AuthorizeExternalPayment, evcc_id=ctx.evccid)
        result = ctx.result("eim")
        if result is None:
            if ctx.ongoing_expired("eim", now, limit):
                return _fail(ctx, req, "FAILED", "no authorization (EIM) within the Ongoing limit", StopReason.DeAuthorized)
            return Reply(_auth_res(m.Processing.Ongoing_WaitingForCustomerInteraction))
        if not (isinstance(result, AuthorizeExternalPaymentResult) and result.accepted):
            return _refused(ctx, "WARNING_EIMAuthorizationFailure", getattr(result, "reason", "") or "refused", "eim")
        return _finished(ctx)

    # Plug & Charge: the signature over PnC_AReqAuthorizationMode, the contract chain and the CSMS
    ctx.payment = PaymentOption.Contract
    mode = req.pnc_areq_authorization_mode
    if mode is None:
        return _fail(ctx, req, "FAILED", "PnC selected without PnC_AReqAuthorizationMode", StopReason.DeAuthorized)
    purposes = ("signature", "contract", "csms_auth")
    if "signature" not in ctx.ids:
        if ctx.gen_challenge is None or mode.gen_challenge != ctx.gen_challenge:
            # the GenChallenge of AuthorizationSetupRes (xmldsig's table: WARNING_ChallengeInvalid)
            return _refused(ctx, "WARNING_ChallengeInvalid", "GenChallenge differs from AuthorizationSetupRes")
        if not _signed(ctx.request_message, mode):
            return _fail(ctx, req, "FAILED_SignatureError", "PnC_AReqAuthorizationMode is not signed", StopReason.DeAuthorized)
        chain = mode.contract_certificate_chain
        leaf, sub_cas = chain.certificate, tuple(chain.sub_certificates.certificate)
        ctx.contract_leaf, ctx.contract_sub_cas = leaf, sub_cas
        ctx.emaid = _emaid_of(leaf)
        ctx.request("signature", VerifyAuthorizationSignature, schema="iso20-common", message=ctx.request_message,
                    certificate=leaf)
        ctx.request("contract", ValidateContractChain, leaf=leaf, sub_cas=sub_cas, emaid=ctx.emaid)
        ctx.request("csms_auth", AuthorizeWithCsms, emaid=ctx.emaid, contract_chain=(leaf,) + sub_cas)
    signature, contract, auth = (ctx.result(p) for p in purposes)
    if signature is not None and not (isinstance(signature, VerifyAuthorizationSignatureResult) and signature.valid):
        return _fail(ctx, req, "FAILED_SignatureError", getattr(signature, "reason", "") or "bad signature",
                     StopReason.DeAuthorized)
    if contract is not None:
        if not isinstance(contract, ValidateContractChainResult):
            return _refused(ctx, "WARNING_CertificateValidationError",
                            f"contract chain validation failed: {getattr(contract, 'reason', '')}", *purposes)
        if contract.response_code is not None:
            code = CONTRACT_CODE_ISO20.get(contract.response_code, "WARNING_CertificateValidationError")
            return _refused(ctx, code, contract.reason or contract.response_code, *purposes)
    if auth is not None:
        if not isinstance(auth, AuthorizeWithCsmsResult):
            return _refused(ctx, "WARNING_GeneralPnCAuthorizationError",
                            f"CSMS authorization failed: {getattr(auth, 'reason', '')}", *purposes)
        if auth.certificate_status not in (None, "Accepted"):
            code = CSMS_CERTIFICATE_STATUS_CODE_ISO20.get(auth.certificate_status, "WARNING_GeneralPnCAuthorizationError")
            if code.startswith("FAILED"):
                return _fail(ctx, req, code, f"CSMS: certificate {auth.certificate_status}", StopReason.DeAuthorized)
            return _refused(ctx, code, f"CSMS: certificate {auth.certificate_status}", *purposes)
        if auth.status != "Accepted":
            return _refused(ctx, "WARNING_GeneralPnCAuthorizationError", f"CSMS: authorization {auth.status}", *purposes)
    if signature is not None and contract is not None and auth is not None:
        return _finished(ctx)
    if ctx.ongoing_expired("authorization", now, limit):
        return _fail(ctx, req, "FAILED", "Plug & Charge authorization did not finish within the Ongoing limit",
                     StopReason.DeAuthorized)
    return Reply(_auth_res(m.Processing.Ongoing))


def _ongoing_certificate(ctx: Iso20Context, req: Any) -> Reply:
    body = NEGATIVE[m.CertificateInstallationReq](ctx, req, _OK)
    return Reply(replace(body, evse_processing=m.Processing.Ongoing))


def certificate_installation(ctx: Iso20Context, req: m.CertificateInstallationReq, now: float) -> Reply | Hold:
    if not (m.Authorization.PnC in ctx.offered_auth and ctx.config.certificate_installation):
        return _fail(ctx, req, "FAILED", "the certificate installation service was not offered")
    if "certificate" not in ctx.ids:
        exi_request = ctx.request_raw
        if exi_request is None:
            try:
                exi_request = exi.encode("iso20-common", ctx.request_message)
            except exi.ExiEncodeError as exc:
                return _fail(ctx, req, "FAILED", f"CertificateInstallationReq cannot be passed on: {exc}")
        ctx.request("certificate", RequestEvCertificate, action=CertificateAction.Install, exi_request=exi_request,
                    schema_version=SCHEMA_VERSION)
    result = ctx.result("certificate")
    if result is None:
        if ctx.ongoing_expired("certificate", now, ctx.config.timers.ongoing_limit):
            ctx.restart("certificate")
            return Reply(NEGATIVE[m.CertificateInstallationReq](ctx, req, m.ResponseCode.WARNING_NoCertificateAvailable))
        # held until the CSMS answers; Ongoing when the EV's own timeout comes first (it asks again)
        return Hold(ctx.hold_deadline(_timeout(ctx, "CertificateInstallationReq")), _ongoing_certificate(ctx, req))
    ctx.restart("certificate")
    response = None
    if isinstance(result, RequestEvCertificateResult) and result.exi_response:
        try:
            response = exi.decode("iso20-common", result.exi_response, strict=False)
        except exi.ExiDecodeError as exc:
            ctx.log.warning("CSMS sent an undecodable CertificateInstallationRes: %s", exc)
    if not isinstance(response, m.CertificateInstallationRes):
        accepted = isinstance(result, RequestEvCertificateResult) and result.accepted
        reason = getattr(result, "reason", "") or "no CertificateInstallationRes from the CSMS"
        if accepted:
            return _fail(ctx, req, "FAILED", reason)
        ctx.log.warning("session %s: no contract certificate: %s", ctx.session_id.hex(), reason)
        return Reply(NEGATIVE[m.CertificateInstallationReq](ctx, req, m.ResponseCode.WARNING_NoCertificateAvailable))
    # the CSMS's response as it is (the CPS signed SignedInstallationData); our header
    body = replace(response, header=_H)
    if body.response_code.value.startswith("FAILED"):
        return Reply(body, State.STOPPED, close=True, reason=f"{body.response_code.value}: from the CSMS",
                     signature=response.header.signature)
    return Reply(body, signature=response.header.signature)


# --------------------------------------------------------------------------- #
# Services                                                                     #
# --------------------------------------------------------------------------- #


def service_discovery(ctx: Iso20Context, req: m.ServiceDiscoveryReq, now: float) -> Reply:
    services = offered_services(ctx.config.iso20, ctx.dc)
    ev_ids = tuple(req.supported_service_ids.service_id) if req.supported_service_ids else ()
    ctx.ev_services = tuple(s for s in (EnergyService.from_service_id(i) for i in ev_ids) if s is not None)
    if ev_ids:
        services = tuple(s for s in services if s.service_id in ev_ids)
    if not services:
        return _fail(ctx, req, "FAILED", "no energy service in common with the EV")
    ctx.offered_services = services
    return Reply(
        m.ServiceDiscoveryRes(
            header=_H, response_code=_OK, service_renegotiation_supported=ctx.config.iso20.service_renegotiation,
            energy_transfer_service_list=m.ServiceList(
                service=[m.Service(service_id=s.service_id, free_service=ctx.config.free_service) for s in services]),
        ),
        State.WAIT_FOR_ServiceSelectionReq,
    )


def _offered(ctx: Iso20Context, service_id: int) -> EnergyService | None:
    return next((s for s in ctx.offered_services if s.service_id == service_id), None)


def service_detail(ctx: Iso20Context, req: m.ServiceDetailReq, now: float) -> Reply:
    service = _offered(ctx, req.service_id)
    if service is None:
        # [V2G20-464] as Josev quotes it: a ServiceID not offered in ServiceDiscoveryRes
        return _fail(ctx, req, "FAILED_ServiceIDInvalid", f"ServiceID {req.service_id} was not offered")
    return Reply(m.ServiceDetailRes(header=_H, response_code=_OK, service_id=req.service_id,
                                    service_parameter_list=parameter_list(ctx.config.iso20, ctx.status, service)))


def service_selection(ctx: Iso20Context, req: m.ServiceSelectionReq, now: float) -> Reply:
    chosen = req.selected_energy_transfer_service
    service = _offered(ctx, chosen.service_id)
    info = None
    if service is not None:
        info = next((p for p in parameter_sets(ctx.config.iso20, service) if p.id == chosen.parameter_set_id), None)
    if info is None:
        return _fail(ctx, req, "FAILED_NoEnergyTransferServiceSelected",
                     f"ServiceID {chosen.service_id} with ParameterSetID {chosen.parameter_set_id} was not offered")
    if req.selected_vas_list is not None and req.selected_vas_list.selected_service:
        return _fail(ctx, req, "FAILED_ServiceSelectionInvalid", "no value-added service was offered")
    ctx.service, ctx.parameter_set = service, info
    if service.is_dc:
        ctx.energy_mode = EnergyTransferMode.DC_extended
    else:
        ctx.energy_mode = EnergyTransferMode.AC_three_phase_core if _phases(ctx) == 3 else EnergyTransferMode.AC_single_phase_core
    return Reply(m.ServiceSelectionRes(header=_H, response_code=_OK), State.WAIT_FOR_ChargeParameterDiscoveryReq)


# --------------------------------------------------------------------------- #
# Charge parameters and schedules                                              #
# --------------------------------------------------------------------------- #


def ac_charge_parameter_discovery(ctx: Iso20Context, req: m.AC_ChargeParameterDiscoveryReq, now: float) -> Reply:
    p = req.ac_cpd_req_energy_transfer_mode
    bpt = isinstance(p, m.BPT_AC_CPDReqEnergyTransferMode)
    if bpt != _bpt(ctx):
        return _fail(ctx, req, "FAILED_WrongChargeParameter", f"{type(p).__name__} does not fit {ctx.service.value}")
    limits = dict(
        max_charge_w=_sum3(p.ev_maximum_charge_power, p.ev_maximum_charge_power_l2, p.ev_maximum_charge_power_l3),
        min_charge_w=_sum3(p.ev_minimum_charge_power, p.ev_minimum_charge_power_l2, p.ev_minimum_charge_power_l3),
    )
    if bpt:
        limits.update(
            max_discharge_w=abs(_sum3(p.ev_maximum_discharge_power, p.ev_maximum_discharge_power_l2, p.ev_maximum_discharge_power_l3) or 0.0),
            min_discharge_w=abs(_sum3(p.ev_minimum_discharge_power, p.ev_minimum_discharge_power_l2, p.ev_minimum_discharge_power_l3) or 0.0),
        )
    ctx.ev_limits = ctx.ev_limits.merged(**limits)
    return Reply(m.AC_ChargeParameterDiscoveryRes(header=_H, response_code=_OK,
                                                  ac_cpd_res_energy_transfer_mode=ac_cpd_res_mode(ctx, bpt)),
                 State.WAIT_FOR_ScheduleExchangeReq)


def dc_charge_parameter_discovery(ctx: Iso20Context, req: m.DC_ChargeParameterDiscoveryReq, now: float) -> Reply:
    p = req.dc_cpd_req_energy_transfer_mode
    bpt = isinstance(p, m.BPT_DC_CPDReqEnergyTransferMode)
    if bpt != _bpt(ctx):
        return _fail(ctx, req, "FAILED_WrongChargeParameter", f"{type(p).__name__} does not fit {ctx.service.value}")
    limits = dict(
        max_charge_w=_f(p.ev_maximum_charge_power), min_charge_w=_f(p.ev_minimum_charge_power),
        max_charge_a=_f(p.ev_maximum_charge_current), min_charge_a=_f(p.ev_minimum_charge_current),
        max_voltage_v=_f(p.ev_maximum_voltage), min_voltage_v=_f(p.ev_minimum_voltage),
    )
    if bpt:
        limits.update(
            max_discharge_w=abs(_f(p.ev_maximum_discharge_power) or 0.0), min_discharge_w=abs(_f(p.ev_minimum_discharge_power) or 0.0),
            max_discharge_a=abs(_f(p.ev_maximum_discharge_current) or 0.0), min_discharge_a=abs(_f(p.ev_minimum_discharge_current) or 0.0),
        )
    ctx.ev_limits = ctx.ev_limits.merged(**limits)
    ctx.cpd_target_soc = p.target_soc
    return Reply(m.DC_ChargeParameterDiscoveryRes(header=_H, response_code=_OK,
                                                  dc_cpd_res_energy_transfer_mode=dc_cpd_res_mode(ctx, bpt)),
                 State.WAIT_FOR_ScheduleExchangeReq)


def _lo_hi(ev_min: float | None, ev_max: float | None, evse_min: float, evse_max: float) -> tuple[float | None, float | None]:
    """OCPP 2.1 V2X limits: minimum max(EV, EVSE), maximum min(EV, EVSE); magnitudes."""
    lo = None if ev_min is None else max(abs(ev_min), abs(evse_min))
    hi = None if ev_max is None else min(abs(ev_max), abs(evse_max))
    return lo, hi


def _needs(ctx: Iso20Context, req: m.ScheduleExchangeReq) -> EvChargingNeeds:
    ev, s, bpt = ctx.ev_limits, ctx.status, _bpt(ctx)
    scheduled, dynamic = req.scheduled_se_req_control_mode, req.dynamic_se_req_control_mode
    control = dynamic or scheduled
    departure = getattr(control, "departure_time", None)
    evse_charge = evse_charge_limit_w(s, ctx.dc, _phases(ctx))
    min_cp, max_cp = _lo_hi(ev.min_charge_w, ev.max_charge_w, s.min_power_w, evse_charge)
    v2x = dict(
        min_charge_power=min_cp, max_charge_power=max_cp,
        ev_target_energy_request=_f(getattr(control, "ev_target_energy_request", None)),
        ev_min_energy_request=_f(getattr(control, "ev_minimum_energy_request", None)),
        ev_max_energy_request=_f(getattr(control, "ev_maximum_energy_request", None)),
        target_soc=dynamic.target_soc if dynamic is not None and dynamic.target_soc is not None else ctx.cpd_target_soc,
    )
    if ctx.dc:
        v2x["min_charge_current"], v2x["max_charge_current"] = _lo_hi(ev.min_charge_a, ev.max_charge_a, s.min_current_a, s.max_current_a)
        v2x["min_voltage"], v2x["max_voltage"] = _lo_hi(ev.min_voltage_v, ev.max_voltage_v, s.min_voltage_v, s.max_voltage_v)
        if v2x["min_voltage"] is not None and ev.min_voltage_v is not None:
            v2x["min_voltage"] = max(ev.min_voltage_v, s.min_voltage_v)
    if bpt:
        v2x["min_discharge_power"], v2x["max_discharge_power"] = _lo_hi(
            ev.min_discharge_w, ev.max_discharge_w, s.min_discharge_power_w, s.max_discharge_power_w)
        if ctx.dc:
            v2x["min_discharge_current"], v2x["max_discharge_current"] = _lo_hi(
                ev.min_discharge_a, ev.max_discharge_a, s.min_discharge_current_a, s.max_discharge_current_a)
        if dynamic is not None:
            v2x["ev_min_v2x_energy_request"] = _f(dynamic.ev_minimum_v2x_energy_request)
            v2x["ev_max_v2x_energy_request"] = _f(dynamic.ev_maximum_v2x_energy_request)
    offer: tuple[EvPowerScheduleEntry, ...] = ()
    if scheduled is not None and scheduled.ev_energy_offer is not None:
        entries = scheduled.ev_energy_offer.ev_power_schedule.ev_power_schedule_entries.ev_power_schedule_entry
        offer = tuple(EvPowerScheduleEntry(e.duration, _f(e.power) or 0.0) for e in entries)
    info = ctx.parameter_set
    return EvChargingNeeds(
        energy_transfer_mode=ctx.energy_mode or EnergyTransferMode.DC_extended,
        departure_time=departure, max_entries=req.maximum_supporting_points,
        energy_request_wh=v2x["ev_target_energy_request"], max_current_a=ev.max_charge_a, min_current_a=ev.min_charge_a,
        max_voltage_v=ev.max_voltage_v, max_power_w=ev.max_charge_w, soc=ctx.soc,
        service=ctx.service, available_services=ctx.ev_services, control_mode=info.control_mode if info else None,
        mobility_needs_mode=info.mobility_needs_mode if info else None, v2x=V2xChargingParameters(**v2x),
        energy_offer=offer, min_soc=getattr(dynamic, "minimum_soc", None), target_soc=v2x["target_soc"],
    )


def _schedule_voltage(ctx: Iso20Context) -> float:
    if ctx.dc:
        return min(ctx.ev_limits.max_voltage_v or ctx.status.max_voltage_v, ctx.status.max_voltage_v)
    return ctx.status.nominal_voltage_v


def _tuples(ctx: Iso20Context, schedules: tuple, departure: int | None, max_points: int | None, now: float) -> list:
    return to_iso20_schedule_tuples(
        schedules, max_supporting_points=max_points, departure_time=departure, bpt=_bpt(ctx),
        voltage_v=_schedule_voltage(ctx), phases=_phases(ctx),
        fallback_charge_w=evse_charge_limit_w(ctx.status, ctx.dc, _phases(ctx)), fallback_discharge_w=0.0,
        time_anchor=ctx.unix_time(now),
    )


def schedule_exchange(ctx: Iso20Context, req: m.ScheduleExchangeReq, now: float) -> Reply:
    info = ctx.parameter_set
    scheduled = _scheduled(ctx)
    control = req.scheduled_se_req_control_mode if scheduled else req.dynamic_se_req_control_mode
    if control is None:
        wanted = "Scheduled" if scheduled else "Dynamic"
        return _fail(ctx, req, "FAILED_WrongChargeParameter", f"ScheduleExchangeReq without {wanted}_SEReqControlMode "
                     f"(the {info.control_mode.value if info else wanted} parameter set was selected)")
    ctx.max_entries = req.maximum_supporting_points
    ctx.departure_time = control.departure_time
    ctx.needs = _needs(ctx, req)
    ctx.request("schedule", GetChargingSchedule, needs=ctx.needs, renegotiation=ctx.renegotiating)
    result = ctx.result("schedule")
    if result is None and not ctx.ongoing_expired("schedule", now, ctx.config.timers.ongoing_limit):
        if scheduled:  # the XSD needs a tuple even while Ongoing: the EVSE's own limits, not final
            mode = m.Scheduled_SEResControlMode(schedule_tuple=_tuples(ctx, (), ctx.departure_time, req.maximum_supporting_points, now))
            return Reply(m.ScheduleExchangeRes(header=_H, response_code=_OK, evse_processing=m.Processing.Ongoing,
                                               scheduled_se_res_control_mode=mode))
        return Reply(m.ScheduleExchangeRes(header=_H, response_code=_OK, evse_processing=m.Processing.Ongoing,
                                           dynamic_se_res_control_mode=m.Dynamic_SEResControlMode()))
    ctx.restart("schedule")
    schedules: tuple = ()
    if isinstance(result, GetChargingScheduleResult):
        schedules = tuple(result.schedules)
    else:
        ctx.log.warning("session %s: no charging schedule (%s); offering the EVSE's own limits", ctx.session_id.hex(),
                        "timed out" if result is None else getattr(result, "reason", "failed"))
    if not _bpt(ctx) and any(has_discharge(s) for s in schedules):
        ctx.log.warning("session %s: the schedule discharges, but %s has no BPT: those periods carry no power",
                        ctx.session_id.hex(), ctx.service.value if ctx.service else "the service")
    ctx.schedules = schedules
    ctx.schedule_t0 = now
    next_state = State.WAIT_FOR_PowerDeliveryReq if (ctx.renegotiating or not ctx.dc) else State.WAIT_FOR_CableCheckReq
    if scheduled:
        tuples = _tuples(ctx, schedules, ctx.departure_time, req.maximum_supporting_points, now)
        if info is None or info.pricing == 0:
            tuples = [replace(t, charging_schedule=replace(t.charging_schedule, price_level_schedule=None)) for t in tuples]
        ctx.schedule_tuples = tuples
        ctx.tuple_schedules = {t.schedule_tuple_id: s for t, s in zip(tuples, schedules)}
        return Reply(m.ScheduleExchangeRes(header=_H, response_code=_OK, evse_processing=m.Processing.Finished,
                                           scheduled_se_res_control_mode=m.Scheduled_SEResControlMode(schedule_tuple=tuples)),
                     next_state)
    ctx.schedule_tuples, ctx.tuple_schedules = [], {}
    return Reply(m.ScheduleExchangeRes(header=_H, response_code=_OK, evse_processing=m.Processing.Finished,
                                       dynamic_se_res_control_mode=m.Dynamic_SEResControlMode()),
                 next_state)


# --------------------------------------------------------------------------- #
# DC preparation                                                               #
# --------------------------------------------------------------------------- #


def _dc_target(ctx: Iso20Context, voltage_v: float, current_a: float) -> None:
    """Pass a DC target on to the power electronics when it changed (0.1 A / 1 V steps)."""
    target = (round(float(voltage_v)), round(float(current_a), 1))
    if ctx.dc_target is None or (round(ctx.dc_target[0]), round(ctx.dc_target[1], 1)) != target:
        ctx.dc_target = (float(voltage_v), float(current_a))
        ctx.notify(SetDcTarget, voltage_v=float(voltage_v), current_a=float(current_a))


def dc_cable_check(ctx: Iso20Context, req: m.DC_CableCheckReq, now: float) -> Reply:
    voltage = min(ctx.ev_limits.max_voltage_v or ctx.status.max_voltage_v, ctx.status.max_voltage_v)
    ctx.request("cable_check", StartCableCheck, voltage_v=voltage)
    result = ctx.result("cable_check")
    if result is None:
        if ctx.ongoing_expired("cable_check", now, ctx.config.timers.cable_check_limit):
            return _fail(ctx, req, "FAILED", "the isolation check did not finish in time")
        return Reply(m.DC_CableCheckRes(header=_H, response_code=_OK, evse_processing=m.Processing.Ongoing))
    if not isinstance(result, StartCableCheckResult) or result.isolation in (Isolation.Fault, Isolation.Invalid):
        what = result.isolation.value if isinstance(result, StartCableCheckResult) else getattr(result, "reason", "failed")
        return _fail(ctx, req, "FAILED", f"isolation check: {what}")
    return Reply(m.DC_CableCheckRes(header=_H, response_code=_OK, evse_processing=m.Processing.Finished),
                 State.WAIT_FOR_PreChargeReq)


def dc_pre_charge(ctx: Iso20Context, req: m.DC_PreChargeReq, now: float) -> Reply:
    _dc_target(ctx, _f(req.ev_target_voltage) or 0.0, PRECHARGE_CURRENT_A)
    return Reply(m.DC_PreChargeRes(header=_H, response_code=_OK, evse_present_voltage=rn(ctx.status.present_voltage_v)),
                 State.WAIT_FOR_PowerDeliveryReq)


# --------------------------------------------------------------------------- #
# Power delivery                                                               #
# --------------------------------------------------------------------------- #


def _entry_at(entries: list, t: float) -> float | None:
    """The power of a PowerScheduleEntryList at ``t`` seconds (``None`` after its end)."""
    start = 0
    for e in entries:
        if start <= t < start + e.duration:
            return _f(e.power)
        start += e.duration
    return None


def _profile_problem(ctx: Iso20Context, req: m.PowerDeliveryReq) -> tuple[str, str] | None:
    """(code, reason) when the EV's power profile asks for what was not offered, else None.
    Discharging beyond what was offered (or at all without BPT) is refused; charging a few
    watts above a limit is refused only with ``strict_charging_profile`` (real cars do it,
    see the ISO 15118-2 core)."""
    profile = req.ev_power_profile
    if profile is None:
        return None
    chosen = None
    if profile.scheduled_evppt_control_mode is not None:
        chosen = next((t for t in ctx.schedule_tuples
                       if t.schedule_tuple_id == profile.scheduled_evppt_control_mode.selected_schedule_tuple_id), None)
    bpt, s = _bpt(ctx), ctx.status
    charge_entries = chosen.charging_schedule.power_schedule.power_schedule_entries.power_schedule_entry if chosen else []
    discharge_entries = (chosen.discharging_schedule.power_schedule.power_schedule_entries.power_schedule_entry
                         if chosen is not None and chosen.discharging_schedule is not None else [])
    t = 0
    for e in profile.ev_power_profile_entries.ev_power_profile_entry:
        power = _sum3(e.power, e.power_l2, e.power_l3) or 0.0
        if power < 0:
            if not bpt:
                return "FAILED_EVPowerProfileInvalid", f"EVPowerProfile discharges {-power:.0f} W at {t} s in a session without BPT"
            allowed = s.max_discharge_power_w
            if chosen is not None:
                offered = _entry_at(discharge_entries, t)
                allowed = min(allowed, abs(offered) if offered is not None else 0.0)
            if -power > allowed + 1.0:
                return "FAILED_EVPowerProfileInvalid", f"EVPowerProfile discharges {-power:.0f} W at {t} s, {allowed:.0f} W allowed"
        elif chosen is not None:
            offered = _entry_at(charge_entries, t)
            if offered is not None and power > offered + 1.0:
                problem = f"EVPowerProfile charges {power:.0f} W at {t} s over the offered {offered:.0f} W"
                if ctx.config.strict_charging_profile:
                    return "FAILED_EVPowerProfileInvalid", problem
                ctx.log.warning("session %s: %s", ctx.session_id.hex(), problem)
        t += e.duration
    return None


def _pd_res(ctx: Iso20Context, code: m.ResponseCode = _OK) -> m.PowerDeliveryRes:
    return m.PowerDeliveryRes(header=_H, response_code=code, evse_status=evse_status(ctx))


def _report_profile(ctx: Iso20Context, req: m.PowerDeliveryReq, tuple_id: int) -> None:
    entries, t = [], 0
    if req.ev_power_profile is not None:
        for e in req.ev_power_profile.ev_power_profile_entries.ev_power_profile_entry:
            entries.append(ProfileEntry(t, _sum3(e.power, e.power_l2, e.power_l3) or 0.0))
            t += e.duration
    ctx.notify(ReportEvChargingSchedule, sa_schedule_tuple_id=tuple_id, entries=tuple(entries))


def power_delivery(ctx: Iso20Context, req: m.PowerDeliveryReq, now: float) -> Reply | Hold:
    progress = req.charge_progress
    in_loop = ctx.energy_flowing
    timeout = _timeout(ctx, "PowerDeliveryReq")
    if req.ev_processing is not m.Processing.Finished and progress is m.ChargeProgress.Start:
        return Reply(_pd_res(ctx))  # the EV is still preparing; it asks again
    if progress is m.ChargeProgress.Start:
        if in_loop and not (ctx.renegotiating or ctx.standby):
            return _fail(ctx, req, "FAILED_SequenceError", "PowerDelivery Start while charging")
        tuple_id = 0
        if _scheduled(ctx):
            profile = req.ev_power_profile
            mode = profile.scheduled_evppt_control_mode if profile is not None else None
            offered = [t.schedule_tuple_id for t in ctx.schedule_tuples]
            if mode is None:
                if len(offered) != 1:
                    return _fail(ctx, req, "FAILED_ScheduleSelectionInvalid", "no ScheduleTuple selected")
                tuple_id = offered[0]
            elif mode.selected_schedule_tuple_id not in offered:
                return _fail(ctx, req, "FAILED_ScheduleSelectionInvalid",
                             f"ScheduleTupleID {mode.selected_schedule_tuple_id} was not offered")
            else:
                tuple_id = mode.selected_schedule_tuple_id
        problem = _profile_problem(ctx, req)
        if problem is not None:
            return _fail(ctx, req, problem[0], problem[1])
        if "close_contactor" not in ctx.ids:  # once per PowerDeliveryReq (a held request is re-run)
            _report_profile(ctx, req, tuple_id)
        if not ctx.contactor_closed:
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
        ctx.renegotiating = ctx.standby = False
        if ctx.notification in ("ReNegotiation", "ExitStandby"):
            ctx.notification = "None"
        ctx.sa_schedule_tuple_id = tuple_id or None
        return Reply(_pd_res(ctx), State.WAIT_FOR_ChargeLoopReq)

    if progress is m.ChargeProgress.ScheduleRenegotiation:
        if not in_loop:
            return _fail(ctx, req, "FAILED_SequenceError", "PowerDelivery ScheduleRenegotiation outside the charge loop")
        ctx.renegotiating = True
        if ctx.notification == "ReNegotiation":
            ctx.notification = "None"
        return Reply(_pd_res(ctx), State.WAIT_FOR_ScheduleExchangeReq)

    if progress is m.ChargeProgress.Standby:
        if not in_loop:
            return _fail(ctx, req, "FAILED_SequenceError", "PowerDelivery Standby outside the charge loop")
        if not ctx.config.iso20.standby_allowed:
            return Reply(_pd_res(ctx, m.ResponseCode.WARNING_StandbyNotAllowed))  # the EV goes on charging
        ctx.standby = True
        if ctx.dc and ctx.dc_target is not None:
            _dc_target(ctx, ctx.dc_target[0], 0.0)
        return Reply(_pd_res(ctx))

    # Stop
    if ctx.contactor_closed:
        if ctx.dc_target is not None and ctx.dc_target != (0.0, 0.0):
            ctx.dc_target = (0.0, 0.0)
            ctx.notify(SetDcTarget, voltage_v=0.0, current_a=0.0)
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
    ctx.standby = ctx.renegotiating = False
    if ctx.notification != "StopCharging":
        ctx.notification = "None"
    return Reply(_pd_res(ctx), State.WAIT_FOR_WeldingDetectionReq if ctx.dc else State.WAIT_FOR_SessionStopReq)


# --------------------------------------------------------------------------- #
# The charge loops                                                             #
# --------------------------------------------------------------------------- #


def _current_schedule(ctx: Iso20Context, now: float):
    """(schedule, period) in force now: the selected tuple's (scheduled) or the first (dynamic)."""
    if not ctx.schedules or ctx.schedule_t0 is None:
        return None, None
    if _scheduled(ctx):
        schedule = ctx.tuple_schedules.get(ctx.sa_schedule_tuple_id or 0)
    else:
        schedule = ctx.schedules[0]
    if schedule is None:
        return None, None
    return schedule, period_at(schedule, now - ctx.schedule_t0)


def _setpoint(ctx: Iso20Context, now: float) -> float | None:
    if ctx.setpoint is None or ctx.setpoint_at is None:
        return None
    if now - ctx.setpoint_at > ctx.config.timers.setpoint_validity:
        ctx.log.warning("session %s: setpoint %.0f W expired; the schedule applies again", ctx.session_id.hex(),
                        ctx.setpoint.power_w)
        ctx.setpoint = ctx.setpoint_at = None
        return None
    return ctx.setpoint.power_w


def _dynamic_target(ctx: Iso20Context, now: float, voltage_v: float) -> float:
    """The power dynamic control sends now (0 in standby), clamped into the window; a
    clamped request is logged once per distinct (request, window)."""
    if ctx.standby:
        return 0.0
    schedule, period = _current_schedule(ctx, now)
    setpoint = _setpoint(ctx, now)
    win = window(ctx.ev_limits, ctx.status, dc=ctx.dc, bpt=_bpt(ctx), phases=_phases(ctx), voltage_v=voltage_v,
                 schedule=schedule, period=period, discharge_ordered=setpoint is not None)
    result = steer(win, setpoint_w=setpoint, schedule=schedule, period=period, voltage_v=voltage_v, phases=_phases(ctx))
    ctx.last_steer = result
    if result.clamped:
        key = (round(result.requested_w), round(win.lo_w), round(win.hi_w))
        if key != ctx.clamp_logged:
            ctx.clamp_logged = key
            ctx.log.warning("session %s: %s %.0f W is outside [%.0f, %.0f] W (EV, EVSE and schedule); sending %.0f W",
                            ctx.session_id.hex(), result.source, result.requested_w, win.lo_w, win.hi_w, result.target_w)
    return result.target_w


def _loop_status(ctx: Iso20Context, now: float) -> tuple[m.EVSEStatus | None, bool]:
    """EVSEStatus for a charge-loop response and whether it asks for MeteringConfirmation
    (Plug & Charge with a meter: at the start of the loop, then every interval)."""
    if ctx.notification in ("StopCharging", "ReNegotiation"):
        return evse_status(ctx), False
    meter = ctx.status.meter
    if (ctx.payment is PaymentOption.Contract and ctx.config.metering_receipts and meter is not None
            and ctx.receipt_due is not None and now >= ctx.receipt_due):
        ctx.receipt_due = now + ctx.config.timers.metering_receipt_interval
        saved, ctx.notification = ctx.notification, "MeteringConfirmation"
        status = evse_status(ctx)
        ctx.notification = saved
        return status, True
    return evse_status(ctx), False


def _ev_soc(ctx: Iso20Context, display: m.DisplayParameters | None) -> None:
    soc = display.present_soc if display is not None else None
    if soc is not None and soc != ctx.soc:
        ctx.soc = soc
        ctx.notify(ReportEvStatus, soc=soc)


def _control_mode_problem(ctx: Iso20Context, mode: Any, family: str) -> str | None:
    scheduled, bpt = _scheduled(ctx), _bpt(ctx)
    expected = f"{'BPT_' if bpt else ''}{'Scheduled' if scheduled else 'Dynamic'}_{family}_CLReqControlMode"
    if type(mode).__name__ != expected:
        return f"{type(mode).__name__} does not fit the selected service ({expected} expected)"
    return None


def ac_charge_loop(ctx: Iso20Context, req: m.AC_ChargeLoopReq, now: float) -> Reply:
    mode = req.cl_req_control_mode
    problem = _control_mode_problem(ctx, mode, "AC")
    if problem is not None:
        return _fail(ctx, req, "FAILED", problem)
    _ev_soc(ctx, req.display_parameters)
    limits: dict[str, float | None] = dict(
        max_charge_w=_sum3(getattr(mode, "ev_maximum_charge_power", None), getattr(mode, "ev_maximum_charge_power_l2", None),
                           getattr(mode, "ev_maximum_charge_power_l3", None)),
        min_charge_w=_sum3(getattr(mode, "ev_minimum_charge_power", None), getattr(mode, "ev_minimum_charge_power_l2", None),
                           getattr(mode, "ev_minimum_charge_power_l3", None)),
    )
    if _bpt(ctx):
        dis = _sum3(getattr(mode, "ev_maximum_discharge_power", None), getattr(mode, "ev_maximum_discharge_power_l2", None),
                    getattr(mode, "ev_maximum_discharge_power_l3", None))
        limits["max_discharge_w"] = None if dis is None else abs(dis)
    ctx.ev_limits = ctx.ev_limits.merged(**limits)
    s = ctx.status
    present = s.present_voltage_v * s.present_current_a * _phases(ctx)
    status, receipt = _loop_status(ctx, now)
    bpt = _bpt(ctx)
    if _scheduled(ctx):
        cls = m.BPT_Scheduled_AC_CLResControlMode if bpt else m.Scheduled_AC_CLResControlMode
        res_mode: Any = cls(evse_present_active_power=rn(present))
    else:
        target = _dynamic_target(ctx, now, s.nominal_voltage_v)
        cls = m.BPT_Dynamic_AC_CLResControlMode if bpt else m.Dynamic_AC_CLResControlMode
        res_mode = cls(evse_target_active_power=rn_limit(target), evse_present_active_power=rn(present))
    return Reply(m.AC_ChargeLoopRes(
        header=_H, response_code=_OK, evse_status=status,
        meter_info=meter_info(ctx) if (req.meter_info_requested or receipt) else None,
        evse_target_frequency=None, cl_res_control_mode=res_mode,
    ))


def dc_charge_loop(ctx: Iso20Context, req: m.DC_ChargeLoopReq, now: float) -> Reply:
    mode = req.cl_req_control_mode
    problem = _control_mode_problem(ctx, mode, "DC")
    if problem is not None:
        return _fail(ctx, req, "FAILED", problem)
    _ev_soc(ctx, req.display_parameters)
    bpt, s = _bpt(ctx), ctx.status
    limits: dict[str, float | None] = dict(
        max_charge_w=_f(getattr(mode, "ev_maximum_charge_power", None)), min_charge_w=_f(getattr(mode, "ev_minimum_charge_power", None)),
        max_charge_a=_f(getattr(mode, "ev_maximum_charge_current", None)), max_voltage_v=_f(getattr(mode, "ev_maximum_voltage", None)),
        min_voltage_v=_f(getattr(mode, "ev_minimum_voltage", None)),
    )
    if bpt:
        for name, field_name in (("max_discharge_w", "ev_maximum_discharge_power"), ("min_discharge_w", "ev_minimum_discharge_power"),
                                 ("max_discharge_a", "ev_maximum_discharge_current")):
            value = _f(getattr(mode, field_name, None))
            limits[name] = None if value is None else abs(value)
    ctx.ev_limits = ctx.ev_limits.merged(**limits)
    ev_voltage = _f(req.ev_present_voltage) or s.present_voltage_v
    current_limit = power_limit = voltage_limit = False
    if _scheduled(ctx):
        target_v = _f(mode.ev_target_voltage) or 0.0
        if ctx.standby:
            current = 0.0
        else:
            schedule, period = _current_schedule(ctx, now)
            win = window(ctx.ev_limits, s, dc=True, bpt=bpt, phases=1, voltage_v=max(target_v, 1.0),
                         schedule=schedule, period=period)
            held = dc_scheduled_target(_f(mode.ev_target_current) or 0.0, target_v, win, s, bpt=bpt)
            current, current_limit, power_limit, voltage_limit = held.current_a, held.current_limit, held.power_limit, held.voltage_limit
        _dc_target(ctx, target_v, current)
        fields = dict(evse_maximum_charge_power=rn_limit(s.max_power_w), evse_maximum_charge_current=rn_limit(s.max_current_a),
                      evse_maximum_voltage=rn_limit(s.max_voltage_v))
        if bpt:
            res_mode: Any = m.BPT_Scheduled_DC_CLResControlMode(
                **fields, evse_maximum_discharge_power=rn_limit(s.max_discharge_power_w),
                evse_maximum_discharge_current=rn_limit(s.max_discharge_current_a), evse_minimum_voltage=rn(s.min_voltage_v))
        else:
            res_mode = m.Scheduled_DC_CLResControlMode(**fields)
    else:
        target = _dynamic_target(ctx, now, ev_voltage)
        _dc_target(ctx, ev_voltage, target / ev_voltage if ev_voltage > 0 else 0.0)
        win = ctx.last_steer
        power_limit = win is not None and win.clamped
        charge = max(0.0, target)
        fields = dict(
            evse_maximum_charge_power=rn_limit(charge), evse_minimum_charge_power=rn(min(s.min_power_w, charge)),
            evse_maximum_charge_current=rn_limit(s.max_current_a), evse_maximum_voltage=rn_limit(s.max_voltage_v),
        )
        if bpt:
            discharge = max(0.0, -target)
            res_mode = m.BPT_Dynamic_DC_CLResControlMode(
                **fields, evse_maximum_discharge_power=rn_limit(discharge),
                evse_minimum_discharge_power=rn(min(s.min_discharge_power_w, discharge)),
                evse_maximum_discharge_current=rn_limit(s.max_discharge_current_a), evse_minimum_voltage=rn(s.min_voltage_v),
            )
        else:
            res_mode = m.Dynamic_DC_CLResControlMode(**fields)
    status, receipt = _loop_status(ctx, now)
    return Reply(m.DC_ChargeLoopRes(
        header=_H, response_code=_OK, evse_status=status,
        meter_info=meter_info(ctx) if (req.meter_info_requested or receipt) else None,
        evse_present_current=rn(s.present_current_a), evse_present_voltage=rn(s.present_voltage_v),
        evse_power_limit_achieved=power_limit, evse_current_limit_achieved=current_limit,
        evse_voltage_limit_achieved=voltage_limit, cl_res_control_mode=res_mode,
    ))


def metering_confirmation(ctx: Iso20Context, req: m.MeteringConfirmationReq, now: float) -> Reply | Hold:
    data = req.signed_metering_data
    if data.session_id != ctx.session_id:
        return _fail(ctx, req, "FAILED", "SignedMeteringData names another SessionID")
    if ctx.payment is PaymentOption.Contract:
        if "metering_signature" not in ctx.ids and not _signed(ctx.request_message, data):
            return _fail(ctx, req, "FAILED_MeteringSignatureNotValid", "SignedMeteringData is not signed")
        ctx.request("metering_signature", VerifyMeteringReceiptSignature, schema="iso20-common",
                    message=ctx.request_message, certificate=ctx.contract_leaf or b"")
        result = ctx.result("metering_signature")
        if result is None:
            return Hold(ctx.hold_deadline(_timeout(ctx, "MeteringConfirmationReq")),
                        _fail(ctx, req, "FAILED", "the signature check did not finish in time"))
        ctx.restart("metering_signature")
        if not (isinstance(result, VerifyMeteringReceiptSignatureResult) and result.valid):
            return _fail(ctx, req, "FAILED_MeteringSignatureNotValid", getattr(result, "reason", "") or "bad signature")
    ctx.received_receipts += 1
    return Reply(m.MeteringConfirmationRes(header=_H, response_code=_OK))


def dc_welding_detection(ctx: Iso20Context, req: m.DC_WeldingDetectionReq, now: float) -> Reply:
    return Reply(m.DC_WeldingDetectionRes(header=_H, response_code=_OK, evse_present_voltage=rn(ctx.status.present_voltage_v)),
                 State.WAIT_FOR_WeldingDetectionReq)


def session_stop(ctx: Iso20Context, req: m.SessionStopReq, now: float) -> Reply:
    res = m.SessionStopRes(header=_H, response_code=_OK)
    what = req.charging_session
    detail = " ".join(x for x in (req.ev_termination_code, req.ev_termination_explanation) if x)
    if what is m.ChargingSession.ServiceRenegotiation:
        if not ctx.config.iso20.service_renegotiation:
            return _fail(ctx, req, "FAILED_NoServiceRenegotiationSupported", "service renegotiation is not offered")
        ctx.service = ctx.parameter_set = None
        ctx.schedules, ctx.schedule_tuples, ctx.tuple_schedules, ctx.schedule_t0 = (), [], {}, None
        ctx.renegotiating = ctx.standby = False
        ctx.notification = "None"
        return Reply(res, State.WAIT_FOR_ServiceDiscoveryReq)
    if what is m.ChargingSession.Pause:
        if not ctx.config.iso20.pause_allowed:
            return _fail(ctx, req, "FAILED_PauseNotAllowed", "pausing is not allowed at this EVSE")
        resume = ResumeContext(
            schema="iso20", session_id=ctx.session_id, evcc_id=ctx.evcc_id,
            payment=ctx.payment or PaymentOption.ExternalPayment, energy_transfer_mode=ctx.energy_mode,
            sa_schedule_tuple_id=ctx.sa_schedule_tuple_id, emaid=ctx.emaid, authorized=ctx.authorized,
        )
        return Reply(res, State.STOPPED, close=True, reason="the EV paused the session", resume=resume)
    return Reply(res, State.STOPPED, close=True, reason=f"the EV ended the session{': ' + detail if detail else ''}",
                 stop_reason=StopReason.Local)


HANDLERS = {
    m.SessionSetupReq: session_setup,
    m.AuthorizationSetupReq: authorization_setup,
    m.AuthorizationReq: authorization,
    m.CertificateInstallationReq: certificate_installation,
    m.ServiceDiscoveryReq: service_discovery,
    m.ServiceDetailReq: service_detail,
    m.ServiceSelectionReq: service_selection,
    m.AC_ChargeParameterDiscoveryReq: ac_charge_parameter_discovery,
    m.DC_ChargeParameterDiscoveryReq: dc_charge_parameter_discovery,
    m.ScheduleExchangeReq: schedule_exchange,
    m.DC_CableCheckReq: dc_cable_check,
    m.DC_PreChargeReq: dc_pre_charge,
    m.PowerDeliveryReq: power_delivery,
    m.AC_ChargeLoopReq: ac_charge_loop,
    m.DC_ChargeLoopReq: dc_charge_loop,
    m.MeteringConfirmationReq: metering_confirmation,
    m.DC_WeldingDetectionReq: dc_welding_detection,
    m.SessionStopReq: session_stop,
}
