"""Cross-check with an independent SLAC implementation: pyslac's EVSE (PyPI ``pyslac``, run
from its own venv) against our EV emulator, in network namespaces."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from hil.ev_slac import EvMatched, EvSlac, run_ev_slac
from pnc_bridge.link.slac import frames as f
from pnc_bridge.link.slac.adapter import RawSocket, interface_mac
from hil.plc_modem import answer as modem_answer

REPO = Path(__file__).resolve().parents[2]
PEER = Path(__file__).resolve().parent / "peers" / "pyslac_evse.py"
pytestmark = [pytest.mark.netns, pytest.mark.timeout(120)]


def pyslac_python() -> str | None:
    candidates = [os.environ.get("PNC_PYSLAC_PYTHON"), str(REPO / ".cache" / "pyslac-venv" / "bin" / "python")]
    for c in candidates:
        if c and Path(c).exists():
            return c
    return None


def test_our_ev_emulator_matches_pyslac_evse(netns_pair, ns_loops):
    python = pyslac_python()
    if python is None:
        pytest.skip("pyslac venv absent: .ci/run creates .cache/pyslac-venv (pyslac==0.8.3, marshmallow==3.26.1)")
    ev_loop, evse_loop = ns_loops
    keys = []

    async def modem_start():
        sock = RawSocket(netns_pair.ev_if)

        def on_frame(data):
            reply = modem_answer(data)
            if reply is not None:
                keys.append(f.decode(data).message)
                sock.send(reply)

        sock.start(on_frame)
        return sock

    modem = ev_loop.run(modem_start())
    proc = subprocess.Popen(netns_pair.exec_args(netns_pair.evse_ns) + [python, str(PEER), netns_pair.evse_if],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr), daemon=True).start()
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", "".join(stderr)[-3000:]

        async def ev():
            return await run_ev_slac(netns_pair.ev_if, EvSlac(interface_mac(netns_pair.ev_if)), timeout=30)

        result = ev_loop.run(ev(), timeout=60)
        assert isinstance(result, EvMatched), result
        line = proc.stdout.readline().split()
        assert line[0] == "MATCHED", "".join(stderr)[-3000:]
        nid, nmk = bytes.fromhex(line[1]), bytes.fromhex(line[2])
        # The NID and NMK our EV got in pyslac's CM_SLAC_MATCH.CNF are the ones pyslac set
        # into its modem, and pyslac's NID derivation agrees with ours.
        assert (result.nid, result.nmk) == (nid, nmk)
        assert keys and keys[-1].new_key == nmk and keys[-1].nid == nid
        assert f.nid_from_nmk(nmk) == nid
        # (pyslac leaves EVSE ID in CM_SLAC_MATCH.CNF zero, so only the MAC is compared.)
        async def evse_mac():
            return interface_mac(netns_pair.evse_if)

        assert result.evse_mac == evse_loop.run(evse_mac())
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        modem.close()
