"""The whole link in two network namespaces: SLAC, then SDP, then TCP and TLS, then V2GTP
frames both ways. The EV side is hil's emulator plus the standard library / OpenSSL clients."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from cryptography.hazmat.primitives import serialization

from openssl_cli import s_client
from hil.ev_sdp import discover_secc
from hil.ev_slac import EvMatched, EvSlac, run_ev_slac
from hil.plc_modem import answer as modem_answer
from pnc_bridge.link.sdp import SdpPolicy, Security
from pnc_bridge.link.sdp_server import SdpServer, link_local_address
from pnc_bridge.link.server import V2gtpServer
from pnc_bridge.link.slac import CpState, Matched, SlacState
from pnc_bridge.link.slac import frames as f
from pnc_bridge.link.slac.adapter import RawSocket, SlacService, interface_mac
from pnc_bridge.link.tls import SeccCredential, StaticCredentialProvider, TlsServerConfig
from pnc_bridge.link.v2gtp import PayloadType, V2gtpFramer, frame

pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


class Modem:
    """hil.plc_modem on a raw socket; remembers the keys it was given."""

    def __init__(self, iface: str) -> None:
        self.sock = RawSocket(iface)
        self.keys: list[f.CM_SET_KEY_REQ] = []

    def start(self) -> None:
        def on_frame(data: bytes) -> None:
            reply = modem_answer(data)
            if reply is not None:
                self.keys.append(f.decode(data).message)
                self.sock.send(reply)

        self.sock.start(on_frame)


def test_slac_sdp_tcp_tls_v2gtp(netns_pair, ns_loops, pki, tmp_path):
    ev_loop, evse_loop = ns_loops
    pair = netns_pair

    # -- SLAC ---------------------------------------------------------------- #
    evse_events: list = []

    async def evse_slac_start():
        service = SlacService(pair.evse_if, evse_events.append, evse_id=b"DE*PNC*E0001")
        await service.start()
        service.cp_state(CpState.B)
        return service

    async def ev_modem_start():
        modem = Modem(pair.ev_if)
        modem.start()
        return modem

    modem = ev_loop.run(ev_modem_start())
    service = evse_loop.run(evse_slac_start())
    # The EVSE sets its key first (the modem confirms), then waits for CM_SLAC_PARM.REQ.
    for _ in range(100):
        if service.evse.state is SlacState.WAIT_FOR_CM_SLAC_PARM_REQ:
            break
        evse_loop.run(asyncio.sleep(0.02))
    assert service.evse.state is SlacState.WAIT_FOR_CM_SLAC_PARM_REQ

    async def ev_slac():
        ev = EvSlac(interface_mac(pair.ev_if), pev_id=b"EV-UNDER-TEST")
        return await run_ev_slac(pair.ev_if, ev, timeout=20)

    result = ev_loop.run(ev_slac())
    assert isinstance(result, EvMatched)
    matched = [e for e in evse_events if isinstance(e, Matched)]
    assert len(matched) == 1
    assert matched[0].ev_mac == ev_loop.run(_mac(pair.ev_if))
    assert result.evse_mac == service.evse.evse_mac
    assert (result.nid, result.nmk) == (matched[0].nid, matched[0].nmk)
    # The NMK handed to the EV is the one the EVSE put into its modem.
    assert modem.keys and modem.keys[-1].new_key == result.nmk and modem.keys[-1].nid == result.nid
    assert result.evse_id.rstrip(b"\x00") == b"DE*PNC*E0001"

    # -- SDP + servers -------------------------------------------------------- #
    chain = pki["secc2"]
    provider = StaticCredentialProvider([SeccCredential(chain.chain, chain.key, root=chain.root)])
    keylog = tmp_path / "keys.log"

    async def echo(conn):
        async for fr in conn:
            await conn.send(fr.payload_type, b"re:" + fr.payload)

    async def evse_servers():
        from pnc_bridge.link.tls import KeyLog

        tcp = V2gtpServer(echo, port=0, interface=pair.evse_if)
        tls = V2gtpServer(echo, port=0, interface=pair.evse_if,
                          tls=TlsServerConfig(provider, key_log=KeyLog(str(keylog))))
        await tcp.start()
        await tls.start()
        addr = link_local_address(pair.evse_if)
        sdp = SdpServer(pair.evse_if, SdpPolicy(addr, tls_port=tls.port, tcp_port=tcp.port))
        await sdp.start()
        return tcp, tls, sdp, addr

    tcp, tls, sdp, evse_addr = evse_loop.run(evse_servers())

    response = ev_loop.run(discover_secc(pair.ev_if, Security.TLS, max_requests=20))
    assert response is not None
    assert response.secc_ip_address == evse_addr and response.secc_ip_address.is_link_local
    assert (response.secc_port, response.security) == (tls.port, Security.TLS)
    plain = ev_loop.run(discover_secc(pair.ev_if, Security.NO_TLS, max_requests=20))
    assert (plain.secc_port, plain.security) == (tcp.port, Security.NO_TLS)

    # -- TCP: V2GTP both ways ------------------------------------------------ #
    async def ev_tcp(port: int):
        scope = socket.if_nametoindex(pair.ev_if)
        reader, writer = await asyncio.open_connection(str(evse_addr) + f"%{pair.ev_if}", port)
        framer = V2gtpFramer()
        writer.write(frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, b"\x80\x00\xdb\xab\x93\x71"))
        await writer.drain()
        events = []
        while not events:
            events = framer.receive_data(await asyncio.wait_for(reader.read(4096), 5))
        writer.close()
        return scope, events

    scope, events = ev_loop.run(ev_tcp(plain.secc_port))
    assert events[0].payload == b"re:\x80\x00\xdb\xab\x93\x71"

    # -- TLS: the standard library's client (OpenSSL) ------------------------ #
    root_pem = chain.root.public_bytes(serialization.Encoding.PEM).decode()

    async def ev_tls(port: int):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers("ECDHE-ECDSA-AES128-SHA256")
        ctx.check_hostname = False
        ctx.load_verify_locations(cadata=root_pem)
        reader, writer = await asyncio.open_connection(str(evse_addr) + f"%{pair.ev_if}", port, ssl=ctx)
        info = writer.get_extra_info("ssl_object")
        framer = V2gtpFramer()
        writer.write(frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, b"tls-payload"))
        await writer.drain()
        events = []
        while not events:
            events = framer.receive_data(await asyncio.wait_for(reader.read(4096), 5))
        writer.close()
        return info.version(), info.cipher()[0], events

    version, cipher, events = ev_loop.run(ev_tls(response.secc_port))
    assert (version, cipher) == ("TLSv1.2", "ECDHE-ECDSA-AES128-SHA256")
    assert events[0].payload == b"re:tls-payload"
    assert "CLIENT_RANDOM" in keylog.read_text()

    # -- TLS: openssl s_client from the EV namespace ------------------------- #
    ca = tmp_path / "root.pem"
    ca.write_text(root_pem)
    expected = frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, b"re:openssl")
    res = s_client(
        ["-connect", f"[{evse_addr}%{pair.ev_if}]:{tls.port}", "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256",
         "-CAfile", str(ca), "-verify_return_error"],
        frame(PayloadType.EXI_ENCODED_V2G_MESSAGE, b"openssl"), expected, prefix=pair.exec_args(pair.ev_ns),
    )
    assert expected in res.stdout, res.stderr

    async def stop():
        await sdp.close()
        await tls.close()
        await tcp.close()
        await service.close()
        modem.sock.close()

    evse_loop.run(stop())


async def _mac(iface):
    return interface_mac(iface)
