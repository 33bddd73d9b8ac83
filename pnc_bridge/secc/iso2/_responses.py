"""ISO 15118-2 response building blocks: the minimal negative response of every request
type, the response codes each response may carry, and the EVSE status parts.

Rules of this module:

- ``NEGATIVE[request type](ctx, request, code)`` builds the smallest schema-valid response
  with that code ([V2G2-736]/[V2G2-538], as Josev quotes them): mandatory fields only, filled
  from the session's present EVSE status where they describe it. The table is built once at
  import.
- ``ALLOWED_CODES[response type]`` lists the codes a response of that type can carry
  (the generic ones plus those ISO 15118-2 names for the message). Tests hold every
  response the core sends to it.
"""

from __future__ import annotations

from typing import Any, Callable

from pnc_bridge.messages import iso2 as m
from pnc_bridge.secc._core import Context
from pnc_bridge.secc.schedule import physical_value

__all__ = [
    "ALLOWED_CODES",
    "NEGATIVE",
    "RESPONSE_OF",
    "ac_evse_charge_parameter",
    "ac_evse_status",
    "dc_evse_charge_parameter",
    "dc_evse_status",
    "meter_info",
    "pv",
]


def pv(value: float, unit: str, *, floor: bool = False) -> m.PhysicalValue:
    return physical_value(m, value, unit, floor=floor)


_NOTIFICATION = {n.value: n for n in m.EVSENotification}
_STATUS_CODE = {c.value: c for c in m.DC_EVSEStatusCode}
_ISOLATION = {i.value: i for i in m.IsolationLevel}


def _notification(ctx: Context) -> m.EVSENotification:
    return _NOTIFICATION[ctx.notification]


def ac_evse_status(ctx: Context) -> m.AC_EVSEStatus:
    return m.AC_EVSEStatus(
        notification_max_delay=max(0, min(65535, ctx.status.notification_max_delay)),
        evse_notification=_notification(ctx),
        rcd=ctx.status.rcd,
    )


def dc_evse_status(ctx: Context, *, isolation: m.IsolationLevel | None = None, code: str | None = None) -> m.DC_EVSEStatus:
    status = ctx.status
    if isolation is None and status.isolation is not None:
        isolation = _ISOLATION[status.isolation.value]
    return m.DC_EVSEStatus(
        notification_max_delay=max(0, min(65535, status.notification_max_delay)),
        evse_notification=_notification(ctx),
        evse_isolation_status=isolation,
        evse_status_code=_STATUS_CODE[code or status.status_code],
    )


def ac_evse_charge_parameter(ctx: Context) -> m.AC_EVSEChargeParameter:
    s = ctx.status
    return m.AC_EVSEChargeParameter(
        ac_evse_status=ac_evse_status(ctx),
        evse_nominal_voltage=pv(s.nominal_voltage_v, "V"),
        evse_max_current=pv(s.max_current_a, "A", floor=True),
    )


def dc_evse_charge_parameter(ctx: Context) -> m.DC_EVSEChargeParameter:
    s = ctx.status
    return m.DC_EVSEChargeParameter(
        dc_evse_status=dc_evse_status(ctx),
        evse_maximum_current_limit=pv(s.max_current_a, "A", floor=True),
        evse_maximum_power_limit=pv(s.max_power_w, "W", floor=True),
        evse_maximum_voltage_limit=pv(s.max_voltage_v, "V", floor=True),
        evse_minimum_current_limit=pv(s.min_current_a, "A"),
        evse_minimum_voltage_limit=pv(s.min_voltage_v, "V"),
        evse_current_regulation_tolerance=None
        if s.current_regulation_tolerance_a is None
        else pv(s.current_regulation_tolerance_a, "A"),
        evse_peak_current_ripple=pv(s.peak_current_ripple_a, "A"),
        evse_energy_to_be_delivered=None
        if s.energy_to_be_delivered_wh is None
        else pv(s.energy_to_be_delivered_wh, "Wh", floor=True),
    )


def meter_info(ctx: Context) -> m.MeterInfo | None:
    meter = ctx.status.meter
    if meter is None:
        return None
    return m.MeterInfo(
        meter_id=meter.meter_id[:32],
        meter_reading=max(0, int(meter.energy_wh)),
        sig_meter_reading=None if meter.signature is None else meter.signature[:64],
        meter_status=meter.status,
        t_meter=meter.timestamp,
    )


def _evse_status_for(ctx: Context) -> m.AC_EVSEStatus | m.DC_EVSEStatus:
    if ctx.energy_mode is not None and not ctx.energy_mode.is_dc:
        return ac_evse_status(ctx)
    if ctx.energy_mode is None and not any(mode.is_dc for mode in ctx.config.energy_transfer_modes):
        return ac_evse_status(ctx)
    return dc_evse_status(ctx)


def _present_voltage(ctx: Context) -> m.PhysicalValue:
    return pv(ctx.status.present_voltage_v, "V")


_EMPTY_CHAIN = m.CertificateChain(certificate=b"")
_ZERO_EMAID = "ZZ00000000000Z"  # 14 characters: the XSD's minimum length, no real EMAID

_Builder = Callable[[Context, Any, m.ResponseCode], Any]

NEGATIVE: dict[type, _Builder] = {
    m.SessionSetupReq: lambda ctx, req, code: m.SessionSetupRes(response_code=code, evseid=ctx.config.evse_id),
    m.ServiceDiscoveryReq: lambda ctx, req, code: m.ServiceDiscoveryRes(
        response_code=code,
        payment_option_list=m.PaymentOptionList(payment_option=[m.PaymentOption.ExternalPayment]),
        charge_service=m.ChargeService(
            service_id=1,
            service_category=m.ServiceCategory.EVCharging,
            free_service=ctx.config.free_service,
            supported_energy_transfer_mode=m.SupportedEnergyTransferMode(
                energy_transfer_mode=[m.EnergyTransferMode(ctx.config.energy_transfer_modes[0].value)]
            ),
        ),
    ),
    m.ServiceDetailReq: lambda ctx, req, code: m.ServiceDetailRes(response_code=code, service_id=req.service_id),
    m.PaymentServiceSelectionReq: lambda ctx, req, code: m.PaymentServiceSelectionRes(response_code=code),
    m.CertificateInstallationReq: lambda ctx, req, code: m.CertificateInstallationRes(
        response_code=code,
        sa_provisioning_certificate_chain=_EMPTY_CHAIN,
        contract_signature_cert_chain=_EMPTY_CHAIN,
        contract_signature_encrypted_private_key=m.ContractSignatureEncryptedPrivateKey(id="ID1", value=b""),
        dh_publickey=m.DiffieHellmanPublickey(id="ID2", value=b""),
        e_maid=m.EMAID(id="ID3", value=_ZERO_EMAID),
    ),
    m.CertificateUpdateReq: lambda ctx, req, code: m.CertificateUpdateRes(
        response_code=code,
        sa_provisioning_certificate_chain=_EMPTY_CHAIN,
        contract_signature_cert_chain=_EMPTY_CHAIN,
        contract_signature_encrypted_private_key=m.ContractSignatureEncryptedPrivateKey(id="ID1", value=b""),
        dh_publickey=m.DiffieHellmanPublickey(id="ID2", value=b""),
        e_maid=m.EMAID(id="ID3", value=_ZERO_EMAID),
    ),
    m.PaymentDetailsReq: lambda ctx, req, code: m.PaymentDetailsRes(
        response_code=code, gen_challenge=bytes(16), evse_time_stamp=ctx.unix_time(ctx.received_at)
    ),
    m.AuthorizationReq: lambda ctx, req, code: m.AuthorizationRes(
        response_code=code, evse_processing=m.EVSEProcessing.Finished
    ),
    m.ChargeParameterDiscoveryReq: lambda ctx, req, code: m.ChargeParameterDiscoveryRes(
        response_code=code,
        evse_processing=m.EVSEProcessing.Finished,
        evse_charge_parameter=ac_evse_charge_parameter(ctx)
        if isinstance(req.ev_charge_parameter, m.AC_EVChargeParameter)
        else dc_evse_charge_parameter(ctx),
    ),
    m.PowerDeliveryReq: lambda ctx, req, code: m.PowerDeliveryRes(response_code=code, evse_status=_evse_status_for(ctx)),
    m.ChargingStatusReq: lambda ctx, req, code: m.ChargingStatusRes(
        response_code=code,
        evseid=ctx.config.evse_id,
        sa_schedule_tuple_id=ctx.sa_schedule_tuple_id or 1,
        ac_evse_status=ac_evse_status(ctx),
    ),
    m.MeteringReceiptReq: lambda ctx, req, code: m.MeteringReceiptRes(response_code=code, evse_status=_evse_status_for(ctx)),
    m.CableCheckReq: lambda ctx, req, code: m.CableCheckRes(
        response_code=code, dc_evse_status=dc_evse_status(ctx), evse_processing=m.EVSEProcessing.Finished
    ),
    m.PreChargeReq: lambda ctx, req, code: m.PreChargeRes(
        response_code=code, dc_evse_status=dc_evse_status(ctx), evse_present_voltage=_present_voltage(ctx)
    ),
    m.CurrentDemandReq: lambda ctx, req, code: m.CurrentDemandRes(
        response_code=code,
        dc_evse_status=dc_evse_status(ctx),
        evse_present_voltage=_present_voltage(ctx),
        evse_present_current=pv(ctx.status.present_current_a, "A"),
        evse_current_limit_achieved=False,
        evse_voltage_limit_achieved=False,
        evse_power_limit_achieved=False,
        evseid=ctx.config.evse_id,
        sa_schedule_tuple_id=ctx.sa_schedule_tuple_id or 1,
    ),
    m.WeldingDetectionReq: lambda ctx, req, code: m.WeldingDetectionRes(
        response_code=code, dc_evse_status=dc_evse_status(ctx), evse_present_voltage=_present_voltage(ctx)
    ),
    m.SessionStopReq: lambda ctx, req, code: m.SessionStopRes(response_code=code),
}

RESPONSE_OF: dict[type, type] = {
    m.SessionSetupReq: m.SessionSetupRes,
    m.ServiceDiscoveryReq: m.ServiceDiscoveryRes,
    m.ServiceDetailReq: m.ServiceDetailRes,
    m.PaymentServiceSelectionReq: m.PaymentServiceSelectionRes,
    m.CertificateInstallationReq: m.CertificateInstallationRes,
    m.CertificateUpdateReq: m.CertificateUpdateRes,
    m.PaymentDetailsReq: m.PaymentDetailsRes,
    m.AuthorizationReq: m.AuthorizationRes,
    m.ChargeParameterDiscoveryReq: m.ChargeParameterDiscoveryRes,
    m.PowerDeliveryReq: m.PowerDeliveryRes,
    m.ChargingStatusReq: m.ChargingStatusRes,
    m.MeteringReceiptReq: m.MeteringReceiptRes,
    m.CableCheckReq: m.CableCheckRes,
    m.PreChargeReq: m.PreChargeRes,
    m.CurrentDemandReq: m.CurrentDemandRes,
    m.WeldingDetectionReq: m.WeldingDetectionRes,
    m.SessionStopReq: m.SessionStopRes,
}

_C = m.ResponseCode
_GENERIC = frozenset({_C.OK, _C.FAILED, _C.FAILED_SequenceError, _C.FAILED_UnknownSession})
_CERT = frozenset(
    {
        _C.FAILED_NoCertificateAvailable,
        _C.FAILED_CertChainError,
        _C.FAILED_SignatureError,
        _C.FAILED_ContractCanceled,
        _C.FAILED_CertificateExpired,
        _C.FAILED_CertificateRevoked,
    }
)

ALLOWED_CODES: dict[type, frozenset[m.ResponseCode]] = {
    m.SessionSetupRes: frozenset({_C.OK, _C.OK_NewSessionEstablished, _C.OK_OldSessionJoined, _C.FAILED, _C.FAILED_SequenceError}),
    m.ServiceDiscoveryRes: _GENERIC,
    m.ServiceDetailRes: _GENERIC | {_C.FAILED_ServiceIDInvalid},
    m.PaymentServiceSelectionRes: _GENERIC
    | {_C.FAILED_PaymentSelectionInvalid, _C.FAILED_ServiceSelectionInvalid, _C.FAILED_NoChargeServiceSelected},
    m.CertificateInstallationRes: _GENERIC | _CERT,
    m.CertificateUpdateRes: _GENERIC | _CERT,
    m.PaymentDetailsRes: _GENERIC
    | {
        _C.OK_CertificateExpiresSoon,
        _C.FAILED_CertChainError,
        _C.FAILED_CertificateExpired,
        _C.FAILED_CertificateRevoked,
        _C.FAILED_NoCertificateAvailable,
        _C.FAILED_ContractCanceled,
        _C.FAILED_CertificateNotAllowedAtThisEVSE,
    },
    m.AuthorizationRes: _GENERIC
    | {
        _C.FAILED_ChallengeInvalid,
        _C.FAILED_SignatureError,
        _C.FAILED_CertChainError,
        _C.FAILED_CertificateExpired,
        _C.FAILED_CertificateRevoked,
        _C.FAILED_NoCertificateAvailable,
        _C.FAILED_ContractCanceled,
    },
    m.ChargeParameterDiscoveryRes: _GENERIC | {_C.FAILED_WrongChargeParameter, _C.FAILED_WrongEnergyTransferMode},
    m.PowerDeliveryRes: _GENERIC
    | {
        _C.FAILED_ChargingProfileInvalid,
        _C.FAILED_TariffSelectionInvalid,
        _C.FAILED_PowerDeliveryNotApplied,
        _C.FAILED_ContactorError,
        _C.FAILED_WrongChargeParameter,
    },
    m.ChargingStatusRes: _GENERIC,
    m.MeteringReceiptRes: _GENERIC | {_C.FAILED_MeteringSignatureNotValid},
    m.CableCheckRes: _GENERIC,
    m.PreChargeRes: _GENERIC,
    m.CurrentDemandRes: _GENERIC,
    m.WeldingDetectionRes: _GENERIC,
    m.SessionStopRes: _GENERIC,
}
