"""Values shared by every SECC session core: configuration, the EVSE's present status,
the step a core returns, and what survives a paused session.

Rules of this module:

- Frozen dataclasses only; SI units (V, A, W, Wh, s) and the standards' enumeration names.
- Timers default to ``pnc_bridge.timing``; tests and rigs pass shorter ones, nobody patches.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

from pnc_bridge import timing
from pnc_bridge.secc.apphand import SupportedProtocol
from pnc_bridge.secc.effects import (
    ControlMode,
    Effect,
    EnergyService,
    EnergyTransferMode,
    Isolation,
    MobilityNeedsMode,
    PaymentOption,
)

__all__ = [
    "EvseStatus",
    "Iso20Config",
    "MeterReading",
    "PowerSetpoint",
    "ResumeContext",
    "SeccConfig",
    "SeccTimers",
    "Step",
]


@dataclass(frozen=True, slots=True)
class SeccTimers:
    """Every timer a DIN / ISO 15118-2 / ISO 15118-20 session core uses (see ``pnc_bridge.timing``)."""

    sequence_timeout: float = timing.V2G_SECC_Sequence_Timeout
    ongoing_limit: float = timing.SECC_ONGOING_LIMIT
    cable_check_limit: float = timing.SECC_CABLE_CHECK_LIMIT
    response_margin: float = timing.SECC_RESPONSE_MARGIN
    metering_receipt_interval: float = timing.SECC_METERING_RECEIPT_INTERVAL
    msg_timeouts_iso2: dict[str, float] = field(default_factory=lambda: dict(timing.V2G_EVCC_Msg_Timeout_ISO2))
    msg_timeouts_din: dict[str, float] = field(default_factory=lambda: dict(timing.V2G_EVCC_Msg_Timeout_DIN))
    msg_timeouts_iso20: dict[str, float] = field(default_factory=lambda: dict(timing.V2G_EVCC_Msg_Timeout_ISO20))
    setpoint_validity: float = timing.SECC_SETPOINT_VALIDITY


@dataclass(frozen=True, slots=True)
class MeterReading:
    """The EVSE meter as MeterInfo carries it."""

    meter_id: str
    energy_wh: float  # imported (charged into the EV); Energy.Active.Import.Register
    signature: bytes | None = None  # SigMeterReading (the meter's own signature), if any
    status: int | None = None
    timestamp: int | None = None  # unix seconds (TMeter)
    discharged_energy_wh: float | None = None  # exported (BPT); Energy.Active.Export.Register


@dataclass(frozen=True, slots=True)
class EvseStatus:
    """What the charger hardware reports now; the session answers from the latest snapshot
    (``session.update_evse_status``) because CurrentDemandRes must leave well inside the EV's
    250 ms message timeout and carries these values: waiting for the driver per message would
    put it on that critical path."""

    present_voltage_v: float = 0.0
    present_current_a: float = 0.0
    max_current_a: float = 32.0
    max_power_w: float = 22000.0
    max_voltage_v: float = 500.0
    min_current_a: float = 0.0
    min_voltage_v: float = 0.0
    nominal_voltage_v: float = 230.0  # AC, phase to neutral
    current_regulation_tolerance_a: float | None = None
    peak_current_ripple_a: float = 0.0
    energy_to_be_delivered_wh: float | None = None
    isolation: Isolation | None = None
    status_code: str = "EVSE_Ready"  # DC_EVSEStatusCodeType name
    rcd: bool = False  # AC: residual current device tripped
    notification_max_delay: int = 0
    meter: MeterReading | None = None
    # bidirectional (ISO 15118-20 BPT): magnitudes, 0 = this EVSE cannot take energy back
    max_discharge_power_w: float = 0.0
    max_discharge_current_a: float = 0.0
    min_discharge_power_w: float = 0.0
    min_discharge_current_a: float = 0.0
    min_power_w: float = 0.0  # smallest charge power the EVSE regulates (-20 EVSEMinimumChargePower)
    nominal_frequency_hz: float = 50.0  # AC grid frequency (-20 EVSENominalFrequency)


@dataclass(frozen=True, slots=True)
class PowerSetpoint:
    """A power target for ISO 15118-20 dynamic control, pushed into the session
    (``update_setpoint``) like :class:`EvseStatus`: the next charge-loop response carries it,
    with no effect round trip on the loop's 500 ms path. ``power_w`` is signed (negative:
    discharge, as OCPP 2.1 ``setpoint``); the session clamps it to the EV's and the EVSE's
    limits both ways and to the schedule's limit of the moment. ``reactive_var``: AC reactive
    power target, when the grid asks for one. A setpoint expires after
    ``SeccTimers.setpoint_validity`` unless pushed again; ``None`` clears it (the schedule
    applies again)."""

    power_w: float
    reactive_var: float | None = None


@dataclass(frozen=True, slots=True)
class Iso20Config:
    """What an ISO 15118-20 SECC offers.

    ``services``: energy services offered (ServiceDiscoveryRes), narrowed per connection to
    the handshake's namespace (``-20:AC`` offers AC / AC_BPT, ``-20:DC`` DC / DC_BPT).
    ``control_modes``: ServiceDetail offers one parameter set per control mode (scheduled and
    dynamic by default). ``dc_connector`` / ``ac_connector``: the ServiceDetail ``Connector``
    parameter (DC 1 core, 2 extended, ...; AC 1 single-phase, 2 three-phase).
    ``bpt_channel`` 1 unified / 2 separated, ``generator_mode`` 1 grid following / 2 grid
    forming (BPT parameters). ``standby_allowed``: PowerDelivery Standby is accepted
    (else ``WARNING_StandbyNotAllowed``). ``service_renegotiation``: SessionStop
    ServiceRenegotiation leads back to ServiceDiscovery (else
    ``FAILED_NoServiceRenegotiationSupported``). ``pause_allowed``: SessionStop Pause (else
    ``FAILED_PauseNotAllowed``). ``without_tls``: offer -20 on plain TCP too (test labs
    only; the standard runs -20 over TLS 1.3)."""

    services: tuple[EnergyService, ...] = (
        EnergyService.DC, EnergyService.DC_BPT, EnergyService.AC, EnergyService.AC_BPT,
    )
    control_modes: tuple[ControlMode, ...] = (ControlMode.ScheduledControl, ControlMode.DynamicControl)
    mobility_needs_mode: MobilityNeedsMode = MobilityNeedsMode.EVCC
    dc_connector: int = 2
    ac_connector: int = 2
    bpt_channel: int = 1
    generator_mode: int = 1
    standby_allowed: bool = True
    service_renegotiation: bool = True
    pause_allowed: bool = True
    without_tls: bool = False

    def __post_init__(self) -> None:
        if not self.control_modes:
            raise ValueError("Iso20Config.control_modes must not be empty")
        unsupported = [s.value for s in self.services if s not in _ISO20_CORE_SERVICES]
        if unsupported:
            raise ValueError(f"ISO 15118-20 services without a session core here: {', '.join(unsupported)}")


#: the energy services the ISO 15118-20 core serves (WPT and ACDP have no core here)
_ISO20_CORE_SERVICES = frozenset({EnergyService.AC, EnergyService.DC, EnergyService.AC_BPT, EnergyService.DC_BPT})


@dataclass(frozen=True, slots=True)
class SeccConfig:
    """Static configuration of one EVSE's SECC.

    ``protocols`` are the application protocols offered, in the charger's order of preference
    (ISO 15118-20 only on TLS connections and only with a matching service in ``iso20``);
    ``protocol_priority`` says whose preference wins the SupportedAppProtocol negotiation
    (``"ev"``: the EV's Priority, ``"evse"``: this order). ``energy_transfer_modes`` are what the EVSE offers (ISO 15118-2 names; DIN 70121 offers the
    first DC mode). ``payment_options``: ``Contract`` is offered only on TLS connections
    (ISO 15118-2 Plug & Charge needs TLS) and never for DIN 70121. ``random_bytes`` makes
    SessionIDs and GenChallenges (a deterministic source in tests).
    """

    evse_id: str = "DE*PNC*E00001*1"
    protocols: tuple[SupportedProtocol, ...] = (
        SupportedProtocol.ISO_15118_20_DC, SupportedProtocol.ISO_15118_20_AC,
        SupportedProtocol.ISO_15118_2, SupportedProtocol.DIN_70121,
    )
    protocol_priority: str = "ev"
    din_evse_id: bytes = b"\x00"  # DIN 70121 EVSEID (hexBinary); 0x00 when the EVSE has none
    energy_transfer_modes: tuple[EnergyTransferMode, ...] = (EnergyTransferMode.DC_extended,)
    payment_options: tuple[PaymentOption, ...] = (PaymentOption.Contract, PaymentOption.ExternalPayment)
    free_service: bool = False
    certificate_installation: bool = True  # offer the ContractCertificate service (Installation, Update)
    metering_receipts: bool = True  # ask for MeteringReceipt (Plug & Charge, with a meter)
    strict_charging_profile: bool = False  # FAILED_ChargingProfileInvalid when the EV's profile exceeds PMax
    initial_status: EvseStatus = field(default_factory=EvseStatus)
    timers: SeccTimers = field(default_factory=SeccTimers)
    iso20: Iso20Config = field(default_factory=Iso20Config)
    random_bytes: Callable[[int], bytes] = os.urandom

    def __post_init__(self) -> None:
        if not self.protocols:
            raise ValueError("SeccConfig.protocols must not be empty")
        if self.protocol_priority not in ("ev", "evse"):
            raise ValueError("SeccConfig.protocol_priority must be 'ev' or 'evse'")
        if not self.energy_transfer_modes:
            raise ValueError("SeccConfig.energy_transfer_modes must not be empty")
        if not self.payment_options:
            raise ValueError("SeccConfig.payment_options must not be empty")
        if not 7 <= len(self.evse_id) <= 37:
            raise ValueError(f"evse_id must have 7 to 37 characters (ISO 15118-2 EVSEID), got {self.evse_id!r}")


@dataclass(frozen=True, slots=True)
class ResumeContext:
    """What a paused session (SessionStopReq Pause) leaves for the next connection of the same
    EV: it sends the same SessionID in SessionSetupReq and gets ``OK_OldSessionJoined``; the
    payment option and the SAScheduleTupleID stay as they were ([V2G2-741] as Josev quotes it)."""

    schema: str
    session_id: bytes
    evcc_id: bytes
    payment: PaymentOption
    energy_transfer_mode: EnergyTransferMode | None
    sa_schedule_tuple_id: int | None
    emaid: str | None
    authorized: bool


@dataclass(frozen=True, slots=True)
class Step:
    """What a session core returns for every input.

    ``response``: the message to send now (``None`` when the response is held for an effect,
    or nothing is to be sent). ``effects``: start these (requests get results back through
    ``resolve``). ``close``: close the connection after sending ``response``; ``reason`` says
    why. ``resume``: keep this for the EV's next connection (paused session).
    """

    response: object | None = None
    effects: tuple[Effect, ...] = ()
    close: bool = False
    reason: str = ""
    resume: ResumeContext | None = None
