"""Wires the sessions to PKI, OCPP and the EVSE driver; the ``pnc-bridge run`` service.

- ``run_service(config)``: the service until SIGTERM/SIGINT, restarting after a Reset.
- ``Service``: one run; ``station_config``: the OCPP client's configuration from the TOML.
"""

from pnc_bridge.bridge._service import Service, run_service, station_config

__all__ = ["Service", "run_service", "station_config"]
