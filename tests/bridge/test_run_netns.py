"""``pnc-bridge run`` as a process, as a charger maker runs it: in the EVSE's network namespace
with ``[evse.v2g] interface`` set, it answers SDP there and serves our EV emulator (``pnc-bridge
hil ev --sdp``, in the EV's namespace) over TLS with Plug & Charge and contract installation,
while the CSMS emulator (in the EVSE's namespace, on its loopback) sees the OCPP side. SIGTERM
ends the service cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from hil.csms import CsmsEmulator
from hil.demo_csms import PncCsms
from hil.demo_rig import IDENTITY, PASSWORD, BridgeRig, make_trust_store
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "tests" / "link"))
from netns import NetnsLoop  # noqa: E402

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]


def test_pnc_bridge_run_serves_an_ev_found_with_sdp(netns_pair, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    assert subprocess.run([sys.executable, "-m", "pnc_bridge", "pki", "test-pki", str(tmp_path / "pki")], env=env,
                          capture_output=True).returncode == 0
    from hil._testpki_dir import load_test_pki

    pki = load_test_pki(tmp_path / "pki")
    make_trust_store(tmp_path / "trust", pki)
    loop = NetnsLoop(netns_pair.evse_ns)
    service = None
    try:
        async def start_csms():
            csms = CsmsEmulator(basic_auth={IDENTITY: PASSWORD})
            await csms.start()
            PncCsms(csms, pki).install()
            return csms

        csms = loop.run(start_csms())
        rig = BridgeRig(tmp_path, pki, v2g={"interface": netns_pair.evse_if, "slac": False, "host": "::"},
                        device_model={"ISO15118Ctrlr/RequestMeteringReceipt": "true"})
        config = tmp_path / "pnc-bridge.toml"
        config.write_text(rig.config_text(csms.url))
        service = subprocess.Popen([*netns_pair.exec_args(netns_pair.evse_ns), sys.executable, "-m", "pnc_bridge", "run", "--config",
                                    str(config)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        async def booted():
            await csms.wait_for(lambda e: e.received("BootNotification"), 60)

        loop.run(booted(), timeout=90)
        ev = subprocess.run(
            [*netns_pair.exec_args(netns_pair.ev_ns), sys.executable, "-m", "pnc_bridge", "hil", "ev", "--sdp", netns_pair.ev_if, "--tls",
             "--pnc", "--pki", str(tmp_path / "pki"), "--protocol", "iso2", "--loops", "3", "--interval", "0.05"],
            capture_output=True, text=True, env=env, timeout=120)
        assert ev.returncode == 0, ev.stdout + ev.stderr
        assert "contract installed: True" in ev.stdout and "MeteringReceiptRes" in ev.stdout

        async def ended():
            await csms.wait_for(lambda e: any(r.payload.get("eventType") == "Ended" for r in e.received("TransactionEvent")),
                                30)
            return [r.payload for r in csms.received("TransactionEvent")], csms.invalid_frames()

        events, invalid = loop.run(ended(), timeout=60)
        assert invalid == []
        assert [e["eventType"] for e in events][0] == "Started" and events[-1]["transactionInfo"]["stoppedReason"] == "StoppedByEV"
        service.send_signal(signal.SIGTERM)
        out, _ = service.communicate(timeout=30)
        assert service.returncode == 0, out
        assert "SECC on " + netns_pair.evse_if in out and "Traceback" not in out
        loop.run(csms.stop())
    finally:
        if service is not None and service.poll() is None:
            service.kill()
            service.wait()
        loop.close()


def test_slac_then_sdp_then_a_session(netns_pair, tmp_path, test_pki):
    """With ``slac = true`` the service runs the SLAC EVSE side on the interface: the EV-side
    SLAC emulator (``hil.ev_slac``, with ``hil.plc_modem`` answering the EVSE's CM_SET_KEY as
    its modem would) matches, then the EV finds the SECC with SDP and charges (EIM, DIN)."""
    from pnc_bridge.link.slac import Matched

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    modem = subprocess.Popen([*netns_pair.exec_args(netns_pair.ev_ns), sys.executable, "-m", "hil.plc_modem", netns_pair.ev_if], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    # the EVSE's SLAC sends CM_SET_KEY.REQ at start: the modem must be answering by then
    assert "answering" in modem.stdout.readline(), "hil.plc_modem did not start"
    loop = NetnsLoop(netns_pair.evse_ns)
    rig = BridgeRig(tmp_path, test_pki, v2g={"interface": netns_pair.evse_if, "slac": True, "host": "::"},
                    device_model={"AuthCtrlr/Enabled": "false"})
    try:
        loop.run(rig.__aenter__(), timeout=60)
        slac = subprocess.run([*netns_pair.exec_args(netns_pair.ev_ns), sys.executable, "-m", "hil.ev_slac", netns_pair.ev_if, "--timeout", "30"],
                              capture_output=True, text=True, env=env, timeout=60)
        assert slac.returncode == 0, slac.stdout + slac.stderr
        ev = subprocess.run(
            [*netns_pair.exec_args(netns_pair.ev_ns), sys.executable, "-m", "pnc_bridge", "hil", "ev", "--sdp", netns_pair.ev_if,
             "--protocol", "din", "--loops", "3", "--interval", "0.05"], capture_output=True, text=True, env=env, timeout=120)
        assert ev.returncode == 0, ev.stdout + ev.stderr

        async def outcome():
            await rig.wait_ended()
            return list(rig.endpoint.slac_events), rig.tx_events()

        events, tx = loop.run(outcome(), timeout=60)
        assert any(isinstance(e, Matched) for e in events)
        assert tx[-1]["eventType"] == "Ended" and tx[-1]["transactionInfo"]["stoppedReason"] == "StoppedByEV"
    finally:
        loop.run(rig.__aexit__(None, None, None), timeout=60)
        loop.close()
        modem.terminate()
        modem.wait(10)
