"""Configuration of one charging station's OCPP client (built from the service's TOML file).

Rules of this module:

- Plain frozen dataclasses; the TOML schema, its validation and its documentation live in
  ``pnc_bridge.config``, which builds a ``StationConfig`` from it.
- Device-model defaults are in ``StationSettings`` (``_variables``); everything here is
  about identity, the network and the limits of the transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pnc_bridge import timing
from pnc_bridge.ocpp._connection import NetworkProfile
from pnc_bridge.ocpp._variables import StationSettings

__all__ = ["ChargingStationInfo", "StationConfig"]


@dataclass(frozen=True)
class ChargingStationInfo:
    """ChargingStationType of BootNotification."""

    vendor_name: str
    model: str
    serial_number: str | None = None
    firmware_version: str | None = None


@dataclass(frozen=True)
class StationConfig:
    """Everything ``ChargingStation`` needs besides its store and ports."""

    identity: str
    network: NetworkProfile  # configuration slot 0
    info: ChargingStationInfo
    settings: StationSettings
    #: WebSocket subprotocols to offer, most preferred first (part 4, 3.1.2).
    subprotocols: tuple[str, ...] = ("ocpp2.1", "ocpp2.0.1")
    #: Largest WebSocket message accepted; bigger ones get a CALLERROR FormatViolation.
    max_message_bytes: int = 256 * 1024
    #: Messages more than this many times ``max_message_bytes`` close the connection (1009).
    hard_size_factor: int = 4
    open_timeout: float = timing.OCPP_OPEN_TIMEOUT
    pong_timeout: float = timing.OCPP_WEBSOCKET_PONG_TIMEOUT
    boot_retry_interval: float = timing.OCPP_BOOT_RETRY_INTERVAL
    #: Nominal line voltage for converting W <-> A limits (K01.FR.50); DC uses dc_voltage.
    line_voltage: float = 230.0
    dc_voltage: float = 400.0
    #: BootReasonEnumType of the first BootNotification after this start.
    boot_reason: str = "PowerUp"
    #: End transactions that were open when the station last stopped unexpectedly.
    end_interrupted_transactions: bool = True
    extra: dict[str, str] = field(default_factory=dict)
