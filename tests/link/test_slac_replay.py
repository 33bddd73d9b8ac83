"""Replay of SLAC frames from real-car captures through our EVSE state machine.

Captures are not part of this repository. Put pcap/pcapng files with an EV <-> EVSE SLAC
exchange in ``../shared/slac-captures/`` (for example the ones in the public repositories
uhi22/pyPLC and EVerest/logfiles); each file becomes one test. The EV's frames are fed to
``SlacEvse`` with the capture's timestamps as ``now``, and our answers must be the same
message types, in the same order, as the EVSE in the capture sent to that EV.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pnc_bridge.link.slac import CpState, SendFrame, SlacEvse
from pnc_bridge.link.slac import frames as f

CAPTURES = Path(__file__).resolve().parents[2].parent / "shared" / "slac-captures"
FILES = sorted(p for p in CAPTURES.glob("*.pcap*")) if CAPTURES.is_dir() else []

# Messages an EVSE sends to the EV during matching (ours must match the capture's).
_EVSE_TO_EV = (f.CM_SLAC_PARM_CNF, f.CM_ATTEN_CHAR_IND, f.CM_VALIDATE_CNF, f.CM_SLAC_MATCH_CNF)


def _frames(path):
    from scapy.utils import PcapReader

    with PcapReader(str(path)) as reader:
        for pkt in reader:
            raw = bytes(pkt)
            d = f.decode(raw)
            if isinstance(d, f.Received):
                yield float(pkt.time), raw, d


@pytest.mark.skipif(not FILES, reason=f"no SLAC captures in {CAPTURES} (see the module docstring)")
@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_replay_gets_the_answers_the_real_evse_gave(path):
    frames = list(_frames(path))
    parm = next(((t, d) for t, _, d in frames if isinstance(d.message, f.CM_SLAC_PARM_REQ)), None)
    cnf = next(((t, d) for t, _, d in frames if isinstance(d.message, f.CM_SLAC_PARM_CNF)), None)
    if parm is None or cnf is None:
        pytest.skip(f"{path.name}: no CM_SLAC_PARM.REQ/CNF pair")
    ev_mac, evse_mac = parm[1].src, cnf[1].src
    expected = [type(d.message).__name__ for _, _, d in frames
                if d.src == evse_mac and d.dst == ev_mac and isinstance(d.message, _EVSE_TO_EV)]
    evse = SlacEvse(evse_mac, set_key=False)
    t0 = frames[0][0]
    evse.cp_state(CpState.B, t0 - 1.0)
    ours: list[str] = []
    for t, raw, d in frames:
        while (dl := evse.deadline()) is not None and dl <= t:
            ours += [type(o.message).__name__ for o in evse.tick(dl) if isinstance(o, SendFrame)]
        if d.src == ev_mac or (d.dst == evse_mac and isinstance(d.message, f.CM_ATTEN_PROFILE_IND)):
            ours += [type(o.message).__name__ for o in evse.receive_frame(raw, t) if isinstance(o, SendFrame)]
    # Repetitions differ with timing; compare the sequence of distinct steps.
    def steps(names):
        return [n for i, n in enumerate(names) if i == 0 or names[i - 1] != n]

    assert steps(ours) == steps(expected)
