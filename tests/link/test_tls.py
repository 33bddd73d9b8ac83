"""TLS on the V2GTP server, checked with clients nobody here wrote: `openssl s_client`, Python's
ssl module, and tshark decrypting a capture with our key log."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import ssl
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from openssl_cli import s_client
from pnc_bridge.link.server import V2gtpServer
from pnc_bridge.link.tls import (
    FileCredentialProvider,
    KeyLog,
    SeccCredential,
    StaticCredentialProvider,
    TlsProfile,
    TlsServerConfig,
    TlsServerEngine,
    TrustedAuthority,
    encode_trusted_ca_keys,
    parse_client_hello,
)
from pnc_bridge.link.v2gtp import PayloadType, frame

pytestmark = pytest.mark.timeout(60)

PING = frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, b"ping")
PONG = frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, b"re:ping")


def cred(chain, ocsp_response=None):
    return SeccCredential(chain.chain, chain.key, root=chain.root, ocsp_response=ocsp_response)


class Running:
    """A V2GTP TLS server on [::1] in a background loop, answering each frame with 're:'+payload."""

    def __init__(self, config, **kw):
        self.connections = []
        self.loop = asyncio.new_event_loop()
        import threading

        async def echo(conn):
            self.connections.append(conn)
            async for fr in conn:
                await conn.send(fr.payload_type, b"re:" + fr.payload)

        self.server = V2gtpServer(echo, tls=config, host="::1", **kw)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        self.port = self.server.port

    def close(self):
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def serve():
    servers = []

    def start(config, **kw):
        s = Running(config, **kw)
        servers.append(s)
        return s

    yield start
    for s in servers:
        s.close()


def write_pem(path, certs):
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return str(path)


# --------------------------------------------------------------------------- ISO 15118-2
@pytest.mark.parametrize("cipher", ["ECDHE-ECDSA-AES128-SHA256"])
def test_iso2_suite_accepted_by_openssl(serve, pki, tmp_path, cipher):
    srv = serve(TlsServerConfig(StaticCredentialProvider([cred(pki["secc2"])])))
    ca = write_pem(tmp_path / "root.pem", [pki["secc2"].root])
    res = s_client(["-connect", f"[::1]:{srv.port}", "-tls1_2", "-cipher", cipher, "-CAfile", ca,
                    "-verify_return_error", "-groups", "P-256"], PING, PONG)
    assert PONG in res.stdout, res.stderr
    assert "verify return:1" in res.stderr


@pytest.mark.parametrize(
    "args,alert",
    [
        (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"], "handshake failure"),
        (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"], "handshake failure"),
        (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256", "-groups", "P-384"], "handshake failure"),
        (["-tls1_1", "-cipher", "ALL:@SECLEVEL=0"], "protocol version"),
        (["-tls1_3"], "protocol version"),  # an ISO 15118-2-only port refuses TLS 1.3
    ],
    ids=["aes256-gcm", "sha1-mac", "p384-only", "tls1.1", "tls1.3-on-iso2"],
)
def test_other_suites_and_versions_refused(serve, pki, args, alert):
    srv = serve(TlsServerConfig(StaticCredentialProvider([cred(pki["secc2"])])))
    res = s_client(["-connect", f"[::1]:{srv.port}", *args], PING, PONG, timeout=10)
    assert PONG not in res.stdout
    assert alert in res.stderr or "no protocols available" in res.stderr, res.stderr
    # The server is still fine for the next, proper EV.
    ok = s_client(["-connect", f"[::1]:{srv.port}", "-tls1_2"], PING, PONG)
    assert PONG in ok.stdout


# --------------------------------------------------------------------------- ISO 15118-20
@pytest.mark.parametrize("secc", ["secc20", "secc20_ed448"])
def test_iso20_mutual_auth(serve, pki, tmp_path, secc):
    config = TlsServerConfig(
        StaticCredentialProvider([cred(pki[secc]), cred(pki["secc2"])]),
        profiles=(TlsProfile.ISO15118_2, TlsProfile.ISO15118_20),
        ev_trust_anchors=lambda: [pki["oem"].root],
    )
    srv = serve(config)
    oem = pki["oem"]
    cert = write_pem(tmp_path / "ev.pem", [oem.chain[0]])
    chain = write_pem(tmp_path / "ev-chain.pem", oem.chain[1:])
    key = tmp_path / "ev-key.pem"
    key.write_bytes(oem.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    ca = write_pem(tmp_path / "root.pem", [pki[secc].root])
    res = s_client(["-connect", f"[::1]:{srv.port}", "-tls1_3", "-cert", cert, "-cert_chain", chain, "-key", str(key),
                    "-CAfile", ca, "-verify_return_error", "-ciphersuites", "TLS_AES_256_GCM_SHA384"], PING, PONG)
    assert PONG in res.stdout, res.stderr
    conn = srv.connections[-1]
    assert conn.tls.version == "TLSv1.3" and conn.tls.cipher == "TLS_AES_256_GCM_SHA384"
    assert conn.tls.profile is TlsProfile.ISO15118_20
    assert [c.subject for c in conn.tls.peer_chain] == [c.subject for c in oem.chain]
    # A -2 EV on the same port gets TLS 1.2 and no CertificateRequest.
    res2 = s_client(["-connect", f"[::1]:{srv.port}", "-tls1_2"], PING, PONG)
    assert PONG in res2.stdout and "Acceptable client certificate CA names" not in res2.stderr
    assert srv.connections[-1].tls.peer_chain == ()


@pytest.mark.parametrize("client", ["untrusted", "none"])
def test_iso20_refuses_ev_without_trusted_certificate(serve, pki, tmp_path, client):
    config = TlsServerConfig(StaticCredentialProvider([cred(pki["secc20"])]), profiles=(TlsProfile.ISO15118_20,),
                             ev_trust_anchors=lambda: [pki["oem"].root])
    srv = serve(config)
    args = ["-connect", f"[::1]:{srv.port}", "-tls1_3"]
    if client == "untrusted":
        rogue = pki["oem_untrusted"]
        key = tmp_path / "k.pem"
        key.write_bytes(rogue.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
        args += ["-cert", write_pem(tmp_path / "c.pem", [rogue.chain[0]]),
                 "-cert_chain", write_pem(tmp_path / "cc.pem", rogue.chain[1:]), "-key", str(key)]
    res = s_client(args, PING, PONG, timeout=10)
    assert PONG not in res.stdout
    assert ("unknown ca" in res.stderr) or ("certificate required" in res.stderr), res.stderr
    assert srv.connections == []


def test_iso20_chacha_suite_and_aes128_refused(serve, pki, tmp_path):
    config = TlsServerConfig(StaticCredentialProvider([cred(pki["secc20"])]), profiles=(TlsProfile.ISO15118_20,),
                             ev_trust_anchors=lambda: [pki["oem"].root])
    srv = serve(config)
    res = s_client(["-connect", f"[::1]:{srv.port}", "-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"], PING, PONG,
                   timeout=10)
    assert "handshake failure" in res.stderr


# --------------------------------------------------------------------------- trusted_ca_keys, OCSP
def _client_hello(extra_ext: bytes = b"") -> bytes:
    """A real ClientHello from Python's ssl (TLS 1.2), with ``extra_ext`` spliced into its extensions."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out)
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    rec = bytearray(out.read())
    if not extra_ext:
        return bytes(rec)
    body = rec[9:]
    pos = 34
    pos += 1 + body[pos]
    pos += 2 + int.from_bytes(body[pos:pos + 2], "big")
    pos += 1 + body[pos]
    ext_len = int.from_bytes(body[pos:pos + 2], "big")
    body[pos:pos + 2] = (ext_len + len(extra_ext)).to_bytes(2, "big")
    body += extra_ext
    hs = b"\x01" + len(body).to_bytes(3, "big") + bytes(body)
    return b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs


def _ext(etype: int, data: bytes) -> bytes:
    return etype.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data


@pytest.mark.parametrize("how", ["x509_name", "cert_sha1_hash", "key_sha1_hash"])
def test_trusted_ca_keys_selects_the_matching_secc_chain(pki, how):
    other, wanted = pki["secc2_other"], pki["secc2"]
    root = wanted.root
    ident = {
        "x509_name": TrustedAuthority(TrustedAuthority.X509_NAME, root.subject.public_bytes()),
        "cert_sha1_hash": TrustedAuthority(TrustedAuthority.CERT_SHA1_HASH,
                                           root.fingerprint(hashes.SHA1())),
        "key_sha1_hash": TrustedAuthority(
            TrustedAuthority.KEY_SHA1_HASH,
            root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest),
    }[how]
    hello = _client_hello(_ext(3, encode_trusted_ca_keys([ident])))
    info = parse_client_hello(hello)
    assert info.trusted_authorities == (ident,)
    engine = TlsServerEngine(TlsServerConfig(StaticCredentialProvider([cred(other), cred(wanted)])))
    engine.receive_data(hello)
    assert engine.failure is None
    assert engine.credential.chain[0] == wanted.chain[0]
    assert engine.data_to_send()[:1] == b"\x16"  # ServerHello went out
    # Without the extension the first credential is used.
    plain = TlsServerEngine(TlsServerConfig(StaticCredentialProvider([cred(other), cred(wanted)])))
    plain.receive_data(_client_hello())
    assert plain.credential.chain[0] == other.chain[0]


@pytest.mark.parametrize("data", [b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00",
                                  b"\x16\x03\x01\x40\x01" + b"\x01" * 10, b"\x16\x03\x01\x00\x04\x01\x00\x00\x00"])
def test_garbage_instead_of_client_hello_is_a_failure_value(pki, data):
    engine = TlsServerEngine(TlsServerConfig(StaticCredentialProvider([cred(pki["secc2"])])))
    engine.receive_data(data)
    assert engine.failure is not None or not engine.handshake_done


def _ocsp_response(chain) -> bytes:
    leaf, issuer = chain.chain[0], chain.chain[1]
    now = dt.datetime.now(dt.timezone.utc)
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=leaf, issuer=issuer, algorithm=hashes.SHA256(), cert_status=ocsp.OCSPCertStatus.GOOD,
        this_update=now, next_update=now + dt.timedelta(days=1), revocation_time=None, revocation_reason=None,
    ).responder_id(ocsp.OCSPResponderEncoding.HASH, leaf)
    # Signed with the leaf's own key: not a response an EV should trust, but a well-formed one,
    # which is all this test needs to see it stapled.
    return builder.sign(chain.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def test_ocsp_stapled_when_the_ev_asks(serve, pki):
    chain = pki["secc2"]
    srv = serve(TlsServerConfig(StaticCredentialProvider([cred(chain, _ocsp_response(chain))])))
    res = s_client(["-connect", f"[::1]:{srv.port}", "-tls1_2", "-status"], PING, PONG, quiet=False)
    assert "OCSP Response Status: successful" in res.stderr + res.stdout.decode(errors="replace")
    assert srv.connections[-1].tls.ocsp_stapled
    res = s_client(["-connect", f"[::1]:{srv.port}", "-tls1_2"], PING, PONG)
    assert PONG in res.stdout and not srv.connections[-1].tls.ocsp_stapled


# --------------------------------------------------------------------------- reload, key log
def test_secc_certificate_reload_without_restart(serve, pki, tmp_path):
    a, b = pki["secc2"], pki["secc2_other"]
    chain_path, key_path = tmp_path / "chain.pem", tmp_path / "key.pem"

    def install(c):
        tmp = tmp_path / "new"
        tmp.mkdir(exist_ok=True)
        cp, kp, _ = c.write(tmp, "x")
        os.replace(cp, chain_path)
        os.replace(kp, key_path)

    install(a)
    srv = serve(TlsServerConfig(FileCredentialProvider(str(chain_path), str(key_path))))

    def leaf_seen():
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with ctx.wrap_socket(__import__("socket").create_connection(("::1", srv.port), timeout=5)) as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True))

    assert leaf_seen() == a.chain[0]
    install(b)
    assert leaf_seen() == b.chain[0]
    # A broken replacement keeps the last good certificate.
    chain_path.write_text("not a certificate")
    assert leaf_seen() == b.chain[0]


@pytest.mark.skipif(shutil.which("tshark") is None or shutil.which("dumpcap") is None or os.geteuid() != 0,
                    reason="needs tshark/dumpcap and root to capture on loopback")
def test_key_log_decrypts_a_captured_session(serve, pki, tmp_path):
    keylog = tmp_path / "keys.log"
    pcap = tmp_path / "cap.pcapng"
    srv = serve(TlsServerConfig(StaticCredentialProvider([cred(pki["secc2"])]), key_log=KeyLog(str(keylog))))
    cap = subprocess.Popen(["dumpcap", "-q", "-i", "lo", "-f", f"tcp port {srv.port}", "-w", str(pcap)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):  # dumpcap writes the file header once it captures
            if pcap.exists() and pcap.stat().st_size > 0:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        secret = b"V2G-secret-payload"
        res = s_client(["-connect", f"[::1]:{srv.port}", "-tls1_2"],
                       frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, secret),
                       frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, b"re:" + secret))
        assert b"re:" + secret in res.stdout
        time.sleep(0.5)
    finally:
        cap.terminate()
        cap.wait(10)
    assert secret not in pcap.read_bytes()  # encrypted on the wire
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-o", f"tls.keylog_file:{keylog}", "-d", f"tcp.port=={srv.port},tls",
         "-Y", "tls.app_data", "-x"],
        capture_output=True, text=True, timeout=60,
    )
    assert "Decrypted TLS" in out.stdout, out.stdout[-2000:] + out.stderr
    assert secret.hex()[:16] in out.stdout.replace(" ", "") or "V2G-secret" in out.stdout
