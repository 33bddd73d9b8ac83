"""EV-side SLAC emulator (ISO 15118-3) for tests and HIL rigs.

``EvSlac`` is sans-I/O like the EVSE side: ``start(now)``, ``receive_frame(frame, now)``,
``tick(now)`` and ``deadline()``; outputs are ``SendFrame`` values and ``EvMatched`` /
``EvFailed`` events. Because a veth pair or a bare Ethernet cable has no HomePlug modem,
the emulator can also play the EVSE's modem: after each CM_MNBC_SOUND.IND it sends the
CM_ATTEN_PROFILE.IND that the EVSE's modem would pass to its host, with an attenuation
chosen per EVSE (``attenuation_db``), so a rig can put several EVSEs on one segment and
check that the EV picks the nearest.

Run it on an interface (root):  ``python3 -m hil.ev_slac IFACE [--attenuation 12]``
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, Union

from pnc_bridge import timing
from pnc_bridge.link.slac import frames as f
from pnc_bridge.link.slac.evse import SendFrame

__all__ = ["EvSlac", "EvMatched", "EvFailed", "EvState", "run_ev_slac"]

_log = logging.getLogger("hil.ev_slac")


class EvState(enum.Enum):
    IDLE = "IDLE"
    WAIT_FOR_CM_SLAC_PARM_CNF = "WAIT_FOR_CM_SLAC_PARM_CNF"
    SOUNDING = "SOUNDING"
    WAIT_FOR_CM_ATTEN_CHAR_IND = "WAIT_FOR_CM_ATTEN_CHAR_IND"
    WAIT_FOR_CM_SLAC_MATCH_CNF = "WAIT_FOR_CM_SLAC_MATCH_CNF"
    MATCHED = "MATCHED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class EvMatched:
    evse_mac: bytes
    evse_id: bytes
    run_id: bytes
    nid: bytes
    nmk: bytes = field(repr=False)
    attenuation_db: float = 0.0


@dataclass(frozen=True)
class EvFailed:
    reason: str
    final: bool


Output = Union[SendFrame, EvMatched, EvFailed]


class EvSlac:
    """The PEV host side of one matching process, with retries (C_conn_max_match)."""

    def __init__(
        self,
        ev_mac: bytes,
        *,
        pev_id: bytes = b"\x00" * 17,
        random_bytes: Callable[[int], bytes] = os.urandom,
        attenuation_db: Callable[[bytes], int] | int = 10,
        emulate_evse_modem: bool = True,
        set_key_modem: bytes | None = None,
        num_start_atten_char: int = timing.C_EV_start_atten_char_inds,
        sound_interval: float = timing.TP_EV_batch_msg_interval,
        tt_match_response: float = timing.TT_match_response,
        tt_ev_atten_results: float = timing.TT_EV_atten_results,
        tt_matching_rate: float = timing.TT_matching_rate,
        c_conn_max_match: int = timing.C_conn_max_match,
        c_ev_match_retry: int = timing.C_EV_match_retry,
        atten_threshold_db: int = 40,
        validate: bool = False,
    ) -> None:
        self.ev_mac = f.mac_bytes(ev_mac)
        self.pev_id = pev_id.ljust(17, b"\x00")[:17]
        self._random = random_bytes
        self._attenuation = attenuation_db if callable(attenuation_db) else (lambda _mac, v=attenuation_db: v)
        self.emulate_evse_modem = emulate_evse_modem
        self.set_key_modem = set_key_modem
        self.num_start_atten_char = num_start_atten_char
        self.sound_interval = sound_interval
        self.tt_match_response = tt_match_response
        self.tt_ev_atten_results = tt_ev_atten_results
        self.tt_matching_rate = tt_matching_rate
        self.c_conn_max_match = c_conn_max_match
        self.c_ev_match_retry = c_ev_match_retry
        self.atten_threshold_db = atten_threshold_db
        self.validate = validate

        self.state = EvState.IDLE
        self.attempt = 0
        self.run_id = b""
        self.matched: EvMatched | None = None
        self._evses: dict[bytes, f.CM_SLAC_PARM_CNF] = {}
        self._results: dict[bytes, f.CM_ATTEN_CHAR_IND] = {}
        self._scheduled: list[tuple[float, SendFrame]] = []
        self._deadline: float | None = None
        self._chosen: bytes | None = None
        self._match_tries = 0
        self._parm_tries = 0

    # ------------------------------------------------------------------ inputs #
    def start(self, now: float) -> list[Output]:
        self.attempt += 1
        self.run_id = self._random(8)
        self._evses.clear()
        self._results.clear()
        self._scheduled.clear()
        self._chosen = None
        self._match_tries = 0
        self._parm_tries = 1
        self.state = EvState.WAIT_FOR_CM_SLAC_PARM_CNF
        self._deadline = now + self.tt_match_response
        return [self._send(f.BROADCAST, f.CM_SLAC_PARM_REQ(run_id=self.run_id))]

    def receive_frame(self, frame: bytes, now: float) -> list[Output]:
        decoded = f.decode(frame)
        if isinstance(decoded, f.Ignored):
            return []
        msg, src = decoded.message, decoded.src
        if isinstance(msg, f.CM_SLAC_PARM_CNF) and self.state is EvState.WAIT_FOR_CM_SLAC_PARM_CNF:
            if msg.run_id == self.run_id and msg.forwarding_sta in (self.ev_mac, b"\x00" * 6):
                self._evses[src] = msg
            return []
        if isinstance(msg, f.CM_ATTEN_CHAR_IND) and msg.run_id == self.run_id and src in self._evses:
            if self.state in (EvState.SOUNDING, EvState.WAIT_FOR_CM_ATTEN_CHAR_IND):
                self._results[src] = msg
            # Answer every IND (also repetitions: our RSP may have been lost).
            return [self._send(src, f.CM_ATTEN_CHAR_RSP(source_address=self.ev_mac, run_id=self.run_id, result=0))]
        if isinstance(msg, f.CM_VALIDATE_CNF) and self.state is EvState.WAIT_FOR_CM_SLAC_MATCH_CNF:
            return []  # validation answered (typically Failure / not supported): go on by attenuation
        if isinstance(msg, f.CM_SLAC_MATCH_CNF) and self.state is EvState.WAIT_FOR_CM_SLAC_MATCH_CNF:
            if src != self._chosen or msg.run_id != self.run_id or msg.pev_mac != self.ev_mac:
                return []
            self.state = EvState.MATCHED
            self._deadline = None
            avg = self._average(self._results.get(src))
            self.matched = EvMatched(src, msg.evse_id, msg.run_id, msg.nid, msg.nmk, avg)
            out: list[Output] = [self.matched]
            if self.set_key_modem is not None:
                out.append(self._send(self.set_key_modem, f.CM_SET_KEY_REQ(nid=msg.nid, new_key=msg.nmk)))
            return out
        return []

    def tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        while self._scheduled and self._scheduled[0][0] <= now:
            out.append(self._scheduled.pop(0)[1])
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            out += self._timeout(now)
        return out

    def deadline(self) -> float | None:
        times = [t for t, _ in self._scheduled[:1]]
        if self._deadline is not None:
            times.append(self._deadline)
        return min(times) if times else None

    # --------------------------------------------------------------- internals #
    def _send(self, dst: bytes, msg) -> SendFrame:
        return SendFrame(f.encode(self.ev_mac, dst, msg), msg)

    @staticmethod
    def _average(ind: f.CM_ATTEN_CHAR_IND | None) -> float:
        if ind is None or not ind.aag:
            return float("inf")
        return sum(ind.aag) / len(ind.aag)

    def _timeout(self, now: float) -> list[Output]:
        if self.state is EvState.WAIT_FOR_CM_SLAC_PARM_CNF:
            if not self._evses:
                if self._parm_tries <= self.c_ev_match_retry:
                    self._parm_tries += 1
                    self._deadline = now + self.tt_match_response
                    return [self._send(f.BROADCAST, f.CM_SLAC_PARM_REQ(run_id=self.run_id))]
                return self._fail("no CM_SLAC_PARM.CNF", now)
            return self._start_sounding(now)
        if self.state in (EvState.SOUNDING, EvState.WAIT_FOR_CM_ATTEN_CHAR_IND):
            candidates = [(self._average(ind), mac) for mac, ind in self._results.items()]
            candidates = [c for c in candidates if c[0] <= self.atten_threshold_db]
            if not candidates:
                return self._fail("no CM_ATTEN_CHAR.IND under the attenuation threshold within TT_EV_atten_results", now)
            _, self._chosen = min(candidates)
            return self._send_match(now)
        if self.state is EvState.WAIT_FOR_CM_SLAC_MATCH_CNF:
            if self._match_tries <= self.c_ev_match_retry:
                return self._send_match(now)
            return self._fail("no CM_SLAC_MATCH.CNF", now)
        if self.state is EvState.FAILED and self.attempt < self.c_conn_max_match:
            return self.start(now)
        return []

    def _start_sounding(self, now: float) -> list[Output]:
        self.state = EvState.SOUNDING
        first = next(iter(self._evses.values()))
        num_sounds, time_out = first.num_sounds, first.time_out
        t = now
        for _ in range(self.num_start_atten_char):
            self._schedule(t, self._send(f.BROADCAST, f.CM_START_ATTEN_CHAR_IND(
                run_id=self.run_id, num_sounds=num_sounds, time_out=time_out, forwarding_sta=self.ev_mac)))
            t += self.sound_interval
        for i in range(num_sounds):
            self._schedule(t, self._send(f.BROADCAST, f.CM_MNBC_SOUND_IND(
                run_id=self.run_id, countdown=num_sounds - 1 - i, random_value=self._random(16))))
            if self.emulate_evse_modem:
                for evse_mac in self._evses:
                    aag = (int(self._attenuation(evse_mac)),) * f.SLAC_GROUPS
                    profile = f.CM_ATTEN_PROFILE_IND(pev_mac=self.ev_mac, aag=aag)
                    # Sent as if by the EVSE's modem: to the EVSE host, from the modem.
                    self._schedule(t, SendFrame(f.encode(f.LOCAL_MODEM_MAC, evse_mac, profile), profile))
            t += self.sound_interval
        self._deadline = now + self.tt_ev_atten_results
        return self.tick(now)

    def _schedule(self, at: float, item: SendFrame) -> None:
        self._scheduled.append((at, item))

    def _send_match(self, now: float) -> list[Output]:
        assert self._chosen is not None
        self.state = EvState.WAIT_FOR_CM_SLAC_MATCH_CNF
        self._match_tries += 1
        self._deadline = now + self.tt_match_response
        out: list[Output] = []
        if self.validate and self._match_tries == 1:
            out.append(self._send(self._chosen, f.CM_VALIDATE_REQ(signal_type=0, timer=0, result=1)))
        out.append(self._send(self._chosen, f.CM_SLAC_MATCH_REQ(
            pev_id=self.pev_id, pev_mac=self.ev_mac, evse_id=b"\x00" * 17, evse_mac=self._chosen, run_id=self.run_id)))
        return out

    def _fail(self, reason: str, now: float) -> list[Output]:
        final = self.attempt >= self.c_conn_max_match
        self.state = EvState.FAILED
        self._scheduled.clear()
        self._deadline = None if final else now + self.tt_matching_rate
        return [EvFailed(f"attempt {self.attempt}: {reason}", final)]


async def run_ev_slac(iface: str, ev: EvSlac, *, timeout: float = 30.0) -> EvMatched | EvFailed:
    """Run ``ev`` on a raw socket until it matches or gives up."""
    from pnc_bridge.link.slac.adapter import RawSocket

    loop = asyncio.get_running_loop()
    sock = RawSocket(iface)
    result: asyncio.Future = loop.create_future()
    timer: list[asyncio.TimerHandle | None] = [None]

    def handle(outputs: list[Output]) -> None:
        for o in outputs:
            if isinstance(o, SendFrame):
                _log.debug("send %s", type(o.message).__name__)
                sock.send(o.frame)
            elif isinstance(o, EvMatched):
                _log.info("matched with EVSE %s, NID %s", f.mac_str(o.evse_mac), o.nid.hex())
                if not result.done():
                    result.set_result(o)
            elif isinstance(o, EvFailed):
                _log.warning("SLAC failed: %s", o.reason)
                if o.final and not result.done():
                    result.set_result(o)
        rearm()

    def rearm() -> None:
        if timer[0] is not None:
            timer[0].cancel()
        d = ev.deadline()
        timer[0] = loop.call_at(d, lambda: handle(ev.tick(loop.time()))) if d is not None else None

    sock.start(lambda frame: handle(ev.receive_frame(frame, loop.time())))
    try:
        handle(ev.start(loop.time()))
        return await asyncio.wait_for(result, timeout)
    finally:
        if timer[0] is not None:
            timer[0].cancel()
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m hil.ev_slac", description="EV-side SLAC emulator on IFACE (needs root).")
    parser.add_argument("iface")
    parser.add_argument("--attenuation", type=int, default=10, help="attenuation in dB the emulated EVSE modem reports (default 10)")
    parser.add_argument("--no-modem-emulation", action="store_true", help="do not send CM_ATTEN_PROFILE.IND (a real modem does)")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--validate", action="store_true", help="send CM_VALIDATE.REQ before CM_SLAC_MATCH.REQ")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from pnc_bridge.link.slac.adapter import interface_mac

    try:
        mac = interface_mac(args.iface)
    except OSError as exc:
        print(f"ev_slac: {args.iface}: {exc}", file=sys.stderr)
        return 2
    ev = EvSlac(mac, attenuation_db=args.attenuation, emulate_evse_modem=not args.no_modem_emulation, validate=args.validate)
    try:
        res = asyncio.run(run_ev_slac(args.iface, ev, timeout=args.timeout))
    except asyncio.TimeoutError:
        print("ev_slac: no match within the timeout", file=sys.stderr)
        return 1
    if isinstance(res, EvMatched):
        print(f"MATCHED evse={f.mac_str(res.evse_mac)} nid={res.nid.hex()} attenuation={res.attenuation_db:.1f}dB")
        return 0
    print(f"FAILED {res.reason}")
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
