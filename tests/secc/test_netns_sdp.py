"""The whole link as an EV meets it, in network namespaces: the EV emulator finds our SECC
with SDP on its interface (asking for TLS), connects to the announced link-local address and
port, and charges with Plug & Charge and contract installation; then with EIM over TCP. EV and
SECC are `pnc-bridge hil ev` and `pnc-bridge hil secc` processes in their own namespaces,
sharing a test PKI made by `pnc-bridge pki test-pki`."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.netns, pytest.mark.timeout(240)]


def test_sdp_then_tls_plug_and_charge_then_tcp_eim(netns_pair, tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    pki = tmp_path / "pki"
    assert subprocess.run([sys.executable, "-m", "pnc_bridge", "pki", "test-pki", str(pki)], env=env,
                          capture_output=True).returncode == 0
    secc = subprocess.Popen(
        [*netns_pair.exec_args(netns_pair.evse_ns), sys.executable, "-m", "pnc_bridge", "hil", "secc", "--pki", str(pki),
         "--iface", netns_pair.evse_if, "--tcp-port", "0", "--tls-port", "0", "--duration", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = secc.stdout.readline()
        assert line.startswith("SECC listening"), line + secc.stderr.read() if secc.poll() is not None else line

        def ev(*args):
            return subprocess.run(
                [*netns_pair.exec_args(netns_pair.ev_ns), sys.executable, "-m", "pnc_bridge", "hil", "ev", "--sdp", netns_pair.ev_if,
                 "--loops", "3", "--interval", "0.01", *args],
                capture_output=True, text=True, env=env, timeout=120,
            )

        pnc = ev("--tls", "--pnc", "--pki", str(pki), "--protocol", "iso2")
        assert pnc.returncode == 0, pnc.stdout + pnc.stderr
        assert "CertificateInstallationRes" in pnc.stdout and "contract installed: True" in pnc.stdout
        eim = ev("--protocol", "din")
        assert eim.returncode == 0, eim.stdout + eim.stderr
        assert "ContractAuthenticationRes" in eim.stdout
    finally:
        secc.terminate()
        secc.wait(timeout=10)
