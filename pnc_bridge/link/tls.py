"""TLS for the V2G channel: profiles, SECC credentials, and a sans-I/O server engine.

Rules of this module:

- No sockets and no clocks. ``TlsServerEngine`` is fed the bytes the EV sent
  (``receive_data``) and hands back the bytes to send (``data_to_send``); the asyncio
  adapter in ``pnc_bridge.link.server`` moves them. pyOpenSSL runs over memory BIOs.
- The engine reads the EV's ClientHello itself *before* OpenSSL does, so that it can
  choose the profile (TLS 1.2 for ISO 15118-2, TLS 1.3 with mutual authentication for
  ISO 15118-20) and the SECC certificate that matches the EV's ``trusted_ca_keys``
  (RFC 6066 section 6), which OpenSSL does not implement.
- Faults of the peer are values (``TlsFailure``); only misuse by our code raises.

Profiles (``TlsProfile``):

=============  ===========  ================================================  ================
profile        version      cipher suites                                     EV certificate
=============  ===========  ================================================  ================
ISO15118_2     TLS 1.2      TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 (and      not requested
                            TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA256 where the
                            OpenSSL build still has static ECDH: 3.x does
                            not); ECDHE on secp256r1 only
ISO15118_20    TLS 1.3      TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_    required, checked
                            SHA256                                            against the V2G
                                                                              roots given
=============  ===========  ================================================  ================

A server may accept both (``profiles=(ISO15118_2, ISO15118_20)``): the ClientHello's
``supported_versions`` decides, so an ISO 15118-2 EV never sees a CertificateRequest.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import struct
import threading
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL, crypto

__all__ = [
    "TlsProfile",
    "ISO15118_2_CIPHERS",
    "ISO15118_20_CIPHERSUITES",
    "SeccCredential",
    "CredentialProvider",
    "FileCredentialProvider",
    "StaticCredentialProvider",
    "TlsServerConfig",
    "KeyLog",
    "ClientHelloInfo",
    "TrustedAuthority",
    "parse_client_hello",
    "TlsDetails",
    "TlsFailure",
    "TlsServerEngine",
]

_log = logging.getLogger(__name__)


class TlsProfile(enum.Enum):
    ISO15118_2 = "ISO 15118-2 (TLS 1.2)"
    ISO15118_20 = "ISO 15118-20 (TLS 1.3, mutual authentication)"


#: OpenSSL names of the ISO 15118-2 suites. The static-ECDH one is absent from OpenSSL 3;
#: OpenSSL ignores names it does not know as long as one in the list is available.
ISO15118_2_CIPHERS = ("ECDHE-ECDSA-AES128-SHA256", "ECDH-ECDSA-AES128-SHA256")
#: IANA/OpenSSL names of the ISO 15118-20 TLS 1.3 suites.
ISO15118_20_CIPHERSUITES = ("TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

_SHA256 = hashes.SHA256()


# --------------------------------------------------------------------------- #
# Credentials                                                                  #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True, eq=False)
class SeccCredential:
    """One SECC certificate chain with its key.

    ``chain`` is leaf first, then the sub-CAs (without the root). ``root`` is the V2G root the
    chain ends in, when known; it makes ``trusted_ca_keys`` matching exact (without it the
    issuer name and authority key identifier of the last certificate are used).
    ``ocsp_response`` is a DER OCSP response for the leaf, stapled when the EV sends
    ``status_request``.
    """

    chain: tuple[x509.Certificate, ...]
    key: object
    root: x509.Certificate | None = None
    ocsp_response: bytes | None = None

    def __post_init__(self) -> None:
        if not self.chain:
            raise ValueError("SeccCredential needs at least the leaf certificate")
        object.__setattr__(self, "chain", tuple(self.chain))

    @property
    def fingerprint(self) -> bytes:
        h = hashlib.sha256()
        for cert in self.chain:
            h.update(cert.fingerprint(_SHA256))
        if self.ocsp_response:
            h.update(hashlib.sha256(self.ocsp_response).digest())
        return h.digest()

    @property
    def profile(self) -> TlsProfile:
        """The TLS profile this key fits: P-256 for ISO 15118-2, anything else for -20."""
        key = self.chain[0].public_key()
        if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
            return TlsProfile.ISO15118_2
        return TlsProfile.ISO15118_20

    def matches(self, authorities: Sequence["TrustedAuthority"]) -> bool:
        return any(a.identifier in self._root_identifiers(a.identifier_type) for a in authorities)

    def _root_identifiers(self, identifier_type: int) -> set[bytes]:
        last = self.chain[-1]
        ids: set[bytes] = set()
        if self.root is not None:
            if identifier_type == TrustedAuthority.KEY_SHA1_HASH:
                spki = self.root.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                ids.add(hashlib.sha1(_spki_bit_string(spki)).digest())
            elif identifier_type == TrustedAuthority.X509_NAME:
                ids.add(self.root.subject.public_bytes())
            elif identifier_type == TrustedAuthority.CERT_SHA1_HASH:
                ids.add(hashlib.sha1(self.root.public_bytes(serialization.Encoding.DER)).digest())
        if identifier_type == TrustedAuthority.X509_NAME:
            ids.add(last.issuer.public_bytes())
        elif identifier_type == TrustedAuthority.KEY_SHA1_HASH:
            try:
                aki = last.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
                if aki.key_identifier:
                    ids.add(aki.key_identifier)
            except x509.ExtensionNotFound:
                pass
        return ids


class CredentialProvider(Protocol):
    """Where the TLS server gets the SECC certificate(s).

    Called for every new TLS connection, so it must be cheap (return cached objects) and
    may return different credentials over time: that is how a renewed SECC certificate
    takes effect without a restart. ``pnc_bridge.pki.TrustStore`` is meant to satisfy this.
    Return every credential usable for ``profile`` (one per V2G root, typically).
    """

    def __call__(self, profile: TlsProfile) -> Sequence[SeccCredential]: ...


class StaticCredentialProvider:
    """A fixed list of credentials (tests, rigs). ``replace()`` swaps them atomically."""

    def __init__(self, credentials: Iterable[SeccCredential]) -> None:
        self._credentials = tuple(credentials)

    def replace(self, credentials: Iterable[SeccCredential]) -> None:
        self._credentials = tuple(credentials)

    def __call__(self, profile: TlsProfile) -> Sequence[SeccCredential]:
        return [c for c in self._credentials if c.profile == profile]


class FileCredentialProvider:
    """SECC chain and key read from PEM files; re-read when a file changes.

    ``chain_path`` holds the leaf first, then sub-CAs. ``key_path`` holds the private key
    (PKCS#8 or traditional PEM, unencrypted). The files are checked with ``os.stat`` on each
    call, so replacing them (write, fsync, rename) takes effect on the next connection. A
    file that is missing or broken after a change keeps the last good credential in use and
    logs an error.
    """

    def __init__(self, chain_path: str, key_path: str, *, ocsp_path: str | None = None, root_path: str | None = None) -> None:
        self.paths = tuple(p for p in (chain_path, key_path, ocsp_path, root_path) if p)
        self.chain_path, self.key_path, self.ocsp_path, self.root_path = chain_path, key_path, ocsp_path, root_path
        self._stamp: tuple | None = None
        self._credential: SeccCredential | None = None
        self._lock = threading.Lock()
        self._load()  # fail early on a bad start-up configuration

    def _stat(self) -> tuple:
        out = []
        for p in self.paths:
            st = os.stat(p)
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def _load(self) -> None:
        stamp = self._stat()
        with open(self.chain_path, "rb") as f:
            chain = tuple(x509.load_pem_x509_certificates(f.read()))
        with open(self.key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        root = None
        if self.root_path:
            with open(self.root_path, "rb") as f:
                root = x509.load_pem_x509_certificate(f.read())
        ocsp = None
        if self.ocsp_path:
            with open(self.ocsp_path, "rb") as f:
                ocsp = f.read()
        if chain[0].public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) != key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo):
            raise ValueError(f"{self.key_path} does not belong to the leaf certificate in {self.chain_path}")
        self._credential = SeccCredential(chain, key, root=root, ocsp_response=ocsp)
        self._stamp = stamp

    def __call__(self, profile: TlsProfile) -> Sequence[SeccCredential]:
        with self._lock:
            try:
                if self._stat() != self._stamp:
                    self._load()
                    _log.info("SECC certificate reloaded from %s", self.chain_path)
            except (OSError, ValueError) as exc:
                _log.error("SECC certificate reload failed, keeping the previous one: %s", exc)
            cred = self._credential
        return [cred] if cred is not None and cred.profile == profile else []


# --------------------------------------------------------------------------- #
# Configuration                                                                #
# --------------------------------------------------------------------------- #


class KeyLog:
    """Writes TLS secrets in the NSS key log format (what Wireshark reads).

    One instance may be shared by many connections; lines are appended and flushed at once.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._lock = threading.Lock()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)

    def write(self, line: bytes) -> None:
        with self._lock:
            self._file.write(line.rstrip(b"\n") + b"\n")

    def close(self) -> None:
        self._file.close()


@dataclass
class TlsServerConfig:
    """Everything the TLS server needs.

    ``credentials``: the SECC chain provider (see ``CredentialProvider``).
    ``profiles``: which TLS profiles this port accepts.
    ``ev_trust_anchors``: V2G root certificates an ISO 15118-20 EV certificate must chain
    to (a callable so the trust store can change them at run time). Required when
    ISO15118_20 is enabled.
    ``key_log``: NSS key log file for Wireshark, or None (never in production).
    """

    credentials: CredentialProvider
    profiles: tuple[TlsProfile, ...] = (TlsProfile.ISO15118_2,)
    ev_trust_anchors: Callable[[], Sequence[x509.Certificate]] | None = None
    key_log: KeyLog | None = None
    _contexts: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.profiles = tuple(self.profiles)
        if not self.profiles:
            raise ValueError("TlsServerConfig needs at least one profile")
        if TlsProfile.ISO15118_20 in self.profiles and self.ev_trust_anchors is None:
            raise ValueError("ISO 15118-20 TLS needs ev_trust_anchors to check the EV certificate")

    def context_for(self, profile: TlsProfile, credential: SeccCredential, anchors: Sequence[x509.Certificate]) -> SSL.Context:
        """An OpenSSL context for this profile and credential (built once, then cached)."""
        anchor_key = tuple(a.fingerprint(_SHA256) for a in anchors) if profile is TlsProfile.ISO15118_20 else ()
        key = (profile, credential.fingerprint, anchor_key)
        ctx = self._contexts.get(key)
        if ctx is None:
            if len(self._contexts) > 32:  # old credentials after many reloads
                self._contexts.clear()
            ctx = _build_context(profile, credential, anchors, self.key_log)
            self._contexts[key] = ctx
        return ctx


def _build_context(
    profile: TlsProfile, credential: SeccCredential, anchors: Sequence[x509.Certificate], key_log: KeyLog | None
) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_options(SSL.OP_NO_COMPRESSION | SSL.OP_NO_RENEGOTIATION | SSL.OP_CIPHER_SERVER_PREFERENCE)
    if profile is TlsProfile.ISO15118_2:
        ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_max_proto_version(SSL.TLS1_2_VERSION)
        ctx.set_cipher_list(":".join(ISO15118_2_CIPHERS).encode())
        ctx.set_tmp_ecdh(ec.SECP256R1())
        ctx.set_verify(SSL.VERIFY_NONE)
    else:
        ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_max_proto_version(SSL.TLS1_3_VERSION)
        ctx.set_tls13_ciphersuites(":".join(ISO15118_20_CIPHERSUITES).encode())
        store = ctx.get_cert_store()
        assert store is not None
        for anchor in anchors:
            store.add_cert(crypto.X509.from_cryptography(anchor))
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_FAIL_IF_NO_PEER_CERT, None)
        ctx.set_verify_depth(4)
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    ctx.use_certificate(credential.chain[0])
    for cert in credential.chain[1:]:
        ctx.add_extra_chain_cert(cert)
    ctx.use_privatekey(credential.key)  # type: ignore[arg-type]
    ctx.check_privatekey()

    def ocsp(conn: SSL.Connection, data: object) -> bytes:
        engine = conn.get_app_data()
        response = credential.ocsp_response or b""
        if engine is not None and response:
            engine._ocsp_stapled = True
        return response

    ctx.set_ocsp_server_callback(ocsp)
    if key_log is not None:
        ctx.set_keylog_callback(lambda conn, line: key_log.write(line))
    return ctx


def _spki_bit_string(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING contents (without the unused-bits octet) of an SPKI."""
    # SEQUENCE { AlgorithmIdentifier, BIT STRING }: skip outer header and the algorithm.
    def read_len(buf: bytes, i: int) -> tuple[int, int]:
        first = buf[i]
        if first < 0x80:
            return first, i + 1
        n = first & 0x7F
        return int.from_bytes(buf[i + 1 : i + 1 + n], "big"), i + 1 + n

    _, i = read_len(spki_der, 1)
    alg_len, j = read_len(spki_der, i + 1)
    k = j + alg_len
    bs_len, m = read_len(spki_der, k + 1)
    return spki_der[m + 1 : m + bs_len]


# --------------------------------------------------------------------------- #
# ClientHello                                                                  #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class TrustedAuthority:
    """One entry of the RFC 6066 ``trusted_ca_keys`` extension."""

    PRE_AGREED = 0
    KEY_SHA1_HASH = 1
    X509_NAME = 2
    CERT_SHA1_HASH = 3

    identifier_type: int
    identifier: bytes


@dataclass(frozen=True)
class ClientHelloInfo:
    legacy_version: int
    supported_versions: tuple[int, ...]
    cipher_suites: tuple[int, ...]
    trusted_authorities: tuple[TrustedAuthority, ...] | None  # None: extension absent
    status_request: bool
    server_name: str | None

    @property
    def offers_tls13(self) -> bool:
        return 0x0304 in self.supported_versions

    @property
    def offers_tls12(self) -> bool:
        return 0x0303 in self.supported_versions or (not self.supported_versions and self.legacy_version >= 0x0303)


@dataclass(frozen=True)
class TlsFailure:
    """The TLS channel cannot be set up or continued; the adapter closes the connection."""

    reason: str


_MAX_CLIENT_HELLO = 16384 + 5


def parse_client_hello(data: bytes) -> ClientHelloInfo | TlsFailure | None:
    """Parse the first TLS record(s). Returns None while more bytes are needed."""
    if len(data) < 5:
        return None
    if data[0] != 22:
        return TlsFailure(f"first record is not a TLS handshake (content type {data[0]}); plain TCP on the TLS port?")
    if data[1] != 3:
        return TlsFailure(f"record version {data[1]}.{data[2]} is not TLS")
    # Collect handshake bytes across records until the ClientHello is complete.
    handshake = bytearray()
    i = 0
    while True:
        if len(data) < i + 5:
            return None if len(data) < _MAX_CLIENT_HELLO else TlsFailure("ClientHello too large")
        ctype, _, _, length = struct.unpack_from("!BBBH", data, i)
        if ctype != 22:
            return TlsFailure("ClientHello interrupted by a non-handshake record")
        if length == 0 or length > 16384:
            return TlsFailure(f"bad TLS record length {length}")
        if len(data) < i + 5 + length:
            return None
        handshake += data[i + 5 : i + 5 + length]
        i += 5 + length
        if len(handshake) >= 4:
            if handshake[0] != 1:
                return TlsFailure(f"first handshake message is type {handshake[0]}, not ClientHello")
            body_len = int.from_bytes(handshake[1:4], "big")
            if body_len > _MAX_CLIENT_HELLO:
                return TlsFailure("ClientHello too large")
            if len(handshake) >= 4 + body_len:
                try:
                    return _parse_client_hello_body(bytes(handshake[4 : 4 + body_len]))
                except (IndexError, ValueError, struct.error) as exc:
                    return TlsFailure(f"malformed ClientHello: {exc}")


def _parse_client_hello_body(b: bytes) -> ClientHelloInfo:
    def need(pos: int, n: int) -> None:
        if pos + n > len(b):
            raise ValueError("truncated")

    need(0, 2 + 32 + 1)
    legacy_version = int.from_bytes(b[0:2], "big")
    pos = 34
    sid_len = b[pos]
    pos += 1 + sid_len
    need(pos, 2)
    cs_len = int.from_bytes(b[pos : pos + 2], "big")
    pos += 2
    need(pos, cs_len)
    suites = tuple(int.from_bytes(b[pos + k : pos + k + 2], "big") for k in range(0, cs_len - 1, 2))
    pos += cs_len
    need(pos, 1)
    pos += 1 + b[pos]  # compression methods
    versions: tuple[int, ...] = ()
    authorities: tuple[TrustedAuthority, ...] | None = None
    status_request = False
    server_name = None
    if pos + 2 <= len(b):
        ext_total = int.from_bytes(b[pos : pos + 2], "big")
        pos += 2
        end = pos + ext_total
        need(pos, ext_total)
        while pos + 4 <= end:
            etype, elen = struct.unpack_from("!HH", b, pos)
            pos += 4
            need(pos, elen)
            ext = b[pos : pos + elen]
            pos += elen
            if etype == 43 and ext:  # supported_versions
                n = ext[0]
                versions = tuple(int.from_bytes(ext[1 + k : 3 + k], "big") for k in range(0, n - 1, 2))
            elif etype == 3:  # trusted_ca_keys
                authorities = _parse_trusted_authorities(ext)
            elif etype in (5, 17):  # status_request, status_request_v2
                status_request = True
            elif etype == 0 and len(ext) > 5:  # server_name, first host_name
                name_len = int.from_bytes(ext[3:5], "big")
                server_name = ext[5 : 5 + name_len].decode("ascii", "replace")
    return ClientHelloInfo(legacy_version, versions, suites, authorities, status_request, server_name)


def _parse_trusted_authorities(ext: bytes) -> tuple[TrustedAuthority, ...]:
    if len(ext) < 2:
        raise ValueError("trusted_ca_keys too short")
    total = int.from_bytes(ext[0:2], "big")
    if total + 2 > len(ext):
        raise ValueError("trusted_ca_keys length exceeds extension")
    out = []
    pos, end = 2, 2 + total
    while pos < end:
        itype = ext[pos]
        pos += 1
        if itype in (TrustedAuthority.KEY_SHA1_HASH, TrustedAuthority.CERT_SHA1_HASH):
            ident = ext[pos : pos + 20]
            if len(ident) != 20:
                raise ValueError("truncated SHA-1 in trusted_ca_keys")
            pos += 20
        elif itype == TrustedAuthority.X509_NAME:
            n = int.from_bytes(ext[pos : pos + 2], "big")
            ident = ext[pos + 2 : pos + 2 + n]
            if len(ident) != n:
                raise ValueError("truncated x509_name in trusted_ca_keys")
            pos += 2 + n
        elif itype == TrustedAuthority.PRE_AGREED:
            ident = b""
        else:
            raise ValueError(f"unknown trusted_ca_keys identifier type {itype}")
        out.append(TrustedAuthority(itype, ident))
    return tuple(out)


def encode_trusted_ca_keys(authorities: Iterable[TrustedAuthority]) -> bytes:
    """The extension body for a list of authorities (used by the EV emulator and tests)."""
    body = bytearray()
    for a in authorities:
        body.append(a.identifier_type)
        if a.identifier_type == TrustedAuthority.X509_NAME:
            body += len(a.identifier).to_bytes(2, "big")
        body += a.identifier
    return len(body).to_bytes(2, "big") + bytes(body)


# --------------------------------------------------------------------------- #
# Engine                                                                       #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class TlsDetails:
    """What was negotiated; handed to the application with the connection."""

    profile: TlsProfile
    version: str
    cipher: str
    peer_chain: tuple[x509.Certificate, ...]  # EV leaf first (ISO 15118-20), else ()
    trusted_ca_keys: tuple[TrustedAuthority, ...] | None
    trusted_ca_keys_matched: bool
    ocsp_stapled: bool
    server_name: str | None


class TlsServerEngine:
    """Server side of one TLS connection over memory buffers.

    Call order: ``receive_data(bytes)`` with what arrived, then send ``data_to_send()``;
    repeat until ``handshake_done`` (or ``failure`` is set: send what is left and close).
    Then ``receive_data`` returns application bytes and ``send(bytes)`` queues records.
    """

    def __init__(self, config: TlsServerConfig) -> None:
        self.config = config
        self._pending = bytearray()
        self._conn: SSL.Connection | None = None
        self._hello: ClientHelloInfo | None = None
        self._profile: TlsProfile | None = None
        self._matched = False
        self._ocsp_stapled = False
        #: The SECC credential chosen for this connection (after the ClientHello).
        self.credential: SeccCredential | None = None
        self.handshake_done = False
        self.failure: TlsFailure | None = None
        self.details: TlsDetails | None = None
        self._closed = False

    # -- input -------------------------------------------------------------- #
    def receive_data(self, data: bytes) -> bytes:
        """Feed bytes from the peer; returns decrypted application data (maybe empty)."""
        if self.failure is not None or self._closed:
            return b""
        if self._conn is None:
            self._pending += data
            hello = parse_client_hello(bytes(self._pending))
            if hello is None:
                return b""
            if isinstance(hello, TlsFailure):
                self.failure = hello
                return b""
            started = self._start(hello)
            if not started:
                return b""
            data, self._pending = bytes(self._pending), bytearray()
        assert self._conn is not None
        try:
            self._conn.bio_write(data)
        except SSL.Error as exc:
            self._fail(f"TLS error: {_describe(exc)}")
            return b""
        if not self.handshake_done:
            try:
                self._conn.do_handshake()
            except SSL.WantReadError:
                return b""
            except SSL.Error as exc:
                self._fail(f"TLS handshake failed: {_describe(exc)}")
                return b""
            if not self._after_handshake():
                return b""
        return self._read_plaintext()

    def receive_eof(self) -> None:
        self._closed = True

    def send(self, data: bytes) -> None:
        if not self.handshake_done or self.failure is not None:
            raise RuntimeError("send() before the handshake completed or after a failure")
        assert self._conn is not None
        view = memoryview(data)
        while view:
            n = self._conn.send(view[:16384])
            view = view[n:]

    def close(self) -> None:
        """Queue a close_notify (send ``data_to_send()`` afterwards)."""
        if self._conn is not None and self.handshake_done and not self._closed:
            try:
                self._conn.shutdown()
            except SSL.Error:
                pass
        self._closed = True

    def data_to_send(self) -> bytes:
        if self._conn is None:
            return b""
        out = bytearray()
        while True:
            try:
                chunk = self._conn.bio_read(65536)
            except SSL.WantReadError:
                break
            except SSL.Error:
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)

    # -- internals ---------------------------------------------------------- #
    def _start(self, hello: ClientHelloInfo) -> bool:
        profiles = self.config.profiles
        if TlsProfile.ISO15118_20 in profiles and hello.offers_tls13:
            profile = TlsProfile.ISO15118_20
        elif TlsProfile.ISO15118_2 in profiles and hello.offers_tls12:
            profile = TlsProfile.ISO15118_2
        else:
            # Let OpenSSL refuse with the proper alert: use any enabled profile.
            profile = profiles[0]
        credentials = list(self.config.credentials(profile))
        if not credentials:
            self.failure = TlsFailure(f"no SECC certificate available for {profile.value}")
            return False
        credential = credentials[0]
        if hello.trusted_authorities:
            for cand in credentials:
                if cand.matches(hello.trusted_authorities):
                    credential, self._matched = cand, True
                    break
            else:
                _log.warning("no SECC certificate chains to a root the EV lists in trusted_ca_keys; using the first")
        anchors = list(self.config.ev_trust_anchors()) if (profile is TlsProfile.ISO15118_20 and self.config.ev_trust_anchors) else []
        try:
            ctx = self.config.context_for(profile, credential, anchors)
        except (SSL.Error, ValueError) as exc:
            self.failure = TlsFailure(f"SECC credential unusable: {exc}")
            return False
        self.credential = credential
        self._conn = SSL.Connection(ctx, None)
        self._conn.set_app_data(self)
        self._conn.set_accept_state()
        self._hello, self._profile = hello, profile
        return True

    def _after_handshake(self) -> bool:
        assert self._conn is not None and self._profile is not None and self._hello is not None
        self.handshake_done = True
        # On the server side OpenSSL's peer chain lacks the leaf; put it in front.
        chain = list(self._conn.get_peer_cert_chain(as_cryptography=True) or [])
        leaf = self._conn.get_peer_certificate(as_cryptography=True)
        if leaf is not None and (not chain or chain[0] != leaf):
            chain.insert(0, leaf)
        self.details = TlsDetails(
            profile=self._profile,
            version=self._conn.get_protocol_version_name(),
            cipher=self._conn.get_cipher_name() or "",
            peer_chain=tuple(chain),
            trusted_ca_keys=self._hello.trusted_authorities,
            trusted_ca_keys_matched=self._matched,
            ocsp_stapled=self._ocsp_stapled,
            server_name=self._hello.server_name,
        )
        return True

    def _read_plaintext(self) -> bytes:
        assert self._conn is not None
        out = bytearray()
        while True:
            try:
                chunk = self._conn.recv(65536)
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                self._closed = True
                break
            except SSL.Error as exc:
                self._fail(f"TLS error: {_describe(exc)}")
                break
            if not chunk:
                break
            out += chunk
        return bytes(out)

    def _fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = TlsFailure(reason)

    @property
    def peer_closed(self) -> bool:
        return self._closed


def _describe(exc: Exception) -> str:
    args = exc.args[0] if exc.args else exc
    if isinstance(args, list):
        return "; ".join(":".join(str(p) for p in item if p) for item in args) or type(exc).__name__
    return str(args) or type(exc).__name__
