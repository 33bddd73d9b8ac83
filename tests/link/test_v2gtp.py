"""V2GTP framing: header vectors both ways, every split of a stream, faults as values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pnc_bridge.link.v2gtp import (
    CloseReason,
    ConnectionMustClose,
    Frame,
    FrameDiscarded,
    PayloadType,
    V2gtpFramer,
    frame,
    parse_datagram,
)

# (payload type, payload, bytes on the wire) - the header layout of ISO 15118-2 / -20.
VECTORS = [
    # A 34-octet EXI payload: length 0x22 in network byte order.
    (PayloadType.EXI_ENCODED_V2G_MESSAGE, bytes.fromhex("8000dbab9371d3234b71d1b981899189d191818991d26b9b3a232b30020000040040"),
     bytes.fromhex("01fe800100000022" "8000dbab9371d3234b71d1b981899189d191818991d26b9b3a232b30020000040040")),
    (PayloadType.SDP_REQUEST, b"\x00\x00", bytes.fromhex("01fe9000000000020000")),
    (PayloadType.SDP_RESPONSE, bytes(16) + b"\xfa\x6d\x00\x00", bytes.fromhex("01fe900100000014") + bytes(16) + b"\xfa\x6d\x00\x00"),
    (PayloadType.DC_MAINSTREAM, b"", bytes.fromhex("01fe800400000000")),
]


@pytest.mark.parametrize("ptype,payload,wire", VECTORS, ids=["exi", "sdp-req", "sdp-res", "iso20-dc-empty"])
def test_vectors_both_ways(ptype, payload, wire):
    assert frame(ptype, payload) == wire
    framer = V2gtpFramer(accepted_payload_types={ptype})
    assert framer.receive_data(wire) == [Frame(ptype, payload)]


def test_iso20_names_share_the_iso2_value():
    assert PayloadType.SAP == PayloadType.EXI_ENCODED_V2G_MESSAGE == 0x8001
    assert [int(PayloadType[n]) for n in ("MAINSTREAM", "AC_MAINSTREAM", "DC_MAINSTREAM", "ACDP_MAINSTREAM", "WPT_MAINSTREAM")] == [
        0x8002, 0x8003, 0x8004, 0x8005, 0x8006]


@given(
    st.lists(st.tuples(st.sampled_from([0x8001, 0x8002, 0x8004]), st.binary(max_size=300)), min_size=1, max_size=6),
    st.data(),
)
def test_any_split_gives_the_same_frames(messages, data):
    stream = b"".join(frame(t, p) for t, p in messages)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    framer = V2gtpFramer()
    got = []
    last = 0
    for cut in cuts + [len(stream)]:
        got += framer.receive_data(stream[last:cut])
        last = cut
    assert got == [Frame(t, p) for t, p in messages]
    assert not framer.in_frame


@settings(max_examples=300)
@given(st.binary(max_size=200), st.binary(max_size=40))
def test_garbage_never_raises(garbage, more):
    framer = V2gtpFramer(max_payload_length=64)
    events = framer.receive_data(garbage) + framer.receive_data(more) + framer.receive_eof()
    for e in events:
        assert isinstance(e, (Frame, FrameDiscarded, ConnectionMustClose))
    # After a close nothing else is reported.
    closes = [i for i, e in enumerate(events) if isinstance(e, ConnectionMustClose)]
    assert len(closes) <= 1 and (not closes or closes[0] == len(events) - 1)


@pytest.mark.parametrize("header", [b"\x02\xfe", b"\x01\xff", b"\x00\x00", b"GE"])
def test_bad_version_closes(header):
    framer = V2gtpFramer()
    events = framer.receive_data(header + b"\x80\x01\x00\x00\x00\x00")
    assert events == [ConnectionMustClose(CloseReason.BAD_VERSION, header + b"\x80\x01\x00\x00\x00\x00")]
    assert framer.closed
    assert framer.receive_data(frame(0x8001, b"x")) == []


def test_oversize_length_closes_without_buffering():
    framer = V2gtpFramer(max_payload_length=1000)
    events = framer.receive_data(b"\x01\xfe\x80\x01\xff\xff\xff\xff")
    assert len(events) == 1 and events[0].reason is CloseReason.TOO_LARGE
    ok = V2gtpFramer(max_payload_length=1000)
    assert ok.receive_data(frame(0x8001, b"a" * 1000)) == [Frame(0x8001, b"a" * 1000)]


def test_unknown_payload_type_is_skipped_and_stream_goes_on():
    framer = V2gtpFramer()
    stream = frame(0x1234, b"junk" * 10) + frame(0x8001, b"next")
    # Fed one octet at a time: the skipped payload is never buffered whole.
    events = []
    for i in range(len(stream)):
        events += framer.receive_data(stream[i : i + 1])
    assert events == [FrameDiscarded(0x1234, 40), Frame(0x8001, b"next")]


def test_sdp_types_not_accepted_on_the_stream_by_default():
    events = V2gtpFramer().receive_data(frame(PayloadType.SDP_REQUEST, b"\x00\x00"))
    assert isinstance(events[0], FrameDiscarded)


def test_eof_inside_a_frame_is_reported():
    framer = V2gtpFramer()
    assert framer.receive_data(frame(0x8001, b"abcdef")[:10]) == []
    assert framer.in_frame
    assert [e.reason for e in framer.receive_eof()] == [CloseReason.TRUNCATED]


def test_datagram_must_hold_exactly_one_message():
    good = frame(PayloadType.SDP_REQUEST, b"\x00\x00")
    assert parse_datagram(good, {PayloadType.SDP_REQUEST}) == Frame(PayloadType.SDP_REQUEST, b"\x00\x00")
    assert isinstance(parse_datagram(good[:-1], {PayloadType.SDP_REQUEST}), ConnectionMustClose)
    assert not isinstance(parse_datagram(good + b"\x00", {PayloadType.SDP_REQUEST}), Frame)


def test_frame_rejects_our_own_bugs():
    with pytest.raises(ValueError):
        frame(0x10000, b"")
