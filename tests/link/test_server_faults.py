"""Bad input at the TCP/TLS server: each fault closes only its own connection, with a log line;
a well-behaved EV connected at the same time keeps working."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pnc_bridge.link.server import V2gtpServer
from pnc_bridge.link.tls import SeccCredential, StaticCredentialProvider, TlsServerConfig
from pnc_bridge.link.v2gtp import V2gtpFramer, frame

pytestmark = pytest.mark.timeout(60)


async def _echo(conn):
    async for fr in conn:
        await conn.send(fr.payload_type, b"re:" + fr.payload)


async def _roundtrip(port, payload=b"hello"):
    reader, writer = await asyncio.open_connection("::1", port)
    writer.write(frame(0x8001, payload))
    framer = V2gtpFramer()
    events = []
    while not events:
        events = framer.receive_data(await asyncio.wait_for(reader.read(4096), 5))
    writer.close()
    return events[0].payload


async def _closed_by_server(reader, timeout=5.0) -> bool:
    try:
        while True:
            data = await asyncio.wait_for(reader.read(4096), timeout)
            if not data:
                return True
    except ConnectionResetError:
        return True


@pytest.mark.parametrize(
    "attack,log",
    [
        (b"\x02\xfd\x80\x01\x00\x00\x00\x01x", "bad V2GTP header: protocol version"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad V2GTP header"),
        (b"\x01\xfe\x80\x01\x7f\xff\xff\xff", "payload length exceeds"),
    ],
    ids=["bad-version", "http", "oversize"],
)
def test_bad_header_closes_that_connection_only(attack, log, caplog):
    async def main():
        async with V2gtpServer(_echo, host="::1") as srv:
            good_r, good_w = await asyncio.open_connection("::1", srv.port)
            bad_r, bad_w = await asyncio.open_connection("::1", srv.port)
            bad_w.write(attack)
            await bad_w.drain()
            assert await _closed_by_server(bad_r)
            good_w.write(frame(0x8001, b"still here"))
            framer = V2gtpFramer()
            events = []
            while not events:
                events = framer.receive_data(await asyncio.wait_for(good_r.read(4096), 5))
            assert events[0].payload == b"re:still here"
            good_w.close()
            assert await _roundtrip(srv.port) == b"re:hello"

    with caplog.at_level(logging.WARNING, logger="pnc_bridge.link.server"):
        asyncio.run(main())
    assert any(log in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]


def test_unknown_payload_type_is_logged_and_skipped(caplog):
    async def main():
        async with V2gtpServer(_echo, host="::1") as srv:
            r, w = await asyncio.open_connection("::1", srv.port)
            w.write(frame(0x4242, b"x" * 100) + frame(0x8001, b"after"))
            framer = V2gtpFramer()
            events = []
            while not events:
                events = framer.receive_data(await asyncio.wait_for(r.read(4096), 5))
            w.close()
            return events[0].payload

    with caplog.at_level(logging.WARNING, logger="pnc_bridge.link.server"):
        assert asyncio.run(main()) == b"re:after"
    assert any("0x4242" in r.getMessage() for r in caplog.records)


def test_slow_loris_frame_is_cut_off(caplog):
    async def main():
        async with V2gtpServer(_echo, host="::1", frame_assembly_timeout=0.3) as srv:
            r, w = await asyncio.open_connection("::1", srv.port)
            data = frame(0x8001, b"y" * 50)
            closed = False
            for i in range(len(data)):  # one octet every 50 ms never completes in time
                try:
                    w.write(data[i : i + 1])
                    await w.drain()
                except ConnectionError:
                    closed = True
                    break
                await asyncio.sleep(0.05)
                if r.at_eof():
                    closed = True
                    break
            closed = closed or await _closed_by_server(r, timeout=2)
            assert closed
            assert await _roundtrip(srv.port) == b"re:hello"

    with caplog.at_level(logging.WARNING, logger="pnc_bridge.link.server"):
        asyncio.run(main())
    assert any("slow sender" in r.getMessage() for r in caplog.records)


def test_idle_connection_closed_after_inactivity_timeout(caplog):
    async def main():
        async with V2gtpServer(_echo, host="::1", inactivity_timeout=0.3) as srv:
            r, w = await asyncio.open_connection("::1", srv.port)
            assert await _closed_by_server(r, timeout=5)

    with caplog.at_level(logging.WARNING, logger="pnc_bridge.link.server"):
        asyncio.run(main())
    assert any("inactivity" in r.getMessage() for r in caplog.records)


def test_silent_tls_client_hits_the_handshake_timeout(pki, caplog):
    chain = pki["secc2"]
    config = TlsServerConfig(StaticCredentialProvider([SeccCredential(chain.chain, chain.key)]))

    async def main():
        async with V2gtpServer(_echo, host="::1", tls=config, handshake_timeout=0.3) as srv:
            r, w = await asyncio.open_connection("::1", srv.port)
            w.write(b"\x16\x03\x01\x00")  # a record header that never completes
            assert await _closed_by_server(r, timeout=5)

    with caplog.at_level(logging.WARNING, logger="pnc_bridge.link.server"):
        asyncio.run(main())
    assert any("TLS handshake not completed" in r.getMessage() for r in caplog.records)


def test_plain_tcp_on_the_tls_port_is_refused(pki, caplog):
    chain = pki["secc2"]
    config = TlsServerConfig(StaticCredentialProvider([SeccCredential(chain.chain, chain.key)]))

    async def main():
        async with V2gtpServer(_echo, host="::1", tls=config) as srv:
            r, w = await asyncio.open_connection("::1", srv.port)
            w.write(frame(0x8001, b"plain"))
            assert await _closed_by_server(r)

    with caplog.at_level(logging.WARNING, logger="pnc_bridge.link.server"):
        asyncio.run(main())
    assert any("not a TLS handshake" in r.getMessage() for r in caplog.records)


def test_handler_exception_closes_and_is_logged(caplog):
    async def broken(conn):
        await conn.receive()
        raise RuntimeError("bug in the application")

    async def main():
        async with V2gtpServer(broken, host="::1") as srv:
            r, w = await asyncio.open_connection("::1", srv.port)
            w.write(frame(0x8001, b"x"))
            assert await _closed_by_server(r)

    with caplog.at_level(logging.ERROR, logger="pnc_bridge.link.server"):
        asyncio.run(main())
    assert any("handler for" in r.getMessage() for r in caplog.records)


def test_connection_limit(caplog):
    async def main():
        async with V2gtpServer(_echo, host="::1", max_connections=2) as srv:
            conns = [await asyncio.open_connection("::1", srv.port) for _ in range(2)]
            await asyncio.sleep(0.1)
            r, w = await asyncio.open_connection("::1", srv.port)
            assert await _closed_by_server(r)
            for _, cw in conns:
                cw.close()

    with caplog.at_level(logging.WARNING, logger="pnc_bridge.link.server"):
        asyncio.run(main())
    assert any("too many connections" in r.getMessage() for r in caplog.records)
