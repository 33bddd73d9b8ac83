"""SLAC EVSE state machine against the hil EV emulator, in memory, time driven by deadlines."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.ev_slac import EvFailed, EvSlac
from hil.plc_modem import answer as modem_answer
from pnc_bridge.link.slac import (
    CpState,
    FrameIgnored,
    Matched,
    MatchingFailed,
    ModemKeySet,
    ModemNotResponding,
    SendFrame,
    SlacEvent,
    SlacEvse,
    SlacInitTimeout,
    SlacState,
    Unmatched,
)
from pnc_bridge.link.slac import frames as f

EVSE1 = bytes.fromhex("0200000000e1")
EVSE2 = bytes.fromhex("0200000000e2")
EV = bytes.fromhex("0200000000a1")


def rng(seed):
    r = random.Random(seed)
    return lambda n: bytes(r.getrandbits(8) for _ in range(n))


class Segment:
    """A shared Ethernet segment: broadcast to all, unicast by MAC; an optional local modem per
    EVSE (answers CM_SET_KEY.REQ); ``drop(sender, message)`` loses frames."""

    def __init__(self, evses, ev, *, modem=True, drop=None):
        self.evses = {e.evse_mac: e for e in evses}
        self.ev = ev
        self.modem = modem
        self.drop = drop or (lambda who, msg: False)
        self.now = 0.0
        self.queue = []
        self.events = {mac: [] for mac in self.evses} | {"ev": []}
        self.modem_keys = {mac: [] for mac in self.evses}
        self.log = []

    def handle(self, who, outputs):
        for o in outputs:
            if isinstance(o, SendFrame):
                self.log.append((self.now, who, type(o.message).__name__))
                if not self.drop(who, o.message):
                    self.queue.append((who, o.frame))
            else:
                self.events[who].append(o)

    def deliver(self):
        while self.queue:
            who, frame = self.queue.pop(0)
            d = f.decode(frame)
            if d.dst == f.LOCAL_MODEM_MAC:
                if self.modem and who in self.evses:
                    reply = modem_answer(frame)
                    self.modem_keys[who].append(d.message)
                    self.queue.append(("modem", reply))
                continue
            for mac, evse in self.evses.items():
                if mac != who and d.dst in (mac, f.BROADCAST):
                    self.handle(mac, evse.receive_frame(frame, self.now))
            if who != "ev" and d.dst in (self.ev.ev_mac, f.BROADCAST):
                self.handle("ev", self.ev.receive_frame(frame, self.now))

    def run(self, until=lambda: False, limit=120.0):
        for _ in range(100000):
            self.deliver()
            if until():
                return True
            deadlines = [d for d in [e.deadline() for e in self.evses.values()] + [self.ev.deadline()] if d is not None]
            if not deadlines or min(deadlines) > limit:
                return until()
            self.now = max(self.now, min(deadlines))
            for mac, evse in self.evses.items():
                self.handle(mac, evse.tick(self.now))
            self.handle("ev", self.ev.tick(self.now))
        raise AssertionError("no progress")


def start(seg, ev_at=1.0):
    for mac, evse in seg.evses.items():
        seg.handle(mac, evse.cp_state(CpState.B, seg.now))
    seg.deliver()
    seg.now = ev_at
    seg.handle("ev", seg.ev.start(seg.now))


def test_association_in_memory():
    evse = SlacEvse(EVSE1, evse_id=b"DE*PNC*E1", random_bytes=rng(1))
    ev = EvSlac(EV, pev_id=b"EV1", random_bytes=rng(2))
    seg = Segment([evse], ev)
    start(seg)
    assert seg.run(lambda: ev.matched is not None and evse.state is SlacState.MATCHED)
    matched = [e for e in seg.events[EVSE1] if isinstance(e, Matched)]
    assert len(matched) == 1 and matched[0].ev_mac == EV and matched[0].pev_id.rstrip(b"\0") == b"EV1"
    assert (ev.matched.nid, ev.matched.nmk) == (evse.nid, evse.nmk)
    # The key in CM_SLAC_MATCH.CNF is the one set into the EVSE's modem, and the NID fits the NMK.
    assert seg.modem_keys[EVSE1][-1].new_key == ev.matched.nmk
    assert f.nid_from_nmk(ev.matched.nmk) == ev.matched.nid
    assert any(isinstance(e, ModemKeySet) for e in seg.events[EVSE1])
    sent = [name for _, who, name in seg.log if who == EVSE1]
    assert sent == ["CM_SET_KEY_REQ", "CM_SLAC_PARM_CNF", "CM_ATTEN_CHAR_IND", "CM_SLAC_MATCH_CNF"]


def test_two_evses_on_one_segment_ev_picks_the_nearer():
    near = SlacEvse(EVSE1, random_bytes=rng(3))
    far = SlacEvse(EVSE2, random_bytes=rng(4))
    ev = EvSlac(EV, random_bytes=rng(5), attenuation_db=lambda mac: 12 if mac == EVSE1 else 30)
    seg = Segment([near, far], ev)
    start(seg)
    assert seg.run(lambda: ev.matched is not None)
    assert ev.matched.evse_mac == EVSE1 and ev.matched.attenuation_db == 12
    # The far EVSE answered the sounding but never gets CM_SLAC_MATCH.REQ: it gives up after
    # TT_EVSE_match_session and is ready for its own EV again.
    seg.run(lambda: any(isinstance(e, MatchingFailed) for e in seg.events[EVSE2]))
    failed = [e for e in seg.events[EVSE2] if isinstance(e, MatchingFailed)]
    assert "CM_SLAC_MATCH.REQ" in failed[0].reason and not failed[0].final
    assert far.state is SlacState.WAIT_FOR_CM_SLAC_PARM_REQ
    assert near.state is SlacState.MATCHED


def test_lost_atten_char_rsp_is_repeated():
    lost = []

    def drop(who, msg):
        if isinstance(msg, f.CM_ATTEN_CHAR_RSP) and not lost:
            lost.append(msg)
            return True
        return False

    evse = SlacEvse(EVSE1, random_bytes=rng(6))
    ev = EvSlac(EV, random_bytes=rng(7))
    seg = Segment([evse], ev, drop=drop)
    start(seg)
    assert seg.run(lambda: evse.state is SlacState.MATCHED)
    assert [n for _, w, n in seg.log if w == EVSE1].count("CM_ATTEN_CHAR_IND") == 2


def test_validate_is_answered_failure_and_matching_goes_on():
    evse = SlacEvse(EVSE1, random_bytes=rng(8))
    ev = EvSlac(EV, random_bytes=rng(9), validate=True)
    seg = Segment([evse], ev)
    start(seg)
    assert seg.run(lambda: evse.state is SlacState.MATCHED and ev.matched is not None)
    assert "CM_VALIDATE_CNF" in [n for _, w, n in seg.log if w == EVSE1]


def test_ev_that_stops_after_parm_fails_three_times_then_final():
    # The EV's CM_START_ATTEN_CHAR.IND never arrive: every attempt ends at TT_match_sequence.
    evse = SlacEvse(EVSE1, random_bytes=rng(10))
    ev = EvSlac(EV, random_bytes=rng(11))
    seg = Segment([evse], ev, drop=lambda who, msg: isinstance(msg, f.CM_START_ATTEN_CHAR_IND))
    start(seg)
    seg.run(lambda: any(isinstance(e, EvFailed) and e.final for e in seg.events["ev"]))
    assert evse.state is SlacState.FAILED
    failures = [e for e in seg.events[EVSE1] if isinstance(e, MatchingFailed)]
    assert [e.final for e in failures] == [False, False, True]
    assert all("CM_START_ATTEN_CHAR.IND" in e.reason for e in failures)
    assert any(isinstance(e, EvFailed) and e.final for e in seg.events["ev"])


def test_cp_state_a_unmatches_and_sets_a_fresh_key():
    evse = SlacEvse(EVSE1, random_bytes=rng(12))
    ev = EvSlac(EV, random_bytes=rng(13))
    seg = Segment([evse], ev)
    start(seg)
    assert seg.run(lambda: evse.state is SlacState.MATCHED)
    old = evse.nmk
    seg.handle(EVSE1, evse.cp_state(CpState.A, seg.now))
    seg.deliver()
    assert evse.state is SlacState.IDLE
    assert any(isinstance(e, Unmatched) for e in seg.events[EVSE1])
    assert seg.modem_keys[EVSE1][-1].new_key != old
    assert evse.receive_frame(f.encode(EV, EVSE1, f.CM_SLAC_PARM_REQ(run_id=b"x" * 8)), seg.now)[0].__class__ is FrameIgnored


def test_no_ev_within_tt_evse_slac_init():
    evse = SlacEvse(EVSE1, random_bytes=rng(14), tt_evse_slac_init=20.0)
    seg = Segment([evse], EvSlac(EV))
    seg.handle(EVSE1, evse.cp_state(CpState.B, 0.0))
    seg.deliver()
    assert evse.deadline() == 20.0
    seg.handle(EVSE1, evse.tick(20.0))
    assert evse.state is SlacState.FAILED
    assert any(isinstance(e, SlacInitTimeout) for e in seg.events[EVSE1])
    # The driver toggles E/F and signals B again: SLAC starts over.
    evse.cp_state(CpState.E, 21.0)
    out = evse.cp_state(CpState.B, 25.0)
    assert evse.state is SlacState.WAIT_FOR_CM_SET_KEY_CNF and isinstance(out[0], SendFrame)


def test_modem_that_never_confirms_is_reported():
    evse = SlacEvse(EVSE1, random_bytes=rng(15))
    seg = Segment([evse], EvSlac(EV), modem=False)
    seg.handle(EVSE1, evse.cp_state(CpState.B, 0.0))
    seg.run(lambda: evse.state is SlacState.FAILED)
    assert [n for _, _, n in seg.log].count("CM_SET_KEY_REQ") == 3
    assert any(isinstance(e, ModemNotResponding) for e in seg.events[EVSE1])


def test_repeated_parm_req_is_answered_again_without_a_new_session():
    evse = SlacEvse(EVSE1, random_bytes=rng(16), set_key=False)
    evse.cp_state(CpState.B, 0.0)
    req = f.encode(EV, f.BROADCAST, f.CM_SLAC_PARM_REQ(run_id=b"R" * 8))
    first = evse.receive_frame(req, 0.1)
    again = evse.receive_frame(req, 0.15)
    assert sum(isinstance(o, SendFrame) for o in first) == 1
    assert [type(o) for o in again] == [SendFrame]


@pytest.mark.parametrize(
    "frame,why",
    [
        (b"\x00" * 5, "shorter than an Ethernet header"),
        (bytes(12) + b"\x08\x00" + bytes(46), "ethertype 0x0800"),
        (bytes(12) + b"\x88\xe1" + b"\x00\x64\x60\x00\x00" + bytes(41), "MMV 0"),
        (bytes(12) + b"\x88\xe1" + b"\x01\x64\x60\x00\x00" + b"\x00\x00\x01", "needs 10"),
        (bytes(12) + b"\x88\xe1" + b"\x01\x34\x12\x00\x00" + bytes(41), "not a SLAC message"),
        (bytes(12) + b"\x88\xe1" + b"\x01\x86\x60\x00\x00" + bytes(6) + b"\xff\x00" + bytes(40), "groups"),
    ],
)
def test_garbage_frames_are_ignored_with_a_reason(frame, why):
    evse = SlacEvse(EVSE1, set_key=False)
    evse.cp_state(CpState.B, 0.0)
    out = evse.receive_frame(frame, 0.1)
    assert len(out) == 1 and isinstance(out[0], FrameIgnored) and why in out[0].reason
    assert evse.state is SlacState.WAIT_FOR_CM_SLAC_PARM_REQ


@settings(max_examples=300)
@given(st.binary(max_size=120), st.sampled_from(sorted(f._FIXED_LEN)))
def test_arbitrary_frames_never_raise(tail, mmtype):
    evse = SlacEvse(EVSE1, set_key=False)
    evse.cp_state(CpState.B, 0.0)
    for frame in (tail, bytes(12) + b"\x88\xe1\x01" + mmtype.to_bytes(2, "little") + b"\x00\x00" + tail):
        for o in evse.receive_frame(frame, 0.5) + evse.tick(100.0):
            assert isinstance(o, (SendFrame, SlacEvent))


@pytest.mark.parametrize("message", [
    f.CM_SLAC_PARM_REQ(run_id=b"12345678"),
    f.CM_SLAC_PARM_CNF(run_id=b"12345678", forwarding_sta=EV, num_sounds=10, time_out=6),
    f.CM_START_ATTEN_CHAR_IND(run_id=b"12345678", num_sounds=10, time_out=6, forwarding_sta=EV),
    f.CM_MNBC_SOUND_IND(run_id=b"12345678", countdown=3, random_value=bytes(range(16))),
    f.CM_ATTEN_PROFILE_IND(pev_mac=EV, aag=tuple(range(58))),
    f.CM_ATTEN_CHAR_IND(source_address=EV, run_id=b"12345678", num_sounds=10, aag=tuple(range(58))),
    f.CM_ATTEN_CHAR_RSP(source_address=EV, run_id=b"12345678"),
    f.CM_VALIDATE_REQ(), f.CM_VALIDATE_CNF(result=3),
    f.CM_SLAC_MATCH_REQ(pev_id=b"P" * 17, pev_mac=EV, evse_id=b"E" * 17, evse_mac=EVSE1, run_id=b"12345678"),
    f.CM_SLAC_MATCH_CNF(pev_id=b"P" * 17, pev_mac=EV, evse_id=b"E" * 17, evse_mac=EVSE1, run_id=b"12345678",
                        nid=bytes(range(7)), nmk=bytes(range(16))),
    f.CM_SET_KEY_REQ(nid=bytes(range(7)), new_key=bytes(range(16))), f.CM_SET_KEY_CNF(),
], ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message):
    frame = f.encode(EV, EVSE1, message)
    assert len(frame) >= 60
    d = f.decode(frame)
    assert isinstance(d, f.Received) and (d.src, d.dst, d.message) == (EV, EVSE1, message)


def test_match_req_layout_against_iso_offsets():
    # MatchVarField length is 0x3e (62) and the run ID sits at offset 4+17+6+17+6 of the body.
    frame = f.encode(EV, EVSE1, f.CM_SLAC_MATCH_REQ(pev_id=b"P" * 17, pev_mac=EV, evse_id=b"E" * 17,
                                                      evse_mac=EVSE1, run_id=b"RUNID123"))
    body = frame[19:]
    assert int.from_bytes(body[2:4], "little") == 62
    assert body[4 + 17 + 6 + 17 + 6 : 4 + 17 + 6 + 17 + 6 + 8] == b"RUNID123"
    assert frame[12:14] == b"\x88\xe1" and frame[14] == 1 and frame[15:17] == b"\x7c\x60"


def test_nid_from_nmk_keeps_the_two_top_bits_for_the_security_level():
    nid = f.nid_from_nmk(bytes(16))
    assert len(nid) == 7 and nid[6] >> 4 == 0
    assert f.nid_from_nmk(bytes(16), security_level=1)[6] >> 4 == 1
