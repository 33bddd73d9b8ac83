"""SDP responder: the policy table, wire layout, and what gets no answer."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pnc_bridge.link.sdp import (
    SdpAnswer,
    SdpIgnored,
    SdpPolicy,
    SdpRequest,
    SdpResponder,
    Security,
    TransportProtocol,
    decode_response,
    encode_request,
)

ADDR = ipaddress.IPv6Address("fe80::2:3ff:fe04:506")


@pytest.mark.parametrize(
    "asked,tls_port,tcp_port,port,security",
    [
        (Security.TLS, 64109, 64110, 64109, Security.TLS),
        (Security.NO_TLS, 64109, 64110, 64110, Security.NO_TLS),
        (Security.TLS, None, 64110, 64110, Security.NO_TLS),  # charger without TLS
        (Security.NO_TLS, 64109, None, 64109, Security.TLS),  # PnC-only charger insists on TLS
    ],
)
def test_policy_table(asked, tls_port, tcp_port, port, security):
    responder = SdpResponder(SdpPolicy(ADDR, tls_port=tls_port, tcp_port=tcp_port))
    answer = responder.receive_datagram(encode_request(SdpRequest(asked, TransportProtocol.TCP)))
    assert isinstance(answer, SdpAnswer)
    assert (answer.response.secc_port, answer.response.security) == (port, security)
    # The answer on the wire: header, 16-octet address, port, security, transport.
    assert answer.data[:8] == bytes.fromhex("01fe900100000014")
    assert answer.data[8:24] == ADDR.packed
    assert int.from_bytes(answer.data[24:26], "big") == port
    assert answer.data[26:] == bytes([security, TransportProtocol.TCP])
    assert decode_response(answer.data) == answer.response


def test_udp_request_is_answered_with_tcp():
    responder = SdpResponder(SdpPolicy(ADDR, tls_port=1))
    answer = responder.receive_datagram(encode_request(SdpRequest(Security.TLS, TransportProtocol.UDP)))
    assert answer.response.transport_protocol is TransportProtocol.TCP


@pytest.mark.parametrize(
    "datagram,why",
    [
        (bytes.fromhex("01fe9000000000022000"), "Security 0x20"),
        (bytes.fromhex("01fe9000000000020001"), "TransportProtocol 0x01"),
        (bytes.fromhex("01fe900000000003000000"), "3 octets"),
        (bytes.fromhex("01fe90000000000200"), "not an SDP request"),  # length says 2, one octet present
        (bytes.fromhex("02fd9000000000020000"), "protocol version"),
        (bytes.fromhex("01fe9001000000020000"), "unknown payload type 0x9001"),
        (b"", "not an SDP request"),
    ],
)
def test_bad_requests_get_no_answer(datagram, why):
    result = SdpResponder(SdpPolicy(ADDR, tls_port=1)).receive_datagram(datagram)
    assert isinstance(result, SdpIgnored)
    assert why in result.reason


@given(st.binary(max_size=64))
def test_any_datagram_is_answered_or_ignored(data):
    result = SdpResponder(SdpPolicy(ADDR, tls_port=1, tcp_port=2)).receive_datagram(data)
    assert isinstance(result, (SdpAnswer, SdpIgnored))


def test_policy_needs_a_port():
    with pytest.raises(ValueError):
        SdpPolicy(ADDR)
