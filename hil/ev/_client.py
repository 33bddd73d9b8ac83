"""The EV emulator on the wire: SDP (optional), TCP or TLS, V2GTP, driving :class:`EvSession`.

Rules of this module:

- One task, one connection: frames from the SECC go to ``receive_payload``, and the core's
  ``deadline()`` wakes the task for ``tick`` (message timeouts, paced requests).
- TLS as an ISO 15118-2 EV does it: TLS 1.2 only, ECDHE-ECDSA-AES128-SHA256 on secp256r1,
  the SECC chain verified against the V2G root(s) the EV trusts, no host name check (an EVSE
  has no name on the cable). An ISO 15118-20 EV (:func:`iso20_tls_context`): TLS 1.3 only,
  TLS_AES_256_GCM_SHA384 / TLS_CHACHA20_POLY1305_SHA256, and its own certificate chain for
  the SECC's mutual authentication.
- Every frame goes out with the payload type the core names (ISO 15118-20 has one per
  message set) and comes in with its type passed to the core.
- ``on_frame(direction, payload, t)`` (optional) sees every V2GTP payload with the loop time,
  for timelines and turnaround measurements.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Callable, Iterable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from hil.ev._core import EvConfig, EvSession
from hil.ev._core20 import Ev20Config, Ev20Session
from hil.ev_sdp import discover_secc
from pnc_bridge.link.sdp import Security
from pnc_bridge.link.v2gtp import ConnectionMustClose, Frame, PayloadType, V2gtpFramer, frame

__all__ = ["iso20_tls_context", "iso2_tls_context", "run_ev", "run_ev_with_sdp"]

#: bytes read per call; framing never depends on it
_READ = 65536


def iso2_tls_context(v2g_roots: Iterable[x509.Certificate]) -> ssl.SSLContext:
    """The TLS client context of an ISO 15118-2 EV trusting ``v2g_roots``."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA256")
    ctx.set_ecdh_curve("prime256v1")
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata="".join(r.public_bytes(Encoding.PEM).decode() for r in v2g_roots))
    return ctx


def iso20_tls_context(v2g_roots: Iterable[x509.Certificate], ev_chain: Iterable[x509.Certificate], ev_key) -> ssl.SSLContext:
    """The TLS client context of an ISO 15118-20 EV trusting ``v2g_roots``, authenticating
    with ``ev_chain`` (leaf first) and its key."""
    import os
    import tempfile

    from cryptography.hazmat.primitives import serialization

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata="".join(r.public_bytes(Encoding.PEM).decode() for r in v2g_roots))
    chain_pem = b"".join(c.public_bytes(Encoding.PEM) for c in ev_chain)
    key_pem = ev_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    # ssl only loads a client chain from files: write them private and remove them at once
    with tempfile.TemporaryDirectory() as tmp:
        chain_path, key_path = os.path.join(tmp, "ev-chain.pem"), os.path.join(tmp, "ev-key.pem")
        for path, data in ((chain_path, chain_pem), (key_path, key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(chain_path, key_path)
    return ctx


async def run_ev(
    config: EvConfig | Ev20Config,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    on_frame: Callable[[str, bytes, float], None] | None = None,
    connect_timeout: float = 10.0,
) -> EvSession:
    """Run one EV session (ISO 15118-2 / DIN :class:`EvConfig`, ISO 15118-20
    :class:`Ev20Config`) against the SECC at ``host``:``port``; returns the finished core
    (``.result``, ``.timeline``). Connection errors end the session with the reason."""
    loop = asyncio.get_running_loop()
    ev = _session(config, loop.time())
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=tls), connect_timeout)
    except (OSError, ssl.SSLError, asyncio.TimeoutError) as exc:
        ev.abort(f"cannot connect to {host}:{port}: {exc or type(exc).__name__}")
        return ev
    framer = V2gtpFramer()

    async def send(step) -> None:
        if on_frame is not None:
            on_frame("EV->EVSE", step.send, loop.time())
        writer.write(frame(PayloadType(step.payload_type), step.send))
        await writer.drain()

    try:
        step = ev.start(loop.time())
        await send(step)
        while not ev.done:
            deadline = ev.deadline()
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                data = await asyncio.wait_for(reader.read(_READ), timeout)
            except asyncio.TimeoutError:
                step = ev.tick(loop.time())
                if step.send is not None:
                    await send(step)
                continue
            if not data:
                ev.connection_lost(loop.time())
                break
            for event in framer.receive_data(data):
                if isinstance(event, ConnectionMustClose):
                    ev.abort(f"bad V2GTP from the SECC: {event.describe()}")
                    break
                if not isinstance(event, Frame):
                    continue
                now = loop.time()
                if on_frame is not None:
                    on_frame("EVSE->EV", event.payload, now)
                step = ev.receive_payload(event.payload, now, event.payload_type)
                if step.send is not None:
                    await send(step)
                if ev.done:
                    break
    except (ConnectionError, ssl.SSLError) as exc:
        ev.connection_lost(loop.time())
        ev.result.reason = f"{ev.result.reason} ({exc})" if ev.result.reason else str(exc)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, ssl.SSLError):
            pass
    return ev


def _session(config: EvConfig | Ev20Config, now: float) -> EvSession | Ev20Session:
    if isinstance(config, Ev20Config):
        return Ev20Session(config, now=now, unix_time=time.time())
    return EvSession(config, now=now, unix_time=time.time())


async def run_ev_with_sdp(
    config: EvConfig,
    iface: str,
    *,
    tls: ssl.SSLContext | None = None,
    on_frame: Callable[[str, bytes, float], None] | None = None,
) -> EvSession:
    """Discover the SECC on ``iface`` with SDP (asking for TLS when ``tls`` is given), then
    run the session at the address and port it announced."""
    loop = asyncio.get_running_loop()
    response = await discover_secc(iface, Security.TLS if tls is not None else Security.NO_TLS)
    if response is None:
        ev = _session(config, loop.time())
        ev.abort(f"no SDP answer on {iface}")
        return ev
    use_tls = tls if response.security is Security.TLS else None
    if tls is not None and use_tls is None:
        ev = _session(config, loop.time())
        ev.abort("the SECC offers no TLS")
        return ev
    return await run_ev(config, f"{response.secc_ip_address}%{iface}", response.secc_port, tls=use_tls, on_frame=on_frame)
