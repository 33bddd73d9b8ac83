"""Events the OCPP client reports to the rest of the service.

Rules of this module:

- Frozen dataclasses named for what happened (h11 style); the station publishes them to
  every subscriber (``ChargingStation.subscribe``) after the CSMS has been answered, except
  ``DynamicScheduleUpdated``, which goes out as soon as the update is stored (a setpoint
  is time-critical; the answer follows right after).
- Events that ask the service to act (``RemoteStartRequested``, ``ResetRequested``, ...)
  are sent after the station has answered the CSMS with the status the spec requires;
  the service then does the work and reports back through the station's API (a
  TransactionEvent, a StatusNotification, a restart).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

__all__ = [
    "StationEvent",
    "ConnectionChanged",
    "RegistrationChanged",
    "ChargingProfilesChanged",
    "CertificateInstalled",
    "CertificateDeleted",
    "VariableChanged",
    "ResetRequested",
    "AvailabilityChanged",
    "RemoteStartRequested",
    "RemoteStopRequested",
    "TransactionAuthorizationChanged",
    "MessageDiscarded",
    "ChargingScheduleChanged",
    "DynamicScheduleUpdated",
    "AllowedEnergyTransferChanged",
]


@dataclass(frozen=True)
class ConnectionChanged:
    """The WebSocket to the CSMS opened (``online``) or closed."""

    online: bool
    subprotocol: str | None = None
    network_slot: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RegistrationChanged:
    """The CSMS answered a BootNotification: ``status`` is RegistrationStatusEnumType."""

    status: str
    interval: int


@dataclass(frozen=True)
class ChargingProfilesChanged:
    """Charging profiles were set or cleared; recompute the limits of ``evse_ids`` (0 = all)."""

    evse_ids: tuple[int, ...]
    reason: str  # "SetChargingProfile", "ClearChargingProfile", "TransactionEnded"


@dataclass(frozen=True)
class CertificateInstalled:
    """A certificate was installed: a root (InstallCertificate) or a signed one (CertificateSigned)."""

    certificate_type: str


@dataclass(frozen=True)
class CertificateDeleted:
    serial_number: str


@dataclass(frozen=True)
class VariableChanged:
    """A device-model variable got a new value (from the CSMS or the station)."""

    key: str
    value: str


@dataclass(frozen=True)
class ResetRequested:
    """The CSMS asked for a reset (ResetEnumType ``reset_type``); ``scheduled`` = after the
    ongoing transactions end (B12.FR.01)."""

    reset_type: str
    evse_id: int | None
    scheduled: bool


@dataclass(frozen=True)
class AvailabilityChanged:
    """ChangeAvailability accepted: ``operational_status`` is Operative or Inoperative."""

    evse_id: int | None
    connector_id: int | None
    operational_status: str
    scheduled: bool


@dataclass(frozen=True)
class RemoteStartRequested:
    """RequestStartTransaction accepted (F01/F02); ``charging_profile`` is a TxProfile or None."""

    evse_id: int
    id_token: Any
    remote_start_id: int
    group_id_token: Any = None
    charging_profile: Any = None


@dataclass(frozen=True)
class RemoteStopRequested:
    """RequestStopTransaction accepted (F03)."""

    transaction_id: str
    evse_id: int


@dataclass(frozen=True)
class TransactionAuthorizationChanged:
    """A TransactionEventResponse carried idTokenInfo (E05): ``status`` is AuthorizationStatusEnumType."""

    transaction_id: str
    status: str
    id_token_info: Any


@dataclass(frozen=True)
class MessageDiscarded:
    """A must-deliver message failed MessageAttempts times and went to the dead-letter table."""

    action: str
    outbox_id: int
    error: str


@dataclass(frozen=True)
class ChargingScheduleChanged:
    """The composite schedule of ``evse_id`` changed (a profile set, cleared or updated, a
    transaction ended): ``schedule`` is the new protocol-neutral ``ChargingSchedule`` from
    now, charge and discharge, ready for the charge loop."""

    evse_id: int
    schedule: Any  # pnc_bridge.ocpp.ChargingSchedule
    reason: str  # "SetChargingProfile", "ClearChargingProfile", "UpdateDynamicSchedule", ...
    charging_profile_id: int | None = None


@dataclass(frozen=True)
class DynamicScheduleUpdated:
    """OCPP 2.1 dynamic control: the CSMS sent new values for a Dynamic profile
    (UpdateDynamicSchedule, or the answer to PullDynamicScheduleUpdate). ``period`` is the
    composite period in force now (limit, discharge_limit, setpoint), so the charge loop
    applies it in its next cycle. Emitted as soon as the CSMS has been answered."""

    evse_id: int
    charging_profile_id: int
    transaction_id: str | None
    period: Any  # pnc_bridge.ocpp.SchedulePeriod
    source: str  # "UpdateDynamicSchedule" or "PullDynamicScheduleUpdate"


@dataclass(frozen=True)
class AllowedEnergyTransferChanged:
    """OCPP 2.1 NotifyAllowedEnergyTransfer: the energy transfer modes the CSMS allows for
    the transaction (``EnergyTransferModeEnumType`` names); the SECC offers only these."""

    transaction_id: str
    evse_id: int
    allowed: tuple[str, ...]


StationEvent = Union[
    ConnectionChanged,
    RegistrationChanged,
    ChargingProfilesChanged,
    CertificateInstalled,
    CertificateDeleted,
    VariableChanged,
    ResetRequested,
    AvailabilityChanged,
    RemoteStartRequested,
    RemoteStopRequested,
    TransactionAuthorizationChanged,
    MessageDiscarded,
    ChargingScheduleChanged,
    DynamicScheduleUpdated,
    AllowedEnergyTransferChanged,
]
