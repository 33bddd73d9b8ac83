"""DIN SPEC 70121 request handlers (DC charging, EIM): one pure function per request type.

Rules of this module: as ``iso2/_handlers.py``. DIN 70121 differences handled here:
ExternalPayment only (ContractAuthentication is the EIM authorization step), DC only,
PowerDelivery says ``ReadyToChargeState`` true/false, no renegotiation, no pause, no
MeteringReceipt, and the DIN 70121 response codes (``FAILED_WrongEnergyTransferType``,
no ``FAILED_ContactorError``: a contactor that does not follow is
``FAILED_PowerDeliveryNotApplied``).
"""

from __future__ import annotations

from typing import Any

from pnc_bridge.messages import din as m
from pnc_bridge.secc._core import Context, Hold, Reply
from pnc_bridge.secc._helpers import authorized, dc_target, ev_status, value
from pnc_bridge.secc.din._responses import NEGATIVE, dc_evse_charge_parameter, dc_evse_status, pv
from pnc_bridge.secc.din._state import State
from pnc_bridge.secc.effects import (
    AuthorizeExternalPayment,
    AuthorizeExternalPaymentResult,
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
    StartCableCheck,
    StartCableCheckResult,
    StopReason,
)
from pnc_bridge.secc.schedule import to_din_sa_schedule_list

__all__ = ["HANDLERS", "supported_energy_transfer"]

_OK = m.ResponseCode.OK
CHARGE_SERVICE_ID = 1

#: what the EVSE announces in ServiceDiscoveryRes for its first DC mode
_SUPPORTED = {
    EnergyTransferMode.DC_core: m.EVSESupportedEnergyTransfer.DC_core,
    EnergyTransferMode.DC_extended: m.EVSESupportedEnergyTransfer.DC_extended,
    EnergyTransferMode.DC_combo_core: m.EVSESupportedEnergyTransfer.DC_combo_core,
    EnergyTransferMode.DC_unique: m.EVSESupportedEnergyTransfer.DC_core,
}


def _dc_modes(ctx: Context) -> tuple[EnergyTransferMode, ...]:
    return tuple(mode for mode in ctx.config.energy_transfer_modes if mode.is_dc)


def supported_energy_transfer(ctx: Context) -> m.EVSESupportedEnergyTransfer:
    modes = _dc_modes(ctx)
    return _SUPPORTED[modes[0]] if modes else m.EVSESupportedEnergyTransfer.DC_core


def _fail(ctx: Context, req: Any, code: str, reason: str, stop: StopReason = StopReason.Other) -> Reply:
    return Reply(NEGATIVE[type(req)](ctx, req, m.ResponseCode(code)), State.STOPPED, close=True,
                 reason=f"{code}: {reason}", stop_reason=stop)


def _timeout(ctx: Context, name: str) -> float:
    return ctx.config.timers.msg_timeouts_din.get(name, 2.0)


def session_setup(ctx: Context, req: m.SessionSetupReq, now: float) -> Reply:
    session_id = ctx.config.random_bytes(8)
    while not any(session_id):
        session_id = ctx.config.random_bytes(8)
    ctx.session_id = session_id
    ctx.evcc_id = req.evccid
    return Reply(
        m.SessionSetupRes(response_code=m.ResponseCode.OK_NewSessionEstablished, evseid=ctx.config.din_evse_id,
                          date_time_now=ctx.unix_time(now)),
        State.WAIT_FOR_ServiceDiscoveryReq,
    )


def service_discovery(ctx: Context, req: m.ServiceDiscoveryReq, now: float) -> Reply:
    if not _dc_modes(ctx):
        return _fail(ctx, req, "FAILED", "this EVSE offers no DC charging (DIN 70121 is DC only)")
    if PaymentOption.ExternalPayment not in ctx.config.payment_options:
        return _fail(ctx, req, "FAILED", "DIN 70121 needs ExternalPayment, which this EVSE does not offer")
    ctx.offered_payment = (PaymentOption.ExternalPayment,)
    ctx.offered_service_ids = (CHARGE_SERVICE_ID,)
    return Reply(
        m.ServiceDiscoveryRes(
            response_code=_OK,
            payment_options=m.PaymentOptions(payment_option=[m.PaymentOption.ExternalPayment]),
            charge_service=m.ServiceCharge(
                service_tag=m.ServiceTag(service_id=CHARGE_SERVICE_ID, service_category=m.ServiceCategory.EVCharging),
                free_service=ctx.config.free_service,
                energy_transfer_type=supported_energy_transfer(ctx),
            ),
        ),
        State.WAIT_FOR_ServicePaymentSelectionReq,
    )


def service_payment_selection(ctx: Context, req: m.ServicePaymentSelectionReq, now: float) -> Reply:
    if req.selected_payment_option is not m.PaymentOption.ExternalPayment:
        return _fail(ctx, req, "FAILED_PaymentSelectionInvalid", f"{req.selected_payment_option.value} was not offered")
    ids = [s.service_id for s in req.selected_service_list.selected_service]
    if CHARGE_SERVICE_ID not in ids or any(i not in ctx.offered_service_ids for i in ids):
        return _fail(ctx, req, "FAILED_ServiceSelectionInvalid", f"services {ids} (offered: {list(ctx.offered_service_ids)})")
    ctx.payment = PaymentOption.ExternalPayment
    ctx.request("eim", AuthorizeExternalPayment, evcc_id=ctx.evcc_id.hex())
    return Reply(m.ServicePaymentSelectionRes(response_code=_OK), State.WAIT_FOR_ContractAuthenticationReq)


def contract_authentication(ctx: Context, req: m.ContractAuthenticationReq, now: float) -> Reply:
    if ctx.authorized:
        return Reply(m.ContractAuthenticationRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished),
                     State.WAIT_FOR_ChargeParameterDiscoveryReq)
    ctx.request("eim", AuthorizeExternalPayment, evcc_id=ctx.evcc_id.hex())
    result = ctx.result("eim")
    if result is None:
        if ctx.ongoing_expired("eim", now, ctx.config.timers.ongoing_limit):
            return _fail(ctx, req, "FAILED", "no authorization within the Ongoing limit", StopReason.DeAuthorized)
        return Reply(m.ContractAuthenticationRes(response_code=_OK, evse_processing=m.EVSEProcessing.Ongoing))
    if not (isinstance(result, AuthorizeExternalPaymentResult) and result.accepted):
        return _fail(ctx, req, "FAILED", f"authorization refused: {getattr(result, 'reason', '')}", StopReason.DeAuthorized)
    authorized(ctx)
    return Reply(m.ContractAuthenticationRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished),
                 State.WAIT_FOR_ChargeParameterDiscoveryReq)


def _sa_schedule_list(ctx: Context, result: Any) -> m.SAScheduleList:
    status, needs = ctx.status, ctx.needs
    voltage = min(needs.max_voltage_v or status.max_voltage_v, status.max_voltage_v)
    schedules = list(result.schedules) if isinstance(result, GetChargingScheduleResult) else []
    return to_din_sa_schedule_list(schedules, voltage_v=voltage, fallback_power_w=status.max_power_w)


def charge_parameter_discovery(ctx: Context, req: m.ChargeParameterDiscoveryReq, now: float) -> Reply:
    try:
        mode = EnergyTransferMode(req.ev_requested_energy_transfer_type.value)
    except ValueError:  # pragma: no cover - same enumeration
        return _fail(ctx, req, "FAILED_WrongEnergyTransferType", "unknown energy transfer type")
    if mode not in _dc_modes(ctx):
        return _fail(ctx, req, "FAILED_WrongEnergyTransferType", f"{mode.value} is not offered")
    p = req.ev_charge_parameter
    if not isinstance(p, m.DC_EVChargeParameter):
        return _fail(ctx, req, "FAILED_WrongChargeParameter", f"{type(p).__name__} for DC charging")
    ctx.energy_mode = mode
    ev_status(ctx, p.dc_ev_status)
    ctx.needs = EvChargingNeeds(
        energy_transfer_mode=mode, energy_request_wh=value(p.ev_energy_request),
        energy_capacity_wh=value(p.ev_energy_capacity), max_current_a=value(p.ev_maximum_current_limit),
        max_voltage_v=value(p.ev_maximum_voltage_limit), max_power_w=value(p.ev_maximum_power_limit),
        soc=p.dc_ev_status.evresssoc, full_soc=p.full_soc, bulk_soc=p.bulk_soc,
    )
    ctx.request("schedule", GetChargingSchedule, needs=ctx.needs)
    result = ctx.result("schedule")
    if result is None and not ctx.ongoing_expired("schedule", now, ctx.config.timers.ongoing_limit):
        # SASchedules is mandatory in DIN 70121 even while Ongoing: the EVSE's own limit
        return Reply(m.ChargeParameterDiscoveryRes(
            response_code=_OK, evse_processing=m.EVSEProcessing.Ongoing, sa_schedules=_sa_schedule_list(ctx, None),
            evse_charge_parameter=dc_evse_charge_parameter(ctx)))
    if not isinstance(result, GetChargingScheduleResult):
        ctx.log.warning("session %s: no charging schedule; offering the EVSE's own limits", ctx.session_id.hex())
    ctx.sa_schedules = _sa_schedule_list(ctx, result)
    ctx.restart("schedule")
    return Reply(
        m.ChargeParameterDiscoveryRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished,
                                      sa_schedules=ctx.sa_schedules, evse_charge_parameter=dc_evse_charge_parameter(ctx)),
        State.WAIT_FOR_CableCheckReq,
    )


def cable_check(ctx: Context, req: m.CableCheckReq, now: float) -> Reply:
    ev_status(ctx, req.dc_ev_status)
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
    # DIN 70121 has no No_IMD: an EVSE without an isolation monitor reports Valid
    isolation = m.IsolationLevel.Warning if result.isolation is Isolation.Warning else m.IsolationLevel.Valid
    return Reply(
        m.CableCheckRes(response_code=_OK, evse_processing=m.EVSEProcessing.Finished,
                        dc_evse_status=dc_evse_status(ctx, isolation=isolation, code="EVSE_Ready")),
        State.WAIT_FOR_PreChargeReq,
    )


def pre_charge(ctx: Context, req: m.PreChargeReq, now: float) -> Reply:
    ev_status(ctx, req.dc_ev_status)
    dc_target(ctx, req.ev_target_voltage, req.ev_target_current)
    return Reply(m.PreChargeRes(response_code=_OK, dc_evse_status=dc_evse_status(ctx),
                                evse_present_voltage=pv(ctx.status.present_voltage_v, "V")),
                 State.WAIT_FOR_PowerDeliveryReq)


def power_delivery(ctx: Context, req: m.PowerDeliveryReq, now: float) -> Reply | Hold:
    timeout = _timeout(ctx, "PowerDeliveryReq")
    parameter = req.ev_power_delivery_parameter
    if isinstance(parameter, m.DC_EVPowerDeliveryParameter):
        ev_status(ctx, parameter.dc_ev_status)
    if req.ready_to_charge_state:
        if ctx.energy_flowing:
            return _fail(ctx, req, "FAILED_SequenceError", "PowerDelivery ReadyToChargeState=true while charging")
        tuples = ctx.sa_schedules.sa_schedule_tuple if ctx.sa_schedules is not None else []
        wanted = req.charging_profile.sa_schedule_tuple_id if req.charging_profile else (tuples[0].sa_schedule_tuple_id if tuples else None)
        if not any(t.sa_schedule_tuple_id == wanted for t in tuples):
            return _fail(ctx, req, "FAILED_TariffSelectionInvalid", f"SAScheduleTupleID {wanted} was not offered")
        if "close_contactor" not in ctx.ids:
            entries = tuple(ProfileEntry(e.charging_profile_entry_start, float(e.charging_profile_entry_max_power))
                            for e in (req.charging_profile.profile_entry if req.charging_profile else []))
            ctx.notify(ReportEvChargingSchedule, sa_schedule_tuple_id=wanted, entries=entries)
        ctx.request("close_contactor", CloseContactor)
        result = ctx.result("close_contactor")
        if result is None:
            return Hold(ctx.hold_deadline(timeout),
                        _fail(ctx, req, "FAILED_PowerDeliveryNotApplied", "contactors did not close in time"))
        ctx.restart("close_contactor")
        if not (isinstance(result, CloseContactorResult) and result.closed):
            return _fail(ctx, req, "FAILED_PowerDeliveryNotApplied", getattr(result, "reason", "") or "contactors did not close")
        ctx.contactor_closed = True
        ctx.energy_flowing = True
        ctx.notification = "None"
        ctx.sa_schedule_tuple_id = wanted
        ctx.notify(ReportChargingState, state=ChargingState.Charging)
        return Reply(m.PowerDeliveryRes(response_code=_OK, evse_status=dc_evse_status(ctx)), State.WAIT_FOR_CurrentDemandReq)
    if ctx.contactor_closed:
        if ctx.dc_target is not None:
            dc_target(ctx, None, None)
        ctx.request("open_contactor", OpenContactor)
        result = ctx.result("open_contactor")
        if result is None:
            return Hold(ctx.hold_deadline(timeout),
                        _fail(ctx, req, "FAILED_PowerDeliveryNotApplied", "contactors did not open in time"))
        ctx.restart("open_contactor")
        if not (isinstance(result, OpenContactorResult) and result.opened):
            return _fail(ctx, req, "FAILED_PowerDeliveryNotApplied", getattr(result, "reason", "") or "contactors did not open")
        ctx.contactor_closed = ctx.contactor_maybe_closed = False
    if ctx.energy_flowing:
        ctx.energy_flowing = False
        ctx.notify(ReportChargingState, state=ChargingState.EVConnected)
    ctx.notification = "None"
    return Reply(m.PowerDeliveryRes(response_code=_OK, evse_status=dc_evse_status(ctx)), State.WAIT_FOR_WeldingDetectionReq)


def current_demand(ctx: Context, req: m.CurrentDemandReq, now: float) -> Reply:
    ev_status(ctx, req.dc_ev_status)
    dc_target(ctx, req.ev_target_voltage, req.ev_target_current)
    status = ctx.status
    target_v, target_i = ctx.dc_target or (0.0, 0.0)
    return Reply(m.CurrentDemandRes(
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
    ))


def welding_detection(ctx: Context, req: m.WeldingDetectionReq, now: float) -> Reply:
    ev_status(ctx, req.dc_ev_status)
    return Reply(m.WeldingDetectionRes(response_code=_OK, dc_evse_status=dc_evse_status(ctx),
                                       evse_present_voltage=pv(ctx.status.present_voltage_v, "V")))


def session_stop(ctx: Context, req: m.SessionStop, now: float) -> Reply:
    return Reply(m.SessionStopRes(response_code=_OK), State.STOPPED, close=True, reason="the EV ended the session",
                 stop_reason=StopReason.Local)


def _not_din_dc(ctx: Context, req: Any, now: float) -> Reply:
    # never reached: these requests are in no state's EXPECTED set
    return _fail(ctx, req, "FAILED_SequenceError", f"{type(req).__name__} is not part of DIN 70121 DC charging")


HANDLERS = {
    m.SessionSetupReq: session_setup,
    m.ServiceDiscoveryReq: service_discovery,
    m.ServicePaymentSelectionReq: service_payment_selection,
    m.ContractAuthenticationReq: contract_authentication,
    m.ChargeParameterDiscoveryReq: charge_parameter_discovery,
    m.CableCheckReq: cable_check,
    m.PreChargeReq: pre_charge,
    m.PowerDeliveryReq: power_delivery,
    m.CurrentDemandReq: current_demand,
    m.WeldingDetectionReq: welding_detection,
    m.SessionStop: session_stop,
    m.ServiceDetailReq: _not_din_dc,
    m.PaymentDetailsReq: _not_din_dc,
    m.ChargingStatusReq: _not_din_dc,
    m.MeteringReceiptReq: _not_din_dc,
    m.CertificateInstallationReq: _not_din_dc,
    m.CertificateUpdateReq: _not_din_dc,
}
