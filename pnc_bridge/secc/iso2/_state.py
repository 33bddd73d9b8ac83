"""ISO 15118-2 SECC states and the requests each state expects.

Rules of this module:

- States are named for the request the SECC waits for (``WAIT_FOR_<Request>``), as the
  standard's sequence figures and EVerest's state ids do; ``EXPECTED`` is the whole
  sequence, AC and DC in one table (``DC_ONLY`` / ``AC_ONLY`` requests are filtered by the
  energy transfer mode the EV chose).
- ``allowed()`` is the one place a request is checked against the sequence; a miss is
  ``FAILED_SequenceError`` ([V2G2-538], as EVerest quotes it).
- SessionStopReq is allowed wherever no energy flows (it is not accepted inside the charge
  loop: the EV stops the power first with PowerDeliveryReq).
- ``diagram()`` derives the state diagram from the table (docs/secc.md shows it).
"""

from __future__ import annotations

from enum import Enum

from pnc_bridge.messages import iso2 as m

__all__ = ["AC_ONLY", "DC_ONLY", "EXPECTED", "State", "allowed", "diagram"]


class State(Enum):
    WAIT_FOR_SessionSetupReq = "WAIT_FOR_SessionSetupReq"
    WAIT_FOR_ServiceDiscoveryReq = "WAIT_FOR_ServiceDiscoveryReq"
    WAIT_FOR_PaymentServiceSelectionReq = "WAIT_FOR_PaymentServiceSelectionReq"
    WAIT_FOR_PaymentDetailsReq = "WAIT_FOR_PaymentDetailsReq"
    WAIT_FOR_AuthorizationReq = "WAIT_FOR_AuthorizationReq"
    WAIT_FOR_ChargeParameterDiscoveryReq = "WAIT_FOR_ChargeParameterDiscoveryReq"
    WAIT_FOR_CableCheckReq = "WAIT_FOR_CableCheckReq"
    WAIT_FOR_PreChargeReq = "WAIT_FOR_PreChargeReq"
    WAIT_FOR_PowerDeliveryReq = "WAIT_FOR_PowerDeliveryReq"
    WAIT_FOR_ChargingStatusReq = "WAIT_FOR_ChargingStatusReq"
    WAIT_FOR_CurrentDemandReq = "WAIT_FOR_CurrentDemandReq"
    WAIT_FOR_MeteringReceiptReq = "WAIT_FOR_MeteringReceiptReq"
    WAIT_FOR_WeldingDetectionReq = "WAIT_FOR_WeldingDetectionReq"
    WAIT_FOR_SessionStopReq = "WAIT_FOR_SessionStopReq"
    STOPPED = "STOPPED"


EXPECTED: dict[State, frozenset[type]] = {
    State.WAIT_FOR_SessionSetupReq: frozenset({m.SessionSetupReq}),
    State.WAIT_FOR_ServiceDiscoveryReq: frozenset({m.ServiceDiscoveryReq, m.SessionStopReq}),
    State.WAIT_FOR_PaymentServiceSelectionReq: frozenset(
        {m.ServiceDetailReq, m.PaymentServiceSelectionReq, m.SessionStopReq}
    ),
    # Contract: the EV may install or update its certificate first
    State.WAIT_FOR_PaymentDetailsReq: frozenset(
        {m.PaymentDetailsReq, m.CertificateInstallationReq, m.CertificateUpdateReq, m.SessionStopReq}
    ),
    State.WAIT_FOR_AuthorizationReq: frozenset({m.AuthorizationReq, m.SessionStopReq}),
    State.WAIT_FOR_ChargeParameterDiscoveryReq: frozenset({m.ChargeParameterDiscoveryReq, m.SessionStopReq}),
    State.WAIT_FOR_CableCheckReq: frozenset({m.CableCheckReq, m.SessionStopReq}),
    State.WAIT_FOR_PreChargeReq: frozenset({m.PreChargeReq, m.SessionStopReq}),
    State.WAIT_FOR_PowerDeliveryReq: frozenset({m.PowerDeliveryReq, m.PreChargeReq, m.SessionStopReq}),
    State.WAIT_FOR_ChargingStatusReq: frozenset({m.ChargingStatusReq, m.PowerDeliveryReq}),
    State.WAIT_FOR_CurrentDemandReq: frozenset({m.CurrentDemandReq, m.PowerDeliveryReq}),
    State.WAIT_FOR_MeteringReceiptReq: frozenset({m.MeteringReceiptReq}),
    State.WAIT_FOR_WeldingDetectionReq: frozenset({m.WeldingDetectionReq, m.SessionStopReq}),
    State.WAIT_FOR_SessionStopReq: frozenset({m.SessionStopReq}),
    State.STOPPED: frozenset(),
}

DC_ONLY = frozenset({m.CableCheckReq, m.PreChargeReq, m.CurrentDemandReq, m.WeldingDetectionReq})
AC_ONLY = frozenset({m.ChargingStatusReq})


def allowed(state: State, request_type: type, dc: bool | None) -> bool:
    """Whether ``request_type`` may come in ``state``; ``dc`` is the session's energy transfer
    (``None`` before ChargeParameterDiscovery)."""
    if request_type not in EXPECTED[state]:
        return False
    if dc is True and request_type in AC_ONLY:
        return False
    if dc is False and request_type in DC_ONLY:
        return False
    return True


def diagram() -> str:
    """``state: allowed requests`` lines, derived from ``EXPECTED``."""
    return "\n".join(
        f"{s.value}: {', '.join(sorted(t.__name__ for t in EXPECTED[s])) or '(session over)'}" for s in State
    )
