"""The bridge's one table: effect type -> async fulfiller (docs/style.md 2.3).

Rules of this module:

- :func:`fulfiller_table` is built once at start-up from the three ports (PKI, OCPP, EVSE);
  every protocol's session core (DIN 70121, ISO 15118-2, later -20) is served by the same
  table, because every core speaks the one effect vocabulary of ``pnc_bridge.secc.effects``.
- A fulfiller takes the effect and the EVSE's :class:`EvseContext` and returns the result
  value (``None`` for notifications). It never touches the session.
- :meth:`Bridge.fulfil_for` is what a ``SeccAdapter`` calls. An effect type without a
  fulfiller is answered ``EffectFailed`` (requests) or logged (notifications), so a newer core
  with effects this bridge does not know yet fails in protocol terms, never with a traceback.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from pnc_bridge.bridge._evse import EvsePort
from pnc_bridge.bridge._ocpp import OcppPort
from pnc_bridge.bridge._pki import PkiPort
from pnc_bridge.secc.effects import (
    AuthorizeExternalPayment,
    AuthorizeWithCsms,
    CloseContactor,
    Effect,
    EffectFailed,
    EffectResult,
    GetChargingSchedule,
    OpenContactor,
    ReportChargingState,
    ReportEvChargingSchedule,
    ReportEvStatus,
    Request,
    RequestEvCertificate,
    SetDcTarget,
    StartCableCheck,
    StartTransaction,
    StopTransaction,
    ValidateContractChain,
    VerifyAuthorizationSignature,
    VerifyMeteringReceiptSignature,
)

__all__ = ["Bridge", "Fulfiller", "fulfiller_table"]

log = logging.getLogger("pnc_bridge.bridge")

Fulfiller = Callable[[Effect, object], Awaitable[EffectResult | None]]


def fulfiller_table(pki: PkiPort, ocpp: OcppPort, evse: EvsePort) -> dict[type[Effect], Fulfiller]:
    return {
        # PKI
        ValidateContractChain: pki.validate_contract_chain,
        VerifyAuthorizationSignature: pki.verify_authorization_signature,
        VerifyMeteringReceiptSignature: pki.verify_metering_receipt_signature,
        # OCPP
        AuthorizeWithCsms: ocpp.authorize_with_csms,
        AuthorizeExternalPayment: ocpp.authorize_external_payment,
        RequestEvCertificate: ocpp.request_ev_certificate,
        GetChargingSchedule: ocpp.get_charging_schedule,
        ReportEvChargingSchedule: ocpp.report_ev_charging_schedule,
        StartTransaction: ocpp.start_transaction,
        StopTransaction: ocpp.stop_transaction,
        ReportChargingState: ocpp.report_charging_state,
        ReportEvStatus: ocpp.report_ev_status,
        # EVSE driver
        CloseContactor: evse.close_contactor,
        OpenContactor: evse.open_contactor,
        StartCableCheck: evse.start_cable_check,
        SetDcTarget: evse.set_dc_target,
    }


class Bridge:
    """Effect fulfilment for every EVSE of the station."""

    def __init__(self, table: dict[type[Effect], Fulfiller]) -> None:
        self.table = dict(table)

    def fulfil_for(self, ctx: object) -> Callable[[Effect], Awaitable[EffectResult | None]]:
        """The ``fulfil`` callable of the SECC adapters of the EVSE ``ctx``."""
        table = self.table

        async def fulfil(effect: Effect) -> EffectResult | None:
            handler = table.get(type(effect))
            if handler is None:
                log.error("no fulfiller for %s", type(effect).__name__)
                return EffectFailed(effect.id, f"{type(effect).__name__} is not supported by this bridge") \
                    if isinstance(effect, Request) else None
            return await handler(effect, ctx)

        return fulfil
