"""Wires the sessions to PKI, OCPP and the EVSE driver; the ``pnc-bridge run`` service.

- ``run_service(config)``: the service until SIGTERM/SIGINT, restarting after a Reset.
- ``Service``: one run; ``station_config``: the OCPP client's configuration from the TOML.

Imported lazily (PEP 562): the CLI registers ``run``/``demo`` through ``bridge._cli`` and must
not pay for the OCPP models on ``pnc-bridge --help``.
"""

__all__ = ["Service", "run_service", "station_config"]


def __getattr__(name: str):
    if name in __all__:
        from pnc_bridge.bridge import _service

        return getattr(_service, name)
    raise AttributeError(name)
