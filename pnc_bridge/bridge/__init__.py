"""Wires the SECC sessions to PKI, OCPP and the EVSE driver; the ``pnc-bridge run`` service.

- ``run_service(config)``: the service until SIGTERM/SIGINT, restarting after a Reset.
- ``Service``: one run (OCPP client, EVSE drivers, SECC endpoints, the bridge).
- ``station_config``: the OCPP client's configuration from the TOML.
- ``Bridge`` / ``fulfiller_table``: the one table effect type -> fulfiller, over the ports
  ``PkiPort``, ``OcppPort`` and ``EvsePort``; ``ContractPolicy`` is the ISO15118Ctrlr policy.
- ``TransactionTracker`` / ``TransactionPoints``: TxStartPoint / TxStopPoint (pure).
- ``TrustStoreCertificates``: the PKI trust store behind the OCPP ``CertificateStore`` port.

See docs/bridge.md. Imported lazily (PEP 562): the CLI registers ``run``/``demo`` through
``bridge._cli`` and must not pay for the OCPP models on ``pnc-bridge --help``.
"""

_LAZY = {
    "Service": "_service",
    "run_service": "_service",
    "station_config": "_service",
    "energy_transfer_modes": "_service",
    "Bridge": "_fulfil",
    "fulfiller_table": "_fulfil",
    "PkiPort": "_pki",
    "ContractPolicy": "_pki",
    "OcppPort": "_ocpp",
    "EvsePort": "_evse",
    "EvseContext": "_context",
    "TransactionTracker": "_transactions",
    "TransactionPoints": "_transactions",
    "TrustStoreCertificates": "_certificates",
    "TrustStoreCredentials": "_v2g",
    "V2gEndpoint": "_v2g",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"pnc_bridge.bridge.{module}"), name)
