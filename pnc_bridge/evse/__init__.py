"""The charger hardware interface (``EvseDriver``) and a simulator (``EvseSimulator``).

``EvseDriver`` is the one port through which the SECC sessions and the OCPP side reach
the control pilot, contactors, isolation monitor, power stage and meter of an EVSE.
"""

from pnc_bridge.evse._driver import (
    BidirectionalEvseDriver,
    CpState,
    EvseDriver,
    EvseFault,
    EvseLimits,
    IsolationResult,
    Measurement,
    MeterReading,
    SignedMeterValue,
)
from pnc_bridge.evse._simulator import EvBattery, EvseSimulator

__all__ = [
    "BidirectionalEvseDriver",
    "EvBattery",
    "CpState",
    "EvseDriver",
    "EvseFault",
    "EvseLimits",
    "EvseSimulator",
    "IsolationResult",
    "Measurement",
    "MeterReading",
    "SignedMeterValue",
]
