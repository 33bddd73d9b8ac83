"""Handler helpers shared by the DIN 70121 and ISO 15118-2 cores (protocol-neutral parts)."""

from __future__ import annotations

from typing import Any

from pnc_bridge.secc._core import Context
from pnc_bridge.secc.effects import PaymentOption, ReportEvStatus, SetDcTarget, StartTransaction

__all__ = ["authorized", "dc_target", "ev_status", "value"]


def value(p: Any) -> float | None:
    """A ``PhysicalValue`` (DIN or ISO 15118-2) as a float, ``None`` stays ``None``."""
    return None if p is None else p.value * (10.0**p.multiplier)


def authorized(ctx: Context) -> None:
    """The session may charge: record it and tell the bridge (StartTransaction)."""
    ctx.authorized = True
    ctx.transaction_started = True
    ctx.notify(
        StartTransaction, session_id=ctx.session_id.hex(), evcc_id=ctx.evcc_id.hex(), protocol=ctx.schema,
        payment=ctx.payment or PaymentOption.ExternalPayment, emaid=ctx.emaid, resumed=ctx.resumed,
    )


def ev_status(ctx: Context, status: Any) -> None:
    """Report the EV's DC_EVStatus (SoC, ready, error) when it changed."""
    if status is None:
        return
    snapshot = (status.ev_ready, status.ev_error_code.value, status.evresssoc)
    if snapshot != ctx.ev_status:
        ctx.ev_status = snapshot
        ctx.notify(ReportEvStatus, soc=status.evresssoc, ev_ready=status.ev_ready, error_code=status.ev_error_code.value)


def dc_target(ctx: Context, voltage: Any, current: Any) -> None:
    """Pass the EV's DC target on to the power electronics when it changed."""
    target = (float(value(voltage) or 0.0), max(0.0, float(value(current) or 0.0)))
    if target != ctx.dc_target:
        ctx.dc_target = target
        ctx.notify(SetDcTarget, voltage_v=target[0], current_a=target[1])
