"""The link to the EV: V2GTP framing, SDP, TCP/TLS servers, SLAC. See docs/link.md.

Sans-I/O cores: ``v2gtp`` (``V2gtpFramer``, ``frame``, ``PayloadType``), ``sdp``
(``SdpResponder``, ``SdpPolicy``), ``tls`` (``TlsServerEngine``, credentials, profiles),
``slac`` (``SlacEvse``). asyncio adapters: ``server.V2gtpServer``, ``sdp_server.SdpServer``,
``slac.adapter.SlacService``. Import from the submodules; nothing heavy is loaded here.
"""
