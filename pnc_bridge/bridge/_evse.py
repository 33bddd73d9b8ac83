"""The EVSE port: the SECC's hardware effects through ``pnc_bridge.evse.EvseDriver``, and
the status snapshot the SECC answers from.

Rules of this module:

- Contactors, isolation check and DC target go to the driver. A DC output closes at the
  first pre-charge target (the EV's battery voltage must be on the cable before the EV
  closes its side at PowerDelivery Start) and opens at OpenContactor; a driver that cannot do what
  was asked raises ``EvseFault``, which becomes the result the protocol names (contactor not
  closed, ``Isolation.Fault``), never an exception in the session.
- :meth:`EvsePort.status` reads present values, limits and the meter into the SECC's
  :class:`~pnc_bridge.secc.EvseStatus`; the V2G endpoint pushes one at a fixed interval and
  this port pushes one right after every change it made, so a CurrentDemandRes carries the
  output that follows the EV's target.
- With the simulator, the bridge plays the EV's side of the wire the simulator cannot see:
  an AC EV draws the EVSE's maximum current once the contactors are closed; an ISO 15118-20
  AC EV draws what its charge loop shows (``simulated_ac_ev_power``), both ways.
- Both power directions (ISO 15118-20 BPT), signs as OCPP: a negative DC target current is
  a discharge, given to a ``BidirectionalEvseDriver`` as a signed power setpoint
  (``set_setpoint``); a positive one clears it and goes to ``set_target``. The status
  carries the driver's discharge limits (0 for an EVSE that cannot discharge) and the
  meter's export register.
"""

from __future__ import annotations

import logging

from pnc_bridge.evse import EvseFault, IsolationResult
from pnc_bridge.secc import EvseStatus, MeterReading
from pnc_bridge.secc.effects import (
    CloseContactor,
    CloseContactorResult,
    Isolation,
    OpenContactor,
    OpenContactorResult,
    SetDcTarget,
    StartCableCheck,
    StartCableCheckResult,
)

__all__ = ["EvsePort", "simulated_ac_ev_power"]

log = logging.getLogger("pnc_bridge.bridge")

_ISOLATION = {
    IsolationResult.Valid: Isolation.Valid,
    IsolationResult.Warning: Isolation.Warning,
    IsolationResult.Invalid: Isolation.Invalid,
    IsolationResult.Fault: Isolation.Fault,
}
#: AC nominal voltage (phase to neutral) reported to AC EVs.
AC_NOMINAL_VOLTAGE = 230.0


class EvsePort:
    """Fulfils CloseContactor, OpenContactor, StartCableCheck and SetDcTarget."""

    def __init__(self, meter_id_prefix: str) -> None:
        self.meter_id_prefix = meter_id_prefix

    async def status(self, ctx) -> EvseStatus:
        driver = ctx.driver
        limits = driver.limits()
        present = await driver.present_values()
        reading = await driver.read_meter(signed=False)
        dc = ctx.section.supply_phases == 0
        bidirectional = limits.max_discharge_power_w > 0
        return EvseStatus(
            present_voltage_v=present.voltage_v,
            present_current_a=present.current_a,
            max_current_a=limits.max_current_a,
            max_power_w=limits.max_power_w,
            max_voltage_v=limits.max_voltage_v,
            min_current_a=limits.min_current_a,
            min_voltage_v=limits.min_voltage_v,
            nominal_voltage_v=AC_NOMINAL_VOLTAGE,
            current_regulation_tolerance_a=1.0 if dc else None,
            peak_current_ripple_a=1.0 if dc else 0.0,
            isolation=ctx.isolation,
            meter=MeterReading(f"{self.meter_id_prefix}-{ctx.evse_id}", reading.energy_import_wh, status=0,
                               timestamp=int(reading.timestamp.timestamp()),
                               discharged_energy_wh=reading.energy_export_wh if bidirectional else None),
            max_discharge_power_w=limits.max_discharge_power_w,
            max_discharge_current_a=limits.max_discharge_current_a,
        )

    async def push_status(self, ctx) -> None:
        adapter = ctx.adapter
        if adapter is not None:
            adapter.update_evse_status(await self.status(ctx))

    async def close_contactor(self, effect: CloseContactor, ctx) -> CloseContactorResult:
        try:
            await ctx.driver.set_contactors(True)
        except EvseFault as exc:
            log.error("EVSE %d: contactors did not close: %s", ctx.evse_id, exc)
            return CloseContactorResult(effect.id, closed=False, reason=str(exc))
        ctx.output_closed = True
        if ctx.simulated and ctx.section.supply_phases:
            ctx.driver.demand(ctx.driver.limits().max_current_a)
        await self.push_status(ctx)
        return CloseContactorResult(effect.id, closed=True)

    async def open_contactor(self, effect: OpenContactor, ctx) -> OpenContactorResult:
        try:
            await ctx.driver.set_contactors(False)
        except EvseFault as exc:
            log.error("EVSE %d: contactors did not open: %s", ctx.evse_id, exc)
            return OpenContactorResult(effect.id, opened=False, reason=str(exc))
        ctx.output_closed = False
        await self.push_status(ctx)
        return OpenContactorResult(effect.id, opened=True)

    async def start_cable_check(self, effect: StartCableCheck, ctx) -> StartCableCheckResult:
        try:
            result = await ctx.driver.isolation_check(effect.voltage_v)
        except EvseFault as exc:
            log.error("EVSE %d: isolation check failed: %s", ctx.evse_id, exc)
            ctx.isolation = Isolation.Fault
            return StartCableCheckResult(effect.id, isolation=Isolation.Fault, reason=str(exc))
        ctx.isolation = _ISOLATION[IsolationResult(result)]
        if ctx.isolation not in (Isolation.Valid, Isolation.Warning):
            log.warning("EVSE %d: isolation check at %.0f V: %s", ctx.evse_id, effect.voltage_v, ctx.isolation.value)
        await self.push_status(ctx)
        return StartCableCheckResult(effect.id, isolation=ctx.isolation)

    async def set_dc_target(self, effect: SetDcTarget, ctx) -> None:
        if effect.voltage_v > 0 and not ctx.output_closed:
            # DC pre-charge: the EVSE's output must carry the EV's battery voltage before the
            # EV closes its own contactors (PowerDelivery Start, where CloseContactor confirms it)
            try:
                await ctx.driver.set_contactors(True)
                ctx.output_closed = True
            except EvseFault as exc:
                log.error("EVSE %d: output contactors did not close for pre-charge: %s", ctx.evse_id, exc)
        driver = ctx.driver
        set_setpoint = getattr(driver, "set_setpoint", None)
        if effect.current_a < 0:
            if set_setpoint is None:
                log.error("EVSE %d: the session asked to discharge %.1f A; the driver is not bidirectional",
                          ctx.evse_id, -effect.current_a)
                await driver.set_target(effect.voltage_v, 0.0)
            else:
                await set_setpoint(effect.voltage_v * effect.current_a)
        else:
            if set_setpoint is not None:
                await set_setpoint(None)
            await driver.set_target(effect.voltage_v, effect.current_a)
        await self.push_status(ctx)


def simulated_ac_ev_power(step) -> float | None:
    """With the simulator, the AC power a -20 EV draws (signed W) as the session shows it: in
    dynamic control the EV follows EVSETargetActivePower of the response; in scheduled
    control it says what it draws (EVPresentActivePower of the request). None for anything
    else. The real meter sees this by itself; the simulator has to be told."""
    from pnc_bridge.secc.schedule import from_rational

    response = step.response
    if type(response).__name__ == "AC_ChargeLoopRes":
        target = getattr(response.cl_res_control_mode, "evse_target_active_power", None)
        if target is not None:
            return from_rational(target)
        request = step.request
        present = getattr(getattr(request, "cl_req_control_mode", None), "ev_present_active_power", None)
        if present is not None:
            return from_rational(present)
    return None
