"""DIN SPEC 70121 SECC states and the requests each state expects (DC, EIM only).

Rules of this module:

- Same shape as ``iso2/_state.py``: ``WAIT_FOR_<Request>`` states, one ``EXPECTED`` table,
  ``allowed()`` is the only sequence check ([V2G-DC-390] in EVerest's reading: a request
  the state does not expect is ``FAILED_SequenceError``).
- DIN 70121 has no Plug & Charge, no AC and no pause: PaymentDetails, Certificate*,
  ServiceDetail, ChargingStatus and MeteringReceipt are never expected.
- The body element of SessionStopReq is ``SessionStop`` in the DIN XSD (type name).
"""

from __future__ import annotations

from enum import Enum

from pnc_bridge.messages import din as m

__all__ = ["EXPECTED", "State", "allowed", "diagram"]


class State(Enum):
    WAIT_FOR_SessionSetupReq = "WAIT_FOR_SessionSetupReq"
    WAIT_FOR_ServiceDiscoveryReq = "WAIT_FOR_ServiceDiscoveryReq"
    WAIT_FOR_ServicePaymentSelectionReq = "WAIT_FOR_ServicePaymentSelectionReq"
    WAIT_FOR_ContractAuthenticationReq = "WAIT_FOR_ContractAuthenticationReq"
    WAIT_FOR_ChargeParameterDiscoveryReq = "WAIT_FOR_ChargeParameterDiscoveryReq"
    WAIT_FOR_CableCheckReq = "WAIT_FOR_CableCheckReq"
    WAIT_FOR_PreChargeReq = "WAIT_FOR_PreChargeReq"
    WAIT_FOR_PowerDeliveryReq = "WAIT_FOR_PowerDeliveryReq"
    WAIT_FOR_CurrentDemandReq = "WAIT_FOR_CurrentDemandReq"
    WAIT_FOR_WeldingDetectionReq = "WAIT_FOR_WeldingDetectionReq"
    STOPPED = "STOPPED"


EXPECTED: dict[State, frozenset[type]] = {
    State.WAIT_FOR_SessionSetupReq: frozenset({m.SessionSetupReq}),
    State.WAIT_FOR_ServiceDiscoveryReq: frozenset({m.ServiceDiscoveryReq, m.SessionStop}),
    State.WAIT_FOR_ServicePaymentSelectionReq: frozenset({m.ServicePaymentSelectionReq, m.SessionStop}),
    State.WAIT_FOR_ContractAuthenticationReq: frozenset({m.ContractAuthenticationReq, m.SessionStop}),
    State.WAIT_FOR_ChargeParameterDiscoveryReq: frozenset({m.ChargeParameterDiscoveryReq, m.SessionStop}),
    State.WAIT_FOR_CableCheckReq: frozenset({m.CableCheckReq, m.SessionStop}),
    State.WAIT_FOR_PreChargeReq: frozenset({m.PreChargeReq, m.SessionStop}),
    State.WAIT_FOR_PowerDeliveryReq: frozenset({m.PowerDeliveryReq, m.PreChargeReq, m.SessionStop}),
    State.WAIT_FOR_CurrentDemandReq: frozenset({m.CurrentDemandReq, m.PowerDeliveryReq}),
    State.WAIT_FOR_WeldingDetectionReq: frozenset({m.WeldingDetectionReq, m.SessionStop}),
    State.STOPPED: frozenset(),
}


def allowed(state: State, request_type: type) -> bool:
    return request_type in EXPECTED[state]


def diagram() -> str:
    """``state: allowed requests`` lines, derived from ``EXPECTED``."""
    def name(t: type) -> str:
        return "SessionStopReq" if t is m.SessionStop else t.__name__

    return "\n".join(f"{s.value}: {', '.join(sorted(name(t) for t in EXPECTED[s])) or '(session over)'}" for s in State)
