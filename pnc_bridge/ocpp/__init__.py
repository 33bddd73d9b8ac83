"""OCPP 2.0.1 / 2.1 charging-station client.

Public API (see ``docs/ocpp.md``):

- ``ChargingStation``: connect to a CSMS with security profile 1, 2 or 3, keep the
  connection, answer the CSMS, and offer the service an async API (``authorize``,
  ``get_15118_ev_certificate``, ``start_transaction`` ...) and events (``subscribe``).
- ``StationConfig``, ``ChargingStationInfo``, ``NetworkProfile``, ``StationSettings``,
  ``EvseLayout``, ``ConnectorLayout``: its configuration.
- ``Store``: the SQLite (WAL) database with the outbox and all persistent state.
- ``CertificateStore`` (the port to the trust store) and ``FileCertificateStore``.
- ``RpcCore``: the sans-I/O OCPP-J framing, usable on its own.
- ``v201`` / ``v21``: the generated message models; ``PROTOCOLS``: schemas and models per version.
- ``CallFailed``, ``CallError``, ``ErrorCode``; events in ``pnc_bridge.ocpp.events``.
- V2X, protocol-neutral: ``EvChargingNeeds``, ``ChargingSchedule``, ``SchedulePeriod``,
  ``EnergyTransferMode``, ``ControlMode``, ``MobilityNeedsMode``, ``OperationMode``;
  ``bidirectional_meter_value`` and ``ev_schedule_payload`` build the payloads with
  energy and power both ways. ``V2X_VENDOR_ID`` and ``to_version``: the 2.0.1 mapping.
"""

from pnc_bridge.ocpp import _events as events
from pnc_bridge.ocpp._certificates import (
    CertificateHashData,
    CertificateStore,
    FileCertificateStore,
    InstalledCertificate,
    certificate_hash_data,
)
from pnc_bridge.ocpp._config import ChargingStationInfo, StationConfig
from pnc_bridge.ocpp._connection import NetworkProfile, backoff_delay, connection_url
from pnc_bridge.ocpp._device_model import DeviceModel, VariableKey, VariableSpec
from pnc_bridge.ocpp._errors import CallError, CallFailed, ErrorCode
from pnc_bridge.ocpp._generated import v201, v21
from pnc_bridge.ocpp._outbox import Lane, Outbox, OutboxEntry, RetryPolicy
from pnc_bridge.ocpp._protocol import PROTOCOLS, OcppProtocol, OcppVersion, protocol_for
from pnc_bridge.ocpp._rpc import OutgoingInvalid, RpcCore
from pnc_bridge.ocpp._station import ChargingStation, Priority, TransactionState
from pnc_bridge.ocpp._store import Store, StoreError
from pnc_bridge.ocpp._v2x import (
    ChargingSchedule,
    ControlMode,
    EnergyTransferMode,
    EvChargingNeeds,
    MobilityNeedsMode,
    OperationMode,
    SchedulePeriod,
    bidirectional_meter_value,
    ev_schedule_payload,
)
from pnc_bridge.ocpp._versions import V2X_VENDOR_ID, VersionMismatch, lift, to_version
from pnc_bridge.ocpp._variables import (
    AuthCtrlr,
    ConnectorLayout,
    DeviceDataCtrlr,
    EvseLayout,
    ISO15118Ctrlr,
    OCPPCommCtrlr,
    SecurityCtrlr,
    SmartChargingCtrlr,
    StationSettings,
    TxCtrlr,
)

__all__ = [
    "ChargingSchedule",
    "ControlMode",
    "EnergyTransferMode",
    "EvChargingNeeds",
    "MobilityNeedsMode",
    "OperationMode",
    "SchedulePeriod",
    "V2X_VENDOR_ID",
    "VersionMismatch",
    "bidirectional_meter_value",
    "ev_schedule_payload",
    "lift",
    "to_version",
    "AuthCtrlr",
    "CallError",
    "CallFailed",
    "CertificateHashData",
    "CertificateStore",
    "ChargingStation",
    "ChargingStationInfo",
    "ConnectorLayout",
    "DeviceDataCtrlr",
    "DeviceModel",
    "ErrorCode",
    "EvseLayout",
    "FileCertificateStore",
    "ISO15118Ctrlr",
    "InstalledCertificate",
    "Lane",
    "NetworkProfile",
    "OCPPCommCtrlr",
    "OcppProtocol",
    "OcppVersion",
    "Outbox",
    "OutboxEntry",
    "OutgoingInvalid",
    "PROTOCOLS",
    "Priority",
    "RetryPolicy",
    "RpcCore",
    "SecurityCtrlr",
    "SmartChargingCtrlr",
    "StationConfig",
    "StationSettings",
    "Store",
    "StoreError",
    "TransactionState",
    "TxCtrlr",
    "VariableKey",
    "VariableSpec",
    "backoff_delay",
    "certificate_hash_data",
    "connection_url",
    "events",
    "protocol_for",
    "v201",
    "v21",
]
