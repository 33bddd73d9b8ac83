"""Opening the OCPP-J WebSocket: URL, subprotocol, security profiles 1-3, back-off.

Rules of this module:

- ``NetworkProfile`` is the NetworkConnectionProfile of one configuration slot; slot 0
  comes from the configuration file, slots 1-3 from SetNetworkProfile.
- Security profile 1: ``ws://`` and HTTP Basic authentication (A00.FR.202-205).
  Profile 2: ``wss://`` (TLS >= 1.2, the listed cipher suites, no compression, the CSMS
  certificate checked against the installed CSMSRootCertificate and its name against the
  URL host; A00.FR.306-321) and Basic authentication. Profile 3: like 2, but the station
  authenticates with its ChargingStationCertificate as TLS client certificate and sends
  no password (A00.FR.401-426).
- A URL whose scheme does not fit the profile is a configuration error, reported as such;
  the station never falls back to a weaker profile (A00.FR.005).
- TLS failures are classified into the security events the spec names
  (InvalidCsmsCertificate, InvalidTLSVersion, InvalidTLSCipherSuite); the station queues
  each once per run of failures (A00.FR.316 note).
- ``backoff_delay`` is part 4, 5.3 as a pure function; the random source is an argument.
- Traffic goes to the configured host only; proxy environment variables are ignored.
"""

from __future__ import annotations

import base64
import logging
import random
import ssl
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import quote, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from pnc_bridge import timing
from pnc_bridge.ocpp._certificates import CertificateStore

__all__ = [
    "NetworkProfile",
    "ConnectFailed",
    "open_websocket",
    "backoff_delay",
    "connection_url",
    "TLS12_CIPHERS",
]

#: The websockets library logs handshake headers and frames at DEBUG; they carry the
#: Basic-auth header and SetVariables(BasicAuthPassword). A01.FR.12: never in a log.
_WIRE_LOG = logging.getLogger("pnc_bridge.ocpp.websocket")
_WIRE_LOG.setLevel(logging.INFO)

#: TLS 1.2 cipher suites of A00.FR.318/319 (OpenSSL names). TLS 1.3 suites are OpenSSL's defaults.
TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        # Same strength, forward secrecy, RSA server keys:
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
    )
)


@dataclass(frozen=True)
class NetworkProfile:
    """NetworkConnectionProfileType of one slot, as the connection needs it."""

    slot: int
    url: str
    security_profile: int
    message_timeout: float
    ocpp_version: str = "OCPP20"

    def describe(self) -> str:
        return f"slot {self.slot} ({self.url}, security profile {self.security_profile})"


class ConnectFailed(Exception):
    """Opening the connection failed.

    ``kind`` is one of: ``config`` (cannot work as configured; retrying will not help),
    ``tls-certificate`` / ``tls-version`` / ``tls-cipher`` (TLS handshake refused; the
    matching security event is ``security_event``), ``auth`` (HTTP 401/403: the CSMS
    refused our credentials), ``http`` (other HTTP status), ``subprotocol`` (the CSMS
    agreed to none of ours), ``network`` (TCP, DNS, timeout).
    """

    def __init__(self, kind: str, message: str, security_event: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.security_event = security_event


def connection_url(csms_url: str, identity: str) -> str:
    """The connection URL: endpoint + '/' + percent-encoded identity (part 4, 3.1.1)."""
    return csms_url.rstrip("/") + "/" + quote(identity, safe="")


def backoff_delay(
    failures: int, *, wait_minimum: float, random_range: float, repeat_times: int, rng: random.Random
) -> float:
    """Wait before reconnect attempt number ``failures`` (0 = the first after a loss).

    Part 4, 5.3: RetryBackOffWaitMinimum plus random(0..RetryBackOffRandomRange) first,
    doubling after every failed attempt, at most RetryBackOffRepeatTimes times.
    """
    doublings = min(max(failures, 0), max(repeat_times, 0))
    return wait_minimum * (2**doublings) + rng.uniform(0.0, max(random_range, 0.0))


def _tls_context(profile: NetworkProfile, certificates: CertificateStore) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # A00.FR.313
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION  # A00.FR.321
    context.check_hostname = True  # A00.FR.309: the certificate must name the CSMS host
    context.verify_mode = ssl.CERT_REQUIRED
    roots = certificates.csms_root_pem()
    if not roots:
        raise ConnectFailed("config", f"security profile {profile.security_profile} needs a CSMSRootCertificate; none is installed")
    context.load_verify_locations(cadata=roots)
    if profile.security_profile == 3:
        files = certificates.tls_client_files()
        if files is None:
            raise ConnectFailed("config", "security profile 3 needs a ChargingStationCertificate; none is installed")
        context.load_cert_chain(str(files[0]), str(files[1]))
    return context


def _classify_tls(exc: ssl.SSLError) -> ConnectFailed:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConnectFailed("tls-certificate", f"CSMS certificate refused: {exc.verify_message or exc}", "InvalidCsmsCertificate")
    reason = (exc.reason or str(exc)).upper()
    if "PROTOCOL_VERSION" in reason or "UNSUPPORTED_PROTOCOL" in reason or "WRONG_SSL_VERSION" in reason:
        return ConnectFailed("tls-version", f"TLS version refused: {exc}", "InvalidTLSVersion")
    if "CIPHER" in reason or "HANDSHAKE_FAILURE" in reason:
        return ConnectFailed("tls-cipher", f"no acceptable TLS cipher suite: {exc}", "InvalidTLSCipherSuite")
    return ConnectFailed("network", f"TLS failed: {exc}")


async def open_websocket(
    profile: NetworkProfile,
    *,
    identity: str,
    password: str | None,
    certificates: CertificateStore,
    subprotocols: Sequence[str],
    open_timeout: float,
    ping_interval: float | None,
    ping_timeout: float | None,
    max_size: int,
) -> ClientConnection:
    """Connect to the CSMS of ``profile``; returns the open connection or raises ``ConnectFailed``."""
    scheme = urlsplit(profile.url).scheme.lower()
    if profile.security_profile == 1 and scheme != "ws":
        raise ConnectFailed("config", f"security profile 1 uses ws://, not {scheme}:// ({profile.describe()})")
    if profile.security_profile in (2, 3) and scheme != "wss":
        raise ConnectFailed("config", f"security profile {profile.security_profile} needs wss:// ({profile.describe()})")
    if profile.security_profile not in (1, 2, 3):
        raise ConnectFailed("config", f"unknown security profile {profile.security_profile}")
    headers: list[tuple[str, str]] = []
    if profile.security_profile in (1, 2):
        if not password:
            raise ConnectFailed("config", f"security profile {profile.security_profile} needs SecurityCtrlr.BasicAuthPassword")
        if ":" in identity:
            raise ConnectFailed("config", "the station identity must not contain ':' with Basic authentication")
        # A00.FR.203/205: username = identity, password sent as UTF-8 text.
        token = base64.b64encode(f"{identity}:{password}".encode("utf-8")).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    kwargs: dict[str, Any] = {}
    if profile.security_profile in (2, 3):
        kwargs["ssl"] = _tls_context(profile, certificates)
    url = connection_url(profile.url, identity)
    try:
        ws = await connect(
            url,
            subprotocols=list(subprotocols),  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            close_timeout=timing.OCPP_WEBSOCKET_CLOSE_TIMEOUT,
            max_size=max_size,
            proxy=None,
            logger=_WIRE_LOG,
            **kwargs,
        )
    except ssl.SSLError as exc:
        raise _classify_tls(exc) from exc
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise ConnectFailed("auth", f"the CSMS refused our credentials (HTTP {status})") from exc
        raise ConnectFailed("http", f"the CSMS answered HTTP {status}") from exc
    except InvalidURI as exc:
        raise ConnectFailed("config", f"invalid CSMS URL {profile.url!r}: {exc}") from exc
    except InvalidHandshake as exc:
        raise ConnectFailed("network", f"WebSocket handshake failed: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, ssl.SSLError):
            raise _classify_tls(cause) from exc
        raise ConnectFailed("network", f"cannot reach {url}: {exc}") from exc
    if ws.subprotocol is None or ws.subprotocol not in subprotocols:
        # Part 4, 3.2: a CSMS that agrees to none answers without Sec-WebSocket-Protocol.
        await ws.close(1002, "no common OCPP version")
        raise ConnectFailed("subprotocol", f"the CSMS accepted none of {list(subprotocols)}")
    return ws
