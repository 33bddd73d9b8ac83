"""SLAC, EVSE side (ISO 15118-3): a sans-I/O state machine.

Rules of this module:

- Three inputs drive it: ``cp_state(state, now)`` (from the EVSE driver),
  ``receive_frame(frame, now)`` (one Ethernet frame from the PLC interface) and
  ``tick(now)`` (call when ``deadline()`` has passed). Each returns a list of outputs:
  ``SendFrame`` values to put on the wire and ``SlacEvent`` values for the application.
- ``now`` is a monotonic float passed in; nothing here reads a clock, opens a socket or
  sleeps. Randomness (NMK) comes from the ``random_bytes`` argument.
- Nothing the EV (or anyone else on the segment) sends raises: unknown or malformed frames
  are returned as ``FrameIgnored`` events with the reason.

The EVSE side of one matching process (per EV MAC, several EVs may sound at once):

  WAIT_FOR_CM_START_ATTEN_CHAR_IND --first IND--> WAIT_FOR_CM_MNBC_SOUND_IND
  --all sounds or TT_EVSE_match_MNBC--> [CM_ATTEN_CHAR.IND] WAIT_FOR_CM_ATTEN_CHAR_RSP
  --RSP ok--> WAIT_FOR_CM_SLAC_MATCH_REQ --REQ--> [CM_SLAC_MATCH.CNF] MATCHED

and of the EVSE as a whole (``SlacState``):

  IDLE --CP B/C/D--> [CM_SET_KEY.REQ to the local modem] WAIT_FOR_CM_SET_KEY_CNF
  --CNF--> WAIT_FOR_CM_SLAC_PARM_REQ --REQ--> MATCHING --MATCH.CNF sent--> MATCHED
  any --CP A/E/F--> IDLE (a fresh NMK is set so the EV leaves the logical network)
"""

from __future__ import annotations

import enum
import logging
import os
from dataclasses import dataclass, field
from typing import Callable, Union

from pnc_bridge import timing
from pnc_bridge.link.slac import frames as f

__all__ = [
    "CpState",
    "SlacState",
    "SendFrame",
    "SlacEvent",
    "ModemKeySet",
    "ModemNotResponding",
    "SlacInitTimeout",
    "MatchingStarted",
    "MatchingFailed",
    "Matched",
    "Unmatched",
    "FrameIgnored",
    "SlacEvse",
]


class CpState(enum.Enum):
    """Control pilot states (IEC 61851-1) as reported by the EVSE driver."""

    A = "A"  # no EV
    B = "B"  # EV connected
    C = "C"  # EV connected, ready (ventilation not required)
    D = "D"  # EV connected, ready (ventilation required)
    E = "E"  # error / no pilot
    F = "F"  # EVSE not available

    @property
    def ev_connected(self) -> bool:
        return self in (CpState.B, CpState.C, CpState.D)


class SlacState(enum.Enum):
    IDLE = "IDLE"
    WAIT_FOR_CM_SET_KEY_CNF = "WAIT_FOR_CM_SET_KEY_CNF"
    WAIT_FOR_CM_SLAC_PARM_REQ = "WAIT_FOR_CM_SLAC_PARM_REQ"
    MATCHING = "MATCHING"
    MATCHED = "MATCHED"
    FAILED = "FAILED"


class _EvState(enum.Enum):
    WAIT_FOR_CM_START_ATTEN_CHAR_IND = "WAIT_FOR_CM_START_ATTEN_CHAR_IND"
    WAIT_FOR_CM_MNBC_SOUND_IND = "WAIT_FOR_CM_MNBC_SOUND_IND"
    WAIT_FOR_CM_ATTEN_CHAR_RSP = "WAIT_FOR_CM_ATTEN_CHAR_RSP"
    WAIT_FOR_CM_SLAC_MATCH_REQ = "WAIT_FOR_CM_SLAC_MATCH_REQ"
    MATCHED = "MATCHED"


# --------------------------------------------------------------------------- #
# Outputs                                                                      #
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class SendFrame:
    frame: bytes
    message: object  # the typed message, for logs


class SlacEvent:
    """Base of the events for the application (do not subclass further)."""


@dataclass(frozen=True)
class ModemKeySet(SlacEvent):
    nid: bytes


@dataclass(frozen=True)
class ModemNotResponding(SlacEvent):
    reason: str


@dataclass(frozen=True)
class SlacInitTimeout(SlacEvent):
    """No CM_SLAC_PARM.REQ within TT_EVSE_SLAC_init. The EVSE driver may now toggle E/F
    (T_step_EF) and signal B again to restart, up to C_sequ_retry times."""


@dataclass(frozen=True)
class MatchingStarted(SlacEvent):
    ev_mac: bytes
    run_id: bytes


@dataclass(frozen=True)
class MatchingFailed(SlacEvent):
    ev_mac: bytes
    run_id: bytes
    reason: str
    final: bool  # True: C_conn_max_match attempts used up, SLAC stopped until the next CP cycle


@dataclass(frozen=True)
class Matched(SlacEvent):
    ev_mac: bytes
    run_id: bytes
    pev_id: bytes
    nid: bytes
    nmk: bytes = field(repr=False)


@dataclass(frozen=True)
class Unmatched(SlacEvent):
    reason: str


@dataclass(frozen=True)
class FrameIgnored(SlacEvent):
    reason: str


Output = Union[SendFrame, SlacEvent]


@dataclass
class _EvSession:
    ev_mac: bytes
    run_id: bytes
    state: _EvState
    deadline: float | None
    expected_sounds: int = 0
    sounds: int = 0
    profiles: int = 0
    aag_sum: list[int] = field(default_factory=lambda: [0] * f.SLAC_GROUPS)
    atten_char_sent: int = 0
    atten_char: f.CM_ATTEN_CHAR_IND | None = None
    pev_id: bytes = b""


class SlacEvse:
    """The EVSE host side of SLAC on one PLC interface.

    ``evse_mac`` is the MAC of this host's PLC interface; ``evse_id`` (17 octets) goes into
    CM_SLAC_MATCH.CNF. ``modem_mac`` is where CM_SET_KEY.REQ goes (the local modem).
    Timer and counter arguments default to ``pnc_bridge.timing``; rigs may shorten them.
    """

    def __init__(
        self,
        evse_mac: bytes,
        *,
        evse_id: bytes = b"\x00" * 17,
        modem_mac: bytes = f.LOCAL_MODEM_MAC,
        random_bytes: Callable[[int], bytes] = os.urandom,
        set_key: bool = True,
        num_sounds: int = timing.C_EV_match_MNBC,
        tt_evse_slac_init: float = timing.TT_EVSE_SLAC_init,
        tt_match_sequence: float = timing.TT_match_sequence,
        tt_match_response: float = timing.TT_match_response,
        tt_evse_match_mnbc: float = timing.TT_EVSE_match_MNBC,
        tt_evse_match_session: float = timing.TT_EVSE_match_session,
        tt_matching_repetition: float = timing.TT_matching_repetition,
        c_ev_match_retry: int = timing.C_EV_match_retry,
        c_conn_max_match: int = timing.C_conn_max_match,
        set_key_timeout: float = timing.SET_KEY_CNF_TIMEOUT,
        set_key_retries: int = 2,
        max_sessions: int = 8,
        logger: logging.Logger | None = None,
    ) -> None:
        self.evse_mac = f.mac_bytes(evse_mac)
        self.evse_id = evse_id.ljust(17, b"\x00")[:17]
        self.modem_mac = modem_mac
        self._random = random_bytes
        self._set_key_enabled = set_key
        self.num_sounds = num_sounds
        self.tt_evse_slac_init = tt_evse_slac_init
        self.tt_match_sequence = tt_match_sequence
        self.tt_match_response = tt_match_response
        self.tt_evse_match_mnbc = tt_evse_match_mnbc
        self.tt_evse_match_session = tt_evse_match_session
        self.tt_matching_repetition = tt_matching_repetition
        self.c_ev_match_retry = c_ev_match_retry
        self.c_conn_max_match = c_conn_max_match
        self.set_key_timeout = set_key_timeout
        self.set_key_retries = set_key_retries
        self.max_sessions = max_sessions
        self.log = logger or logging.getLogger(__name__)

        self.state = SlacState.IDLE
        self.cp = CpState.A
        self.nmk = b""
        self.nid = b""
        self.matched: Matched | None = None
        self._sessions: dict[bytes, _EvSession] = {}
        self._failures: dict[bytes, list[float]] = {}
        self._deadline: float | None = None  # EVSE-wide timer (set key / SLAC init)
        self._set_key_tries = 0
        self._pending_key: tuple[bytes, bytes] | None = None

    # ------------------------------------------------------------------ inputs #
    def cp_state(self, state: CpState, now: float) -> list[Output]:
        """The EVSE driver reports a CP state (with 5 % PWM applied while B/C/D)."""
        previous, self.cp = self.cp, state
        out: list[Output] = []
        if state.ev_connected:
            if self.state in (SlacState.IDLE, SlacState.FAILED) and not previous.ev_connected:
                self._failures.clear()
                out += self._start(now)
        else:
            if self.state not in (SlacState.IDLE,):
                was_matched = self.state in (SlacState.MATCHED, SlacState.MATCHING)
                self._sessions.clear()
                self.matched = None
                self._deadline = None
                self.state = SlacState.IDLE
                if was_matched:
                    out.append(Unmatched(f"CP state {state.value}"))
                    # A new NMK on the local modem takes the EV off the logical network.
                    out += self._send_set_key(now, wait=False)
        return out

    def receive_frame(self, frame: bytes, now: float) -> list[Output]:
        decoded = f.decode(frame)
        if isinstance(decoded, f.Ignored):
            return [FrameIgnored(decoded.reason)]
        msg, src = decoded.message, decoded.src
        if isinstance(msg, f.CM_SET_KEY_CNF):
            return self._on_set_key_cnf(msg, now)
        if self.state in (SlacState.IDLE, SlacState.FAILED, SlacState.WAIT_FOR_CM_SET_KEY_CNF):
            return [FrameIgnored(f"{type(msg).__name__} from {f.mac_str(src)} while {self.state.value}")]
        handler = _HANDLERS.get(type(msg))
        if handler is None:
            return [FrameIgnored(f"{type(msg).__name__} is not for the EVSE")]
        return handler(self, src, decoded.dst, msg, now)

    def tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            if self.state is SlacState.WAIT_FOR_CM_SET_KEY_CNF:
                if self._set_key_tries <= self.set_key_retries:
                    out += self._send_set_key(now, wait=True, fresh=False)
                else:
                    self.state = SlacState.FAILED
                    out.append(ModemNotResponding(f"no CM_SET_KEY.CNF from {f.mac_str(self.modem_mac)} after {self._set_key_tries} tries"))
            elif self.state is SlacState.WAIT_FOR_CM_SLAC_PARM_REQ:
                self.state = SlacState.FAILED
                out.append(SlacInitTimeout())
        for session in list(self._sessions.values()):
            if session.deadline is not None and now >= session.deadline:
                out += self._session_timeout(session, now)
        return out

    def deadline(self) -> float | None:
        times = [s.deadline for s in self._sessions.values() if s.deadline is not None]
        if self._deadline is not None:
            times.append(self._deadline)
        return min(times) if times else None

    # --------------------------------------------------------------- internals #
    def _start(self, now: float) -> list[Output]:
        self._sessions.clear()
        self.matched = None
        if self._set_key_enabled:
            self._set_key_tries = 0
            return self._send_set_key(now, wait=True)
        if not self.nmk:
            self.nmk = self._random(16)
            self.nid = f.nid_from_nmk(self.nmk)
        return self._wait_for_parm(now)

    def _wait_for_parm(self, now: float) -> list[Output]:
        self.state = SlacState.WAIT_FOR_CM_SLAC_PARM_REQ
        self._deadline = now + self.tt_evse_slac_init
        return []

    def _send_set_key(self, now: float, *, wait: bool, fresh: bool = True) -> list[Output]:
        if fresh or self._pending_key is None:
            nmk = self._random(16)
            self._pending_key = (nmk, f.nid_from_nmk(nmk))
        nmk, nid = self._pending_key
        req = f.CM_SET_KEY_REQ(nid=nid, new_key=nmk)
        self._set_key_tries += 1
        if wait:
            self.state = SlacState.WAIT_FOR_CM_SET_KEY_CNF
            self._deadline = now + self.set_key_timeout
        return [SendFrame(f.encode(self.evse_mac, self.modem_mac, req), req)]

    def _on_set_key_cnf(self, msg: f.CM_SET_KEY_CNF, now: float) -> list[Output]:
        if self._pending_key is None:
            return [FrameIgnored("CM_SET_KEY.CNF without a request")]
        if msg.result != 0:
            if self.state is SlacState.WAIT_FOR_CM_SET_KEY_CNF:
                self._deadline = None
                self.state = SlacState.FAILED
                return [ModemNotResponding(f"modem refused CM_SET_KEY.REQ (result {msg.result})")]
            return [FrameIgnored(f"CM_SET_KEY.CNF result {msg.result}")]
        self.nmk, self.nid = self._pending_key
        self._pending_key = None
        out: list[Output] = [ModemKeySet(self.nid)]
        if self.state is SlacState.WAIT_FOR_CM_SET_KEY_CNF:
            out += self._wait_for_parm(now)
        return out

    def _send(self, dst: bytes, msg) -> SendFrame:
        return SendFrame(f.encode(self.evse_mac, dst, msg), msg)

    def _fail(self, session: _EvSession, reason: str, now: float) -> list[Output]:
        self._sessions.pop(session.ev_mac, None)
        window = [t for t in self._failures.get(session.ev_mac, []) if now - t < self.tt_matching_repetition]
        window.append(now)
        self._failures[session.ev_mac] = window
        final = len(window) >= self.c_conn_max_match
        if final:
            self.log.warning("SLAC with %s failed %d times: giving up", f.mac_str(session.ev_mac), len(window))
        if not self._sessions and self.state is SlacState.MATCHING:
            self.state = SlacState.FAILED if final else SlacState.WAIT_FOR_CM_SLAC_PARM_REQ
            self._deadline = None if final else now + self.tt_evse_slac_init
        return [MatchingFailed(session.ev_mac, session.run_id, reason, final)]

    def _session_timeout(self, s: _EvSession, now: float) -> list[Output]:
        s.deadline = None
        if s.state is _EvState.WAIT_FOR_CM_START_ATTEN_CHAR_IND:
            return self._fail(s, "no CM_START_ATTEN_CHAR.IND within TT_match_sequence", now)
        if s.state is _EvState.WAIT_FOR_CM_MNBC_SOUND_IND:
            return self._send_atten_char(s, now)  # TT_EVSE_match_MNBC ended: report what arrived
        if s.state is _EvState.WAIT_FOR_CM_ATTEN_CHAR_RSP:
            if s.atten_char_sent <= self.c_ev_match_retry:
                return self._send_atten_char(s, now)
            return self._fail(s, "no CM_ATTEN_CHAR.RSP after C_EV_match_retry repetitions", now)
        if s.state is _EvState.WAIT_FOR_CM_SLAC_MATCH_REQ:
            return self._fail(s, "no CM_SLAC_MATCH.REQ within TT_EVSE_match_session", now)
        return []

    def _send_atten_char(self, s: _EvSession, now: float) -> list[Output]:
        if s.atten_char is None:
            n = s.profiles or s.sounds
            aag = tuple(round(v / s.profiles) for v in s.aag_sum) if s.profiles else (0,) * f.SLAC_GROUPS
            s.atten_char = f.CM_ATTEN_CHAR_IND(source_address=s.ev_mac, run_id=s.run_id, num_sounds=n, aag=aag)
        s.state = _EvState.WAIT_FOR_CM_ATTEN_CHAR_RSP
        s.atten_char_sent += 1
        s.deadline = now + self.tt_match_response
        return [self._send(s.ev_mac, s.atten_char)]

    # ---------------------------------------------------------------- handlers #
    def _on_slac_parm_req(self, src: bytes, dst: bytes, msg: f.CM_SLAC_PARM_REQ, now: float) -> list[Output]:
        if msg.application_type != 0 or msg.security_type != 0:
            return [FrameIgnored(f"CM_SLAC_PARM.REQ with application type {msg.application_type}, security type {msg.security_type}")]
        if self.state is SlacState.MATCHED:
            if self.matched is not None and src == self.matched.ev_mac:
                # The matched EV starts over (it lost the link): a new matching process.
                self.matched = None
                self._sessions.clear()
                self.state = SlacState.MATCHING
                out: list[Output] = [Unmatched("matched EV sent a new CM_SLAC_PARM.REQ")]
            else:
                return [FrameIgnored(f"CM_SLAC_PARM.REQ from {f.mac_str(src)} while matched to another EV")]
        else:
            out = []
        window = [t for t in self._failures.get(src, []) if now - t < self.tt_matching_repetition]
        if len(window) >= self.c_conn_max_match:
            return out + [FrameIgnored(f"{f.mac_str(src)} used up its C_conn_max_match attempts")]
        existing = self._sessions.get(src)
        cnf = f.CM_SLAC_PARM_CNF(
            run_id=msg.run_id, forwarding_sta=src, num_sounds=self.num_sounds,
            time_out=max(1, round(self.tt_evse_match_mnbc * 10)), resp_type=1,
        )
        if existing is not None and existing.run_id == msg.run_id:
            return out + [self._send(src, cnf)]  # the EV repeats: our CNF got lost
        if existing is None and len(self._sessions) >= self.max_sessions:
            return out + [FrameIgnored(f"too many EVs sounding; CM_SLAC_PARM.REQ from {f.mac_str(src)} dropped")]
        self._sessions[src] = _EvSession(
            ev_mac=src, run_id=msg.run_id, state=_EvState.WAIT_FOR_CM_START_ATTEN_CHAR_IND,
            deadline=now + self.tt_match_sequence,
        )
        self.state = SlacState.MATCHING
        self._deadline = None
        return out + [MatchingStarted(src, msg.run_id), self._send(src, cnf)]

    def _session_for(self, src: bytes, run_id: bytes | None) -> _EvSession | None:
        s = self._sessions.get(src)
        if s is None or (run_id is not None and s.run_id != run_id):
            return None
        return s

    def _on_start_atten_char(self, src: bytes, dst: bytes, msg: f.CM_START_ATTEN_CHAR_IND, now: float) -> list[Output]:
        s = self._session_for(src, msg.run_id)
        if s is None:
            return [FrameIgnored(f"CM_START_ATTEN_CHAR.IND from {f.mac_str(src)} without a matching CM_SLAC_PARM")]
        if s.state is _EvState.WAIT_FOR_CM_START_ATTEN_CHAR_IND:
            s.state = _EvState.WAIT_FOR_CM_MNBC_SOUND_IND
            s.expected_sounds = msg.num_sounds or self.num_sounds
            s.deadline = now + self.tt_evse_match_mnbc
        return []  # the 2nd and 3rd repetition change nothing

    def _on_mnbc_sound(self, src: bytes, dst: bytes, msg: f.CM_MNBC_SOUND_IND, now: float) -> list[Output]:
        s = self._session_for(src, msg.run_id)
        if s is None or s.state is not _EvState.WAIT_FOR_CM_MNBC_SOUND_IND:
            return [FrameIgnored(f"CM_MNBC_SOUND.IND from {f.mac_str(src)} outside a sounding window")]
        s.sounds += 1
        return self._maybe_done_sounding(s, now)

    def _on_atten_profile(self, src: bytes, dst: bytes, msg: f.CM_ATTEN_PROFILE_IND, now: float) -> list[Output]:
        s = self._session_for(msg.pev_mac, None)
        if s is None or s.state is not _EvState.WAIT_FOR_CM_MNBC_SOUND_IND:
            return [FrameIgnored(f"CM_ATTEN_PROFILE.IND for {f.mac_str(msg.pev_mac)} outside a sounding window")]
        s.profiles += 1
        for i, v in enumerate(msg.aag[: f.SLAC_GROUPS]):
            s.aag_sum[i] += v
        return self._maybe_done_sounding(s, now)

    def _maybe_done_sounding(self, s: _EvSession, now: float) -> list[Output]:
        # Profiles (from our modem) carry the attenuation; the sounds themselves only count.
        # Answer early once every expected profile is in, otherwise at TT_EVSE_match_MNBC.
        if s.profiles >= s.expected_sounds:
            return self._send_atten_char(s, now)
        return []

    def _on_atten_char_rsp(self, src: bytes, dst: bytes, msg: f.CM_ATTEN_CHAR_RSP, now: float) -> list[Output]:
        s = self._session_for(src, msg.run_id)
        if s is None or s.state is not _EvState.WAIT_FOR_CM_ATTEN_CHAR_RSP:
            return [FrameIgnored(f"CM_ATTEN_CHAR.RSP from {f.mac_str(src)} not expected")]
        if msg.result != 0:
            return self._fail(s, f"EV answered CM_ATTEN_CHAR.RSP with result {msg.result}", now)
        s.state = _EvState.WAIT_FOR_CM_SLAC_MATCH_REQ
        s.deadline = now + self.tt_evse_match_session
        return []

    def _on_validate_req(self, src: bytes, dst: bytes, msg: f.CM_VALIDATE_REQ, now: float) -> list[Output]:
        s = self._session_for(src, None)
        if s is None:
            return [FrameIgnored(f"CM_VALIDATE.REQ from {f.mac_str(src)} without a session")]
        # This EVSE does not toggle the BCB for validation: it answers Failure, and the EV
        # goes on with CM_SLAC_MATCH.REQ on attenuation alone.
        cnf = f.CM_VALIDATE_CNF(signal_type=msg.signal_type, toggle_num=0, result=f.CM_VALIDATE_CNF.FAILURE)
        if s.state is _EvState.WAIT_FOR_CM_SLAC_MATCH_REQ:
            s.deadline = now + self.tt_evse_match_session
        return [self._send(src, cnf)]

    def _on_slac_match_req(self, src: bytes, dst: bytes, msg: f.CM_SLAC_MATCH_REQ, now: float) -> list[Output]:
        s = self._session_for(src, msg.run_id)
        if s is None:
            return [FrameIgnored(f"CM_SLAC_MATCH.REQ from {f.mac_str(src)} without a matching session")]
        if msg.pev_mac != src:
            return [FrameIgnored("CM_SLAC_MATCH.REQ PEV MAC differs from the sender")]
        if msg.evse_mac not in (self.evse_mac, b"\x00" * 6):
            return [FrameIgnored(f"CM_SLAC_MATCH.REQ addressed to EVSE {f.mac_str(msg.evse_mac)}")]
        if s.state not in (_EvState.WAIT_FOR_CM_SLAC_MATCH_REQ, _EvState.MATCHED, _EvState.WAIT_FOR_CM_ATTEN_CHAR_RSP):
            return [FrameIgnored(f"CM_SLAC_MATCH.REQ while {s.state.value}")]
        cnf = f.CM_SLAC_MATCH_CNF(
            pev_id=msg.pev_id, pev_mac=src, evse_id=self.evse_id, evse_mac=self.evse_mac,
            run_id=msg.run_id, nid=self.nid, nmk=self.nmk,
        )
        out: list[Output] = [self._send(src, cnf)]
        if s.state is not _EvState.MATCHED:
            s.state, s.deadline, s.pev_id = _EvState.MATCHED, None, msg.pev_id
            # Only one EV can be on this cable: the others' sessions end here.
            self._sessions = {src: s}
            self.state = SlacState.MATCHED
            self.matched = Matched(src, msg.run_id, msg.pev_id, self.nid, self.nmk)
            out.append(self.matched)
        return out


_HANDLERS: dict[type, Callable] = {
    f.CM_SLAC_PARM_REQ: SlacEvse._on_slac_parm_req,
    f.CM_START_ATTEN_CHAR_IND: SlacEvse._on_start_atten_char,
    f.CM_MNBC_SOUND_IND: SlacEvse._on_mnbc_sound,
    f.CM_ATTEN_PROFILE_IND: SlacEvse._on_atten_profile,
    f.CM_ATTEN_CHAR_RSP: SlacEvse._on_atten_char_rsp,
    f.CM_VALIDATE_REQ: SlacEvse._on_validate_req,
    f.CM_SLAC_MATCH_REQ: SlacEvse._on_slac_match_req,
}
