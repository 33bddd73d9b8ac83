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

Names are imported on first use (PEP 562), so that registering the ``pnc-bridge ocpp``
commands does not load the generated models on every ``pnc-bridge --help``.
"""

_LAZY = {
    "ChargingSchedule": ("pnc_bridge.ocpp._v2x", "ChargingSchedule"),
    "ControlMode": ("pnc_bridge.ocpp._v2x", "ControlMode"),
    "EnergyTransferMode": ("pnc_bridge.ocpp._v2x", "EnergyTransferMode"),
    "EvChargingNeeds": ("pnc_bridge.ocpp._v2x", "EvChargingNeeds"),
    "MobilityNeedsMode": ("pnc_bridge.ocpp._v2x", "MobilityNeedsMode"),
    "OperationMode": ("pnc_bridge.ocpp._v2x", "OperationMode"),
    "SchedulePeriod": ("pnc_bridge.ocpp._v2x", "SchedulePeriod"),
    "bidirectional_meter_value": ("pnc_bridge.ocpp._v2x", "bidirectional_meter_value"),
    "ev_schedule_payload": ("pnc_bridge.ocpp._v2x", "ev_schedule_payload"),
    "V2X_VENDOR_ID": ("pnc_bridge.ocpp._versions", "V2X_VENDOR_ID"),
    "VersionMismatch": ("pnc_bridge.ocpp._versions", "VersionMismatch"),
    "lift": ("pnc_bridge.ocpp._versions", "lift"),
    "to_version": ("pnc_bridge.ocpp._versions", "to_version"),
    "AuthCtrlr": ("pnc_bridge.ocpp._variables", "AuthCtrlr"),
    "CallError": ("pnc_bridge.ocpp._errors", "CallError"),
    "CallFailed": ("pnc_bridge.ocpp._errors", "CallFailed"),
    "CertificateHashData": ("pnc_bridge.ocpp._certificates", "CertificateHashData"),
    "CertificateStore": ("pnc_bridge.ocpp._certificates", "CertificateStore"),
    "ChargingStation": ("pnc_bridge.ocpp._station", "ChargingStation"),
    "ChargingStationInfo": ("pnc_bridge.ocpp._config", "ChargingStationInfo"),
    "ConnectorLayout": ("pnc_bridge.ocpp._variables", "ConnectorLayout"),
    "DeviceDataCtrlr": ("pnc_bridge.ocpp._variables", "DeviceDataCtrlr"),
    "DeviceModel": ("pnc_bridge.ocpp._device_model", "DeviceModel"),
    "ErrorCode": ("pnc_bridge.ocpp._errors", "ErrorCode"),
    "EvseLayout": ("pnc_bridge.ocpp._variables", "EvseLayout"),
    "FileCertificateStore": ("pnc_bridge.ocpp._certificates", "FileCertificateStore"),
    "ISO15118Ctrlr": ("pnc_bridge.ocpp._variables", "ISO15118Ctrlr"),
    "InstalledCertificate": ("pnc_bridge.ocpp._certificates", "InstalledCertificate"),
    "Lane": ("pnc_bridge.ocpp._outbox", "Lane"),
    "NetworkProfile": ("pnc_bridge.ocpp._connection", "NetworkProfile"),
    "OCPPCommCtrlr": ("pnc_bridge.ocpp._variables", "OCPPCommCtrlr"),
    "OcppProtocol": ("pnc_bridge.ocpp._protocol", "OcppProtocol"),
    "OcppVersion": ("pnc_bridge.ocpp._protocol", "OcppVersion"),
    "Outbox": ("pnc_bridge.ocpp._outbox", "Outbox"),
    "OutboxEntry": ("pnc_bridge.ocpp._outbox", "OutboxEntry"),
    "OutgoingInvalid": ("pnc_bridge.ocpp._rpc", "OutgoingInvalid"),
    "PROTOCOLS": ("pnc_bridge.ocpp._protocol", "PROTOCOLS"),
    "Priority": ("pnc_bridge.ocpp._station", "Priority"),
    "RetryPolicy": ("pnc_bridge.ocpp._outbox", "RetryPolicy"),
    "RpcCore": ("pnc_bridge.ocpp._rpc", "RpcCore"),
    "SecurityCtrlr": ("pnc_bridge.ocpp._variables", "SecurityCtrlr"),
    "SmartChargingCtrlr": ("pnc_bridge.ocpp._variables", "SmartChargingCtrlr"),
    "StationConfig": ("pnc_bridge.ocpp._config", "StationConfig"),
    "StationSettings": ("pnc_bridge.ocpp._variables", "StationSettings"),
    "Store": ("pnc_bridge.ocpp._store", "Store"),
    "StoreError": ("pnc_bridge.ocpp._store", "StoreError"),
    "TransactionState": ("pnc_bridge.ocpp._station", "TransactionState"),
    "TxCtrlr": ("pnc_bridge.ocpp._variables", "TxCtrlr"),
    "VariableKey": ("pnc_bridge.ocpp._device_model", "VariableKey"),
    "VariableSpec": ("pnc_bridge.ocpp._device_model", "VariableSpec"),
    "backoff_delay": ("pnc_bridge.ocpp._connection", "backoff_delay"),
    "certificate_hash_data": ("pnc_bridge.ocpp._certificates", "certificate_hash_data"),
    "connection_url": ("pnc_bridge.ocpp._connection", "connection_url"),
    "events": ("pnc_bridge.ocpp._events", None),
    "protocol_for": ("pnc_bridge.ocpp._protocol", "protocol_for"),
    "v201": ("pnc_bridge.ocpp._generated.v201", None),
    "v21": ("pnc_bridge.ocpp._generated.v21", None),
}


def __getattr__(name: str):
    import importlib

    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pnc_bridge.ocpp' has no attribute {name!r}") from None
    value = importlib.import_module(module)
    return value if attr is None else getattr(value, attr)


__all__ = [
    "ChargingSchedule",
    "ControlMode",
    "EnergyTransferMode",
    "EvChargingNeeds",
    "MobilityNeedsMode",
    "OperationMode",
    "SchedulePeriod",
    "bidirectional_meter_value",
    "ev_schedule_payload",
    "V2X_VENDOR_ID",
    "VersionMismatch",
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
