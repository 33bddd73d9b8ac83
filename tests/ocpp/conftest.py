"""Fixtures for the OCPP tests: a test PKI made at test time, stations, a CSMS emulator.

Async tests run their coroutine with ``run(...)`` (asyncio.run with a hard timeout), so no
async plugin is needed. Nothing here mocks pnc_bridge code: stations talk to the
``hil.csms`` emulator (built on the ``ocpp`` package) over real WebSockets on loopback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pnc_bridge.ocpp import (
    ChargingStation,
    ChargingStationInfo,
    EvseLayout,
    ConnectorLayout,
    FileCertificateStore,
    NetworkProfile,
    StationConfig,
    StationSettings,
    Store,
)

PASSWORD = "Secret-Password-0123"
IDENTITY = "CS-TEST-1"


def run(coro: Awaitable[Any], timeout: float = 60.0) -> Any:
    """Run one async test body with a hard limit, so a hang fails instead of blocking CI."""

    async def guarded() -> Any:
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(guarded())


# --------------------------------------------------------------------------- test PKI


def _name(cn: str, org: str = "pnc-bridge test") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass
class Issued:
    cert: x509.Certificate
    key: Any

    @property
    def pem(self) -> bytes:
        return _pem(self.cert)

    @property
    def key_pem(self) -> bytes:
        return _key_pem(self.key)


def make_root(cn: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def issue(
    ca: Issued,
    cn: str,
    *,
    public_key: Any = None,
    server: bool = False,
    days: int = 30,
    not_before: dt.datetime | None = None,
) -> Issued:
    key = None
    if public_key is None:
        key = ec.generate_private_key(ec.SECP256R1())
        public_key = key.public_key()
    now = dt.datetime.now(dt.timezone.utc)
    start = not_before or now - dt.timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca.cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


@dataclass
class Pki:
    root: Issued  # CSMSRootCertificate (CSO hierarchy)
    server: Issued  # the CSMS's server certificate (CN=localhost)
    station: Issued  # the station's ChargingStationCertificate (CN=serial number)
    rogue_root: Issued  # another root: certificates from it must be refused
    rogue_server: Issued
    dir: Path

    def server_context(self, *, require_client_cert: bool = False, server: Issued | None = None) -> ssl.SSLContext:
        server = server or self.server
        cert_file = self.dir / f"server-{server.cert.serial_number}.pem"
        key_file = self.dir / f"server-{server.cert.serial_number}.key"
        cert_file.write_bytes(server.pem)
        key_file.write_bytes(server.key_pem)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert_file, key_file)
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.root.pem.decode())
        return context


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = make_root("Test CSO Root")
    rogue = make_root("Rogue Root")
    return Pki(
        root=root,
        server=issue(root, "localhost", server=True),
        station=issue(root, "SN-TEST-1"),
        rogue_root=rogue,
        rogue_server=issue(rogue, "localhost", server=True),
        dir=tmp_path_factory.mktemp("pki"),
    )


# --------------------------------------------------------------------------- stations


def station_config(
    url: str,
    *,
    security_profile: int = 1,
    message_timeout: float = 5.0,
    evses: int = 1,
    ac: bool = False,
    overrides: dict[str, str] | None = None,
    password: str | None = PASSWORD,
    identity: str = IDENTITY,
    max_message_bytes: int = 256 * 1024,
    boot_retry_interval: float = 1.0,
    discharge_w: float = 0.0,
    subprotocols: tuple[str, ...] = ("ocpp2.1", "ocpp2.0.1"),
) -> StationConfig:
    fast = {
        "OCPPCommCtrlr/RetryBackOffWaitMinimum": "0",
        "OCPPCommCtrlr/RetryBackOffRandomRange": "0",
        "OCPPCommCtrlr/RetryBackOffRepeatTimes": "0",
        "OCPPCommCtrlr/MessageAttemptInterval[TransactionEvent]": "0",
        "OCPPCommCtrlr/WebSocketPingInterval": "0",
    }
    fast.update(overrides or {})
    settings = StationSettings(
        identity=identity,
        security_profile=security_profile,
        basic_auth_password=password,
        organization_name="Test CPO",
        evses=tuple(
            EvseLayout(i, (ConnectorLayout(1),), 22_000.0 if ac else 150_000.0, 3 if ac else 0, max_discharge_power_w=discharge_w)
            for i in range(1, evses + 1)
        ),
        message_timeout=message_timeout,
        iso15118_secc_id="SECC1",
        iso15118_country_name="DE",
        iso15118_organization_name="Test CPO",
        overrides=fast,
    )
    return StationConfig(
        identity=identity,
        network=NetworkProfile(0, url, security_profile, message_timeout),
        info=ChargingStationInfo("pnc-bridge", "test", "SN-TEST-1", "0.1"),
        settings=settings,
        max_message_bytes=max_message_bytes,
        boot_retry_interval=boot_retry_interval,
        subprotocols=subprotocols,
    )


class StationHarness:
    """A station with its own store and trust store in ``directory``; reopenable."""

    def __init__(self, directory: Path, config: StationConfig) -> None:
        self.directory = directory
        self.config = config
        self.store: Store | None = None
        self.certificates = FileCertificateStore(directory / "trust")
        self.station: ChargingStation | None = None

    async def start(self, config: StationConfig | None = None, **kwargs: Any) -> ChargingStation:
        if config is not None:
            self.config = config
        self.store = Store(self.directory / "ocpp.sqlite")
        self.station = ChargingStation(self.config, store=self.store, certificates=self.certificates, **kwargs)
        await self.station.start()
        return self.station

    async def stop(self) -> None:
        if self.station is not None:
            await self.station.stop()
            self.station = None
        if self.store is not None:
            self.store.close()
            self.store = None


@pytest.fixture
def harness(tmp_path: Path) -> Callable[..., StationHarness]:
    def make(url: str, **kwargs: Any) -> StationHarness:
        return StationHarness(tmp_path, station_config(url, **kwargs))

    return make


@pytest.fixture(params=["ocpp2.0.1", "ocpp2.1"])
def each_ocpp_version(request: pytest.FixtureRequest) -> Any:
    """Run a test once per OCPP version: emulators made without ``subprotocols`` accept only
    that one, and the station (offering both) speaks it."""
    from hil.csms import CsmsEmulator

    previous = CsmsEmulator.default_subprotocols
    CsmsEmulator.default_subprotocols = (request.param,)
    try:
        yield request.param
    finally:
        CsmsEmulator.default_subprotocols = previous


def tx_events(csms: Any, station: str = IDENTITY) -> list[dict[str, Any]]:
    """TransactionEvent payloads the CSMS received (delivered frames only), in order."""
    return [r.payload for r in csms.received("TransactionEvent", station=station)]


def delivered_sequences(csms: Any) -> dict[str, list[int]]:
    """transactionId -> seqNos in the order the CSMS first received them (repeats removed)."""
    seen: dict[str, list[int]] = {}
    for payload in tx_events(csms):
        tid = payload["transactionInfo"]["transactionId"]
        seqs = seen.setdefault(tid, [])
        if payload["seqNo"] not in seqs:
            seqs.append(payload["seqNo"])
    return seen
