"""DIN SPEC 70121 response building blocks: minimal negative responses, the codes each
response may carry, and the DC EVSE status parts. Same rules as ``iso2/_responses.py``."""

from __future__ import annotations

from typing import Any, Callable

from pnc_bridge.messages import din as m
from pnc_bridge.secc._core import Context
from pnc_bridge.secc.schedule import physical_value, to_din_sa_schedule_list

__all__ = ["ALLOWED_CODES", "NEGATIVE", "RESPONSE_OF", "dc_evse_charge_parameter", "dc_evse_status", "pv"]


def pv(value: float, unit: str, *, floor: bool = False) -> m.PhysicalValue:
    return physical_value(m, value, unit, floor=floor)


def dc_evse_status(ctx: Context, *, isolation: m.IsolationLevel | None = None, code: str | None = None) -> m.DC_EVSEStatus:
    status = ctx.status
    if isolation is None and status.isolation is not None and status.isolation.value in m.IsolationLevel.__members__:
        isolation = m.IsolationLevel(status.isolation.value)
    notification = m.EVSENotification.None_ if ctx.notification == "None" else m.EVSENotification(ctx.notification)
    return m.DC_EVSEStatus(
        evse_isolation_status=isolation,
        evse_status_code=m.DC_EVSEStatusCode(code or status.status_code),
        notification_max_delay=max(0, status.notification_max_delay),
        evse_notification=notification,
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


def _present_voltage(ctx: Context) -> m.PhysicalValue:
    return pv(ctx.status.present_voltage_v, "V")


def _charge_service(ctx: Context) -> m.ServiceCharge:
    from pnc_bridge.secc.din._handlers import supported_energy_transfer

    return m.ServiceCharge(
        service_tag=m.ServiceTag(service_id=1, service_category=m.ServiceCategory.EVCharging),
        free_service=ctx.config.free_service,
        energy_transfer_type=supported_energy_transfer(ctx),
    )


_Builder = Callable[[Context, Any, m.ResponseCode], Any]

NEGATIVE: dict[type, _Builder] = {
    m.SessionSetupReq: lambda ctx, req, code: m.SessionSetupRes(response_code=code, evseid=ctx.config.din_evse_id),
    m.ServiceDiscoveryReq: lambda ctx, req, code: m.ServiceDiscoveryRes(
        response_code=code,
        payment_options=m.PaymentOptions(payment_option=[m.PaymentOption.ExternalPayment]),
        charge_service=_charge_service(ctx),
    ),
    m.ServicePaymentSelectionReq: lambda ctx, req, code: m.ServicePaymentSelectionRes(response_code=code),
    m.ContractAuthenticationReq: lambda ctx, req, code: m.ContractAuthenticationRes(
        response_code=code, evse_processing=m.EVSEProcessing.Finished
    ),
    m.ChargeParameterDiscoveryReq: lambda ctx, req, code: m.ChargeParameterDiscoveryRes(
        response_code=code,
        evse_processing=m.EVSEProcessing.Finished,
        sa_schedules=to_din_sa_schedule_list([], voltage_v=ctx.status.max_voltage_v, fallback_power_w=0.0),
        evse_charge_parameter=dc_evse_charge_parameter(ctx),
    ),
    m.CableCheckReq: lambda ctx, req, code: m.CableCheckRes(
        response_code=code, dc_evse_status=dc_evse_status(ctx), evse_processing=m.EVSEProcessing.Finished
    ),
    m.PreChargeReq: lambda ctx, req, code: m.PreChargeRes(
        response_code=code, dc_evse_status=dc_evse_status(ctx), evse_present_voltage=_present_voltage(ctx)
    ),
    m.PowerDeliveryReq: lambda ctx, req, code: m.PowerDeliveryRes(response_code=code, evse_status=dc_evse_status(ctx)),
    m.CurrentDemandReq: lambda ctx, req, code: m.CurrentDemandRes(
        response_code=code,
        dc_evse_status=dc_evse_status(ctx),
        evse_present_voltage=_present_voltage(ctx),
        evse_present_current=pv(ctx.status.present_current_a, "A"),
        evse_current_limit_achieved=False,
        evse_voltage_limit_achieved=False,
        evse_power_limit_achieved=False,
    ),
    m.WeldingDetectionReq: lambda ctx, req, code: m.WeldingDetectionRes(
        response_code=code, dc_evse_status=dc_evse_status(ctx), evse_present_voltage=_present_voltage(ctx)
    ),
    m.SessionStop: lambda ctx, req, code: m.SessionStopRes(response_code=code),
    # part of the DIN XSD but not of DIN 70121 DC EIM charging: only ever answered negatively
    m.ServiceDetailReq: lambda ctx, req, code: m.ServiceDetailRes(response_code=code, service_id=req.service_id),
    m.PaymentDetailsReq: lambda ctx, req, code: m.PaymentDetailsRes(
        response_code=code, gen_challenge="", date_time_now=ctx.unix_time(ctx.received_at)
    ),
    m.ChargingStatusReq: lambda ctx, req, code: m.ChargingStatusRes(
        response_code=code, evseid=ctx.config.din_evse_id, sa_schedule_tuple_id=1, receipt_required=False,
        ac_evse_status=m.AC_EVSEStatus(power_switch_closed=False, rcd=False, notification_max_delay=0,
                                       evse_notification=m.EVSENotification.None_),
    ),
    m.MeteringReceiptReq: lambda ctx, req, code: m.MeteringReceiptRes(
        response_code=code,
        ac_evse_status=m.AC_EVSEStatus(power_switch_closed=False, rcd=False, notification_max_delay=0,
                                       evse_notification=m.EVSENotification.None_),
    ),
    m.CertificateInstallationReq: lambda ctx, req, code: m.CertificateInstallationRes(
        id="ID1", response_code=code, contract_signature_cert_chain=m.CertificateChain(certificate=b""),
        contract_signature_encrypted_private_key=b"", dh_params=b"", contract_id="",
    ),
    m.CertificateUpdateReq: lambda ctx, req, code: m.CertificateUpdateRes(
        id="ID1", response_code=code, contract_signature_cert_chain=m.CertificateChain(certificate=b""),
        contract_signature_encrypted_private_key=b"", dh_params=b"", contract_id="", retry_counter=0,
    ),
}

RESPONSE_OF: dict[type, type] = {
    m.SessionSetupReq: m.SessionSetupRes,
    m.ServiceDiscoveryReq: m.ServiceDiscoveryRes,
    m.ServicePaymentSelectionReq: m.ServicePaymentSelectionRes,
    m.ContractAuthenticationReq: m.ContractAuthenticationRes,
    m.ChargeParameterDiscoveryReq: m.ChargeParameterDiscoveryRes,
    m.CableCheckReq: m.CableCheckRes,
    m.PreChargeReq: m.PreChargeRes,
    m.PowerDeliveryReq: m.PowerDeliveryRes,
    m.CurrentDemandReq: m.CurrentDemandRes,
    m.WeldingDetectionReq: m.WeldingDetectionRes,
    m.SessionStop: m.SessionStopRes,
    m.ServiceDetailReq: m.ServiceDetailRes,
    m.PaymentDetailsReq: m.PaymentDetailsRes,
    m.ChargingStatusReq: m.ChargingStatusRes,
    m.MeteringReceiptReq: m.MeteringReceiptRes,
    m.CertificateInstallationReq: m.CertificateInstallationRes,
    m.CertificateUpdateReq: m.CertificateUpdateRes,
}

_C = m.ResponseCode
_GENERIC = frozenset({_C.OK, _C.FAILED, _C.FAILED_SequenceError, _C.FAILED_UnknownSession})
ALLOWED_CODES: dict[type, frozenset[m.ResponseCode]] = {
    m.SessionSetupRes: frozenset({_C.OK, _C.OK_NewSessionEstablished, _C.OK_OldSessionJoined, _C.FAILED, _C.FAILED_SequenceError}),
    m.ServiceDiscoveryRes: _GENERIC,
    m.ServicePaymentSelectionRes: _GENERIC | {_C.FAILED_PaymentSelectionInvalid, _C.FAILED_ServiceSelectionInvalid},
    m.ContractAuthenticationRes: _GENERIC,
    m.ChargeParameterDiscoveryRes: _GENERIC | {_C.FAILED_WrongChargeParameter, _C.FAILED_WrongEnergyTransferType},
    m.CableCheckRes: _GENERIC,
    m.PreChargeRes: _GENERIC,
    m.PowerDeliveryRes: _GENERIC
    | {_C.FAILED_ChargingProfileInvalid, _C.FAILED_TariffSelectionInvalid, _C.FAILED_PowerDeliveryNotApplied},
    m.CurrentDemandRes: _GENERIC,
    m.WeldingDetectionRes: _GENERIC,
    m.SessionStopRes: _GENERIC,
    m.ServiceDetailRes: _GENERIC,
    m.PaymentDetailsRes: _GENERIC,
    m.ChargingStatusRes: _GENERIC,
    m.MeteringReceiptRes: _GENERIC,
    m.CertificateInstallationRes: _GENERIC,
    m.CertificateUpdateRes: _GENERIC,
}
