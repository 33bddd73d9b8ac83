"""ISO 15118-20 SECC states and the requests each state expects.

Rules of this module:

- States are named for the request the SECC waits for (``WAIT_FOR_<Request>``), as the
  other cores do; ``EXPECTED`` is the whole sequence, AC and DC in one table. The family
  (AC or DC) is known from the SupportedAppProtocol handshake (``-20:AC`` / ``-20:DC``), so
  ``DC_ONLY`` / ``AC_ONLY`` requests are refused from the first message on.
- ``allowed()`` is the one place a request is checked against the sequence; a miss is
  ``FAILED_SequenceError``.
- Requests answered ``EVSEProcessing=Ongoing`` (AuthorizationReq, ScheduleExchangeReq,
  DC_CableCheckReq, CertificateInstallationReq) are repeated in the same state; so are
  DC_PreChargeReq and a PowerDeliveryReq with ``EVProcessing=Ongoing`` (the EV is not ready).
- SessionStopReq is allowed wherever no energy flows; inside the charge loop the EV first
  stops the power with PowerDeliveryReq (as in the ISO 15118-2 core).
- MeteringConfirmationReq comes in the charge loop (after EVSENotification
  ``MeteringConfirmation``) and after the loop, before SessionStopReq.
- ``diagram()`` derives the state diagram from the table (docs/secc.md shows it).
"""

from __future__ import annotations

from enum import Enum

from pnc_bridge.messages import iso20 as m

__all__ = ["AC_ONLY", "DC_ONLY", "EXPECTED", "State", "allowed", "diagram"]


class State(Enum):
    WAIT_FOR_SessionSetupReq = "WAIT_FOR_SessionSetupReq"
    WAIT_FOR_AuthorizationSetupReq = "WAIT_FOR_AuthorizationSetupReq"
    WAIT_FOR_AuthorizationReq = "WAIT_FOR_AuthorizationReq"
    WAIT_FOR_ServiceDiscoveryReq = "WAIT_FOR_ServiceDiscoveryReq"
    WAIT_FOR_ServiceSelectionReq = "WAIT_FOR_ServiceSelectionReq"
    WAIT_FOR_ChargeParameterDiscoveryReq = "WAIT_FOR_ChargeParameterDiscoveryReq"
    WAIT_FOR_ScheduleExchangeReq = "WAIT_FOR_ScheduleExchangeReq"
    WAIT_FOR_CableCheckReq = "WAIT_FOR_CableCheckReq"
    WAIT_FOR_PreChargeReq = "WAIT_FOR_PreChargeReq"
    WAIT_FOR_PowerDeliveryReq = "WAIT_FOR_PowerDeliveryReq"
    WAIT_FOR_ChargeLoopReq = "WAIT_FOR_ChargeLoopReq"
    WAIT_FOR_WeldingDetectionReq = "WAIT_FOR_WeldingDetectionReq"
    WAIT_FOR_SessionStopReq = "WAIT_FOR_SessionStopReq"
    STOPPED = "STOPPED"


EXPECTED: dict[State, frozenset[type]] = {
    State.WAIT_FOR_SessionSetupReq: frozenset({m.SessionSetupReq}),
    State.WAIT_FOR_AuthorizationSetupReq: frozenset({m.AuthorizationSetupReq, m.SessionStopReq}),
    # the EV may install a contract certificate before it authorizes
    State.WAIT_FOR_AuthorizationReq: frozenset({m.AuthorizationReq, m.CertificateInstallationReq, m.SessionStopReq}),
    State.WAIT_FOR_ServiceDiscoveryReq: frozenset({m.ServiceDiscoveryReq, m.SessionStopReq}),
    State.WAIT_FOR_ServiceSelectionReq: frozenset({m.ServiceDetailReq, m.ServiceSelectionReq, m.SessionStopReq}),
    State.WAIT_FOR_ChargeParameterDiscoveryReq: frozenset(
        {m.AC_ChargeParameterDiscoveryReq, m.DC_ChargeParameterDiscoveryReq, m.SessionStopReq}
    ),
    State.WAIT_FOR_ScheduleExchangeReq: frozenset({m.ScheduleExchangeReq, m.SessionStopReq}),
    State.WAIT_FOR_CableCheckReq: frozenset({m.DC_CableCheckReq, m.SessionStopReq}),
    State.WAIT_FOR_PreChargeReq: frozenset({m.DC_PreChargeReq, m.SessionStopReq}),
    State.WAIT_FOR_PowerDeliveryReq: frozenset({m.PowerDeliveryReq, m.DC_PreChargeReq, m.SessionStopReq}),
    State.WAIT_FOR_ChargeLoopReq: frozenset(
        {m.AC_ChargeLoopReq, m.DC_ChargeLoopReq, m.PowerDeliveryReq, m.MeteringConfirmationReq}
    ),
    State.WAIT_FOR_WeldingDetectionReq: frozenset(
        {m.DC_WeldingDetectionReq, m.MeteringConfirmationReq, m.SessionStopReq}
    ),
    State.WAIT_FOR_SessionStopReq: frozenset({m.MeteringConfirmationReq, m.SessionStopReq}),
    State.STOPPED: frozenset(),
}

DC_ONLY = frozenset(
    {m.DC_ChargeParameterDiscoveryReq, m.DC_CableCheckReq, m.DC_PreChargeReq, m.DC_ChargeLoopReq, m.DC_WeldingDetectionReq}
)
AC_ONLY = frozenset({m.AC_ChargeParameterDiscoveryReq, m.AC_ChargeLoopReq})


def allowed(state: State, request_type: type, dc: bool) -> bool:
    """Whether ``request_type`` may come in ``state`` of a DC (``dc``) or AC session."""
    if request_type not in EXPECTED[state]:
        return False
    if dc and request_type in AC_ONLY:
        return False
    if not dc and request_type in DC_ONLY:
        return False
    return True


def diagram() -> str:
    """``state: allowed requests`` lines, derived from ``EXPECTED``."""
    return "\n".join(
        f"{s.value}: {', '.join(sorted(t.__name__ for t in EXPECTED[s])) or '(session over)'}" for s in State
    )
