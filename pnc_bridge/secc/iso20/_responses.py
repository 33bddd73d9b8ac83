"""ISO 15118-20 response building blocks: the minimal negative response of every request
type, the response codes each response may carry, EVSEStatus and MeterInfo.

Rules of this module:

- ``NEGATIVE[request type](ctx, request, code)`` builds the smallest schema-valid response
  with that code: mandatory fields only, filled from the session's present EVSE status
  where they describe it. The table is built once at import.
- ``ALLOWED_CODES[response type]`` lists the codes a response of that type can carry: the
  generic ones (OK, FAILED, FAILED_SequenceError, FAILED_UnknownSession) plus those this
  core sends for that message; AuthorizationRes follows the list Josev quotes from the
  standard's Table 224. It is our contract with the EV, and tests hold every response
  the core sends to it. (No requirement id was checked against the standard's text.)
- Headers are added by the session (``Iso20Session._envelope``): SessionID and TimeStamp.
"""

from __future__ import annotations

from typing import Any, Callable

from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc._core import Context
from pnc_bridge.secc.schedule import rational_number

__all__ = ["ALLOWED_CODES", "NEGATIVE", "RESPONSE_OF", "evse_status", "meter_info", "rn", "rn_limit"]

_HEADER = m.MessageHeader(session_id=bytes(8), time_stamp=0)  # replaced by the session's envelope


def rn(value: float) -> m.RationalNumber:
    """A measurement as a RationalNumber (rounded to nearest)."""
    return rational_number(value)


def rn_limit(value: float) -> m.RationalNumber:
    """A limit as a RationalNumber (rounded toward zero: never more than allowed)."""
    return rational_number(value, toward_zero=True)


#: session notification (shared with the other cores) -> ISO 15118-20 EVSENotification
_NOTIFICATION = {
    "StopCharging": m.EvseNotification.Terminate,
    "ReNegotiation": m.EvseNotification.ScheduleRenegotiation,
    "MeteringConfirmation": m.EvseNotification.MeteringConfirmation,
    "ExitStandby": m.EvseNotification.ExitStandby,
}


def evse_status(ctx: Context) -> m.EVSEStatus | None:
    """EVSEStatus when there is something to notify (-20 has no ``None`` notification:
    the element is left out instead)."""
    notification = _NOTIFICATION.get(ctx.notification)
    if notification is None:
        return None
    return m.EVSEStatus(notification_max_delay=max(0, min(65535, ctx.status.notification_max_delay)),
                        evse_notification=notification)


def meter_info(ctx: Context) -> m.MeterInfo | None:
    meter = ctx.status.meter
    if meter is None:
        return None
    discharged = meter.discharged_energy_wh
    return m.MeterInfo(
        meter_id=meter.meter_id[:32],
        charged_energy_reading_wh=max(0, int(meter.energy_wh)),
        bpt_discharged_energy_reading_wh=None if discharged is None else max(0, int(discharged)),
        meter_signature=None if meter.signature is None else meter.signature[:64],
        meter_status=meter.status,
        meter_timestamp=meter.timestamp,
    )


def _first_service_id(ctx: Context) -> int:
    dc = getattr(ctx, "dc", True)
    services = [s for s in ctx.config.iso20.services if s.is_dc == dc] or list(ctx.config.iso20.services)
    return services[0].service_id if services else (2 if dc else 1)


def _ac_cpd(ctx: Context, bpt: bool) -> m.AC_CPDResEnergyTransferMode:
    s = ctx.status
    fields = dict(
        evse_maximum_charge_power=rn_limit(s.max_power_w), evse_minimum_charge_power=rn(s.min_power_w),
        evse_nominal_frequency=rn(s.nominal_frequency_hz),
    )
    if bpt:
        return m.BPT_AC_CPDResEnergyTransferMode(
            **fields, evse_maximum_discharge_power=rn_limit(s.max_discharge_power_w),
            evse_minimum_discharge_power=rn(s.min_discharge_power_w),
        )
    return m.AC_CPDResEnergyTransferMode(**fields)


def _dc_cpd(ctx: Context, bpt: bool) -> m.DC_CPDResEnergyTransferMode:
    s = ctx.status
    fields = dict(
        evse_maximum_charge_power=rn_limit(s.max_power_w), evse_minimum_charge_power=rn(s.min_power_w),
        evse_maximum_charge_current=rn_limit(s.max_current_a), evse_minimum_charge_current=rn(s.min_current_a),
        evse_maximum_voltage=rn_limit(s.max_voltage_v), evse_minimum_voltage=rn(s.min_voltage_v),
    )
    if bpt:
        return m.BPT_DC_CPDResEnergyTransferMode(
            **fields, evse_maximum_discharge_power=rn_limit(s.max_discharge_power_w),
            evse_minimum_discharge_power=rn(s.min_discharge_power_w),
            evse_maximum_discharge_current=rn_limit(s.max_discharge_current_a),
            evse_minimum_discharge_current=rn(s.min_discharge_current_a),
        )
    return m.DC_CPDResEnergyTransferMode(**fields)


def ac_cpd_res_mode(ctx: Context, bpt: bool) -> m.AC_CPDResEnergyTransferMode:
    return _ac_cpd(ctx, bpt)


def dc_cpd_res_mode(ctx: Context, bpt: bool) -> m.DC_CPDResEnergyTransferMode:
    return _dc_cpd(ctx, bpt)


_EMPTY_CERT = b""
_Builder = Callable[[Context, Any, m.ResponseCode], Any]

NEGATIVE: dict[type, _Builder] = {
    m.SessionSetupReq: lambda ctx, req, code: m.SessionSetupRes(header=_HEADER, response_code=code, evseid=ctx.config.evse_id),
    m.AuthorizationSetupReq: lambda ctx, req, code: m.AuthorizationSetupRes(
        header=_HEADER, response_code=code, authorization_services=[m.Authorization.EIM],
        certificate_installation_service=False, eim_asres_authorization_mode=m.EIM_ASResAuthorizationMode(),
    ),
    m.AuthorizationReq: lambda ctx, req, code: m.AuthorizationRes(
        header=_HEADER, response_code=code, evse_processing=m.Processing.Finished
    ),
    m.CertificateInstallationReq: lambda ctx, req, code: m.CertificateInstallationRes(
        header=_HEADER, response_code=code, evse_processing=m.Processing.Finished,
        cps_certificate_chain=m.CertificateChain(certificate=_EMPTY_CERT),
        signed_installation_data=m.SignedInstallationData(
            id="ID1",
            contract_certificate_chain=m.ContractCertificateChain(
                certificate=_EMPTY_CERT, sub_certificates=m.SubCertificates(certificate=[_EMPTY_CERT])),
            ecdh_curve=m.EcdhCurve.SECP521, dh_public_key=bytes(133), secp521_encrypted_private_key=bytes(94),
        ),
        remaining_contract_certificate_chains=0,
    ),
    m.ServiceDiscoveryReq: lambda ctx, req, code: m.ServiceDiscoveryRes(
        header=_HEADER, response_code=code, service_renegotiation_supported=False,
        energy_transfer_service_list=m.ServiceList(service=[m.Service(service_id=_first_service_id(ctx), free_service=ctx.config.free_service)]),
    ),
    m.ServiceDetailReq: lambda ctx, req, code: m.ServiceDetailRes(
        header=_HEADER, response_code=code, service_id=req.service_id,
        service_parameter_list=m.ServiceParameterList(parameter_set=[
            m.ParameterSet(parameter_set_id=1, parameter=[m.Parameter(name="ControlMode", int_value=1)])]),
    ),
    m.ServiceSelectionReq: lambda ctx, req, code: m.ServiceSelectionRes(header=_HEADER, response_code=code),
    m.AC_ChargeParameterDiscoveryReq: lambda ctx, req, code: m.AC_ChargeParameterDiscoveryRes(
        header=_HEADER, response_code=code,
        ac_cpd_res_energy_transfer_mode=_ac_cpd(ctx, isinstance(req.ac_cpd_req_energy_transfer_mode, m.BPT_AC_CPDReqEnergyTransferMode)),
    ),
    m.DC_ChargeParameterDiscoveryReq: lambda ctx, req, code: m.DC_ChargeParameterDiscoveryRes(
        header=_HEADER, response_code=code,
        dc_cpd_res_energy_transfer_mode=_dc_cpd(ctx, isinstance(req.dc_cpd_req_energy_transfer_mode, m.BPT_DC_CPDReqEnergyTransferMode)),
    ),
    m.ScheduleExchangeReq: lambda ctx, req, code: m.ScheduleExchangeRes(
        header=_HEADER, response_code=code, evse_processing=m.Processing.Finished,
        dynamic_se_res_control_mode=m.Dynamic_SEResControlMode(),
    ),
    m.DC_CableCheckReq: lambda ctx, req, code: m.DC_CableCheckRes(
        header=_HEADER, response_code=code, evse_processing=m.Processing.Finished
    ),
    m.DC_PreChargeReq: lambda ctx, req, code: m.DC_PreChargeRes(
        header=_HEADER, response_code=code, evse_present_voltage=rn(ctx.status.present_voltage_v)
    ),
    m.PowerDeliveryReq: lambda ctx, req, code: m.PowerDeliveryRes(header=_HEADER, response_code=code),
    m.AC_ChargeLoopReq: lambda ctx, req, code: m.AC_ChargeLoopRes(
        header=_HEADER, response_code=code, cl_res_control_mode=m.Scheduled_AC_CLResControlMode()
    ),
    m.DC_ChargeLoopReq: lambda ctx, req, code: m.DC_ChargeLoopRes(
        header=_HEADER, response_code=code, evse_present_current=rn(ctx.status.present_current_a),
        evse_present_voltage=rn(ctx.status.present_voltage_v), evse_power_limit_achieved=False,
        evse_current_limit_achieved=False, evse_voltage_limit_achieved=False,
        cl_res_control_mode=m.Scheduled_DC_CLResControlMode(),
    ),
    m.MeteringConfirmationReq: lambda ctx, req, code: m.MeteringConfirmationRes(header=_HEADER, response_code=code),
    m.DC_WeldingDetectionReq: lambda ctx, req, code: m.DC_WeldingDetectionRes(
        header=_HEADER, response_code=code, evse_present_voltage=rn(ctx.status.present_voltage_v)
    ),
    m.SessionStopReq: lambda ctx, req, code: m.SessionStopRes(header=_HEADER, response_code=code),
}

RESPONSE_OF: dict[type, type] = {
    m.SessionSetupReq: m.SessionSetupRes,
    m.AuthorizationSetupReq: m.AuthorizationSetupRes,
    m.AuthorizationReq: m.AuthorizationRes,
    m.CertificateInstallationReq: m.CertificateInstallationRes,
    m.ServiceDiscoveryReq: m.ServiceDiscoveryRes,
    m.ServiceDetailReq: m.ServiceDetailRes,
    m.ServiceSelectionReq: m.ServiceSelectionRes,
    m.AC_ChargeParameterDiscoveryReq: m.AC_ChargeParameterDiscoveryRes,
    m.DC_ChargeParameterDiscoveryReq: m.DC_ChargeParameterDiscoveryRes,
    m.ScheduleExchangeReq: m.ScheduleExchangeRes,
    m.DC_CableCheckReq: m.DC_CableCheckRes,
    m.DC_PreChargeReq: m.DC_PreChargeRes,
    m.PowerDeliveryReq: m.PowerDeliveryRes,
    m.AC_ChargeLoopReq: m.AC_ChargeLoopRes,
    m.DC_ChargeLoopReq: m.DC_ChargeLoopRes,
    m.MeteringConfirmationReq: m.MeteringConfirmationRes,
    m.DC_WeldingDetectionReq: m.DC_WeldingDetectionRes,
    m.SessionStopReq: m.SessionStopRes,
}

_C = m.ResponseCode
_GENERIC = frozenset({_C.OK, _C.FAILED, _C.FAILED_SequenceError, _C.FAILED_UnknownSession})

ALLOWED_CODES: dict[type, frozenset[m.ResponseCode]] = {
    m.SessionSetupRes: frozenset({_C.OK_NewSessionEstablished, _C.OK_OldSessionJoined, _C.FAILED, _C.FAILED_SequenceError}),
    m.AuthorizationSetupRes: _GENERIC,
    # Table 224 as Josev quotes it, and FAILED_SignatureError (Josev and the xmldsig table)
    m.AuthorizationRes: _GENERIC | {
        _C.OK_CertificateExpiresSoon, _C.WARNING_CertificateExpired, _C.WARNING_CertificateNotYetValid,
        _C.WARNING_CertificateRevoked, _C.WARNING_CertificateValidationError, _C.WARNING_eMSPUnknown,
        _C.WARNING_GeneralPnCAuthorizationError, _C.WARNING_ChallengeInvalid, _C.WARNING_AuthorizationSelectionInvalid,
        _C.WARNING_EIMAuthorizationFailure, _C.FAILED_SignatureError,
    },
    m.CertificateInstallationRes: _GENERIC | {
        _C.OK_CertificateExpiresSoon, _C.WARNING_NoCertificateAvailable, _C.WARNING_CertificateValidationError,
        _C.WARNING_CertificateExpired, _C.WARNING_CertificateRevoked, _C.FAILED_SignatureError,
    },
    m.ServiceDiscoveryRes: _GENERIC,
    m.ServiceDetailRes: _GENERIC | {_C.FAILED_ServiceIDInvalid},
    m.ServiceSelectionRes: _GENERIC | {_C.FAILED_NoEnergyTransferServiceSelected, _C.FAILED_ServiceSelectionInvalid},
    m.AC_ChargeParameterDiscoveryRes: _GENERIC | {_C.FAILED_WrongChargeParameter},
    m.DC_ChargeParameterDiscoveryRes: _GENERIC | {_C.FAILED_WrongChargeParameter},
    m.ScheduleExchangeRes: _GENERIC | {_C.FAILED_WrongChargeParameter},
    m.DC_CableCheckRes: _GENERIC,
    m.DC_PreChargeRes: _GENERIC,
    m.PowerDeliveryRes: _GENERIC | {
        _C.FAILED_ScheduleSelectionInvalid, _C.FAILED_EVPowerProfileInvalid, _C.FAILED_ContactorError,
        _C.FAILED_PowerDeliveryNotApplied, _C.WARNING_StandbyNotAllowed,
    },
    m.AC_ChargeLoopRes: _GENERIC,
    m.DC_ChargeLoopRes: _GENERIC,
    m.MeteringConfirmationRes: _GENERIC | {_C.FAILED_MeteringSignatureNotValid},
    m.DC_WeldingDetectionRes: _GENERIC,
    m.SessionStopRes: _GENERIC | {_C.FAILED_NoServiceRenegotiationSupported, _C.FAILED_PauseNotAllowed},
}
