"""pnc-bridge: an ISO 15118 SECC bridged to OCPP.

Sub-packages (see docs/architecture.md):

- ``exi``      EXI runtime and the generated codecs (``decode`` / ``encode``)
- ``messages`` generated typed message models
- ``link``     V2GTP, SDP, SLAC, TCP/TLS servers
- ``secc``     sans-I/O session state machines
- ``pki``      trust store, chain validation, XML-DSig over EXI
- ``ocpp``     OCPP 2.0.1 / 2.1 charging-station client
- ``bridge``   fulfils session effects with pki / ocpp / evse
- ``evse``     the charger hardware interface and its simulator
"""

__version__ = "0.1.0"
