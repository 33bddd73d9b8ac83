"""The charger hardware behind one EVSE, as the protocols see it: a narrow, typed port.

Rules of this module:

- ``EvseDriver`` is what the SECC sessions and the OCPP side need from the power
  electronics, the control pilot and the meter; nothing protocol-specific (no DIN /
  ISO 15118-2 / -20 variants), nothing OCPP-specific.
- Values are SI units in floats (V, A, W, Wh); time stamps are UTC.
- A driver reports faults as values (``IsolationResult.Fault``, ``CpState.F``), raises
  ``EvseFault`` only when it cannot do what was asked (contactor welded, hardware gone).
- Bidirectional power (V2X) is an extension: ``BidirectionalEvseDriver`` adds discharge
  limits and a signed power setpoint; a driver without it never discharges. Signs as in
  OCPP: positive power flows into the EV (import), negative out of it (export).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import AsyncIterator, Protocol, runtime_checkable

__all__ = [
    "CpState",
    "IsolationResult",
    "EvseLimits",
    "Measurement",
    "SignedMeterValue",
    "MeterReading",
    "EvseDriver",
    "BidirectionalEvseDriver",
    "EvseFault",
]


class CpState(str, Enum):
    """Control pilot states of IEC 61851-1."""

    A = "A"  # no EV connected
    B = "B"  # EV connected, not ready for energy
    C = "C"  # EV connected, ready, no ventilation needed
    D = "D"  # EV connected, ready, ventilation needed
    E = "E"  # short circuit / no power
    F = "F"  # EVSE fault (-12 V)


class IsolationResult(str, Enum):
    """Result of the DC isolation check; values as ISO 15118 IsolationLevelType names them."""

    Valid = "Valid"
    Warning = "Warning"
    Invalid = "Invalid"
    Fault = "Fault"


@dataclass(frozen=True)
class EvseLimits:
    """What the EVSE can deliver (charging) right now; DC voltages are 0 for AC EVSEs."""

    max_current_a: float
    max_power_w: float
    max_voltage_v: float
    min_current_a: float = 0.0
    min_voltage_v: float = 0.0
    #: What the EVSE can take back from the EV (magnitudes); 0 = not bidirectional.
    max_discharge_current_a: float = 0.0
    max_discharge_power_w: float = 0.0


@dataclass(frozen=True)
class Measurement:
    """Present output values (EVSEPresentVoltage / EVSEPresentCurrent)."""

    voltage_v: float
    current_a: float

    @property
    def power_w(self) -> float:
        return self.voltage_v * self.current_a


@dataclass(frozen=True)
class SignedMeterValue:
    """SignedMeterValueType of OCPP 2.0.1: the meter's own signed reading."""

    signed_meter_data: str  # base64
    signing_method: str
    encoding_method: str
    public_key: str  # base64, "" when not sent


@dataclass(frozen=True)
class MeterReading:
    """Energy both ways (import: into the EV, export: out of it) and the signed present power."""

    timestamp: datetime
    energy_import_wh: float
    energy_export_wh: float
    power_w: float  # < 0 while the EV discharges
    voltage_v: float
    current_a: float
    signed: SignedMeterValue | None = None


class EvseFault(Exception):
    """The hardware could not do what was asked."""


@runtime_checkable
class EvseDriver(Protocol):
    """One EVSE's hardware. Implementations: ``EvseSimulator`` here; real drivers later."""

    @property
    def evse_id(self) -> int: ...

    def cp_state(self) -> CpState:
        """The present control pilot state."""

    def cp_state_changes(self) -> AsyncIterator[CpState]:
        """Every CP state change from now on (an async iterator that does not end)."""

    async def set_contactors(self, closed: bool) -> None:
        """Close (True) or open the output contactors; raises ``EvseFault`` if they do not follow."""

    async def isolation_check(self, voltage_v: float) -> IsolationResult:
        """DC cable check at ``voltage_v`` (ISO 15118-2 CableCheck / -20 DC_CableCheck)."""

    def limits(self) -> EvseLimits:
        """Present limits of the power electronics."""

    async def set_limit(self, *, current_a: float | None = None, power_w: float | None = None) -> None:
        """Apply a charging limit (from the composite schedule)."""

    async def set_target(self, voltage_v: float, current_a: float) -> None:
        """DC: the EV's requested target voltage and current (CurrentDemand)."""

    async def present_values(self) -> Measurement:
        """Present output voltage and current."""

    async def read_meter(self, *, signed: bool = False) -> MeterReading:
        """A meter reading; ``signed`` asks for the meter's signed value if it has one."""


@runtime_checkable
class BidirectionalEvseDriver(EvseDriver, Protocol):
    """An EVSE that can also take power back from the EV (ISO 15118-20 BPT, OCPP 2.1 V2X)."""

    async def set_discharge_limit(self, *, current_a: float | None = None, power_w: float | None = None) -> None:
        """The most the EVSE may take back now (magnitudes; from the schedule's dischargeLimit)."""

    async def set_setpoint(self, power_w: float | None) -> None:
        """A signed power target (negative: discharge) within the limits; None: follow the EV."""
