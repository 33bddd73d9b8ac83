"""`pnc-bridge link ...` as a rig builder runs it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pnc_bridge.link.sdp import SdpPolicy
from pnc_bridge.link.sdp_server import SdpServer, link_local_address

pytestmark = pytest.mark.timeout(120)


def cli(*args, env, prefix=(), timeout=60):
    return subprocess.run([*prefix, sys.executable, "-m", "pnc_bridge", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


@pytest.mark.parametrize("cmd", [[], ["slac-listen"], ["slac-evse"], ["sdp-probe"], ["serve"]])
def test_help(cmd, subprocess_env):
    res = cli("link", *cmd, "--help", env=subprocess_env)
    assert res.returncode == 0 and "usage:" in res.stdout


@pytest.mark.parametrize("args,msg", [
    (["serve", "lo"], "give --tcp-port, --tls-port or both"),
    (["serve", "lo", "--tls-port", "1"], "--tls-port needs --cert and --key"),
    (["serve", "lo", "--tls-port", "1", "--cert", "/nonexistent", "--key", "/nonexistent"], "SECC certificate"),
    (["sdp-probe", "lo", "--tries", "0"], "--tries must be at least 1"),
    (["slac-listen", "no-such-if0"], "no-such-if0"),
])
def test_user_errors_are_one_line(args, msg, subprocess_env):
    res = cli("link", *args, env=subprocess_env)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("pnc-bridge: error:") and msg in res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.netns
def test_sdp_probe_finds_the_secc(netns_pair, ns_loops, subprocess_env):
    _, evse_loop = ns_loops

    async def start():
        addr = link_local_address(netns_pair.evse_if)
        server = SdpServer(netns_pair.evse_if, SdpPolicy(addr, tls_port=64109, tcp_port=64110))
        await server.start()
        return server, addr

    server, addr = evse_loop.run(start())
    res = cli("link", "sdp-probe", netns_pair.ev_if, "--tries", "20", env=subprocess_env,
              prefix=netns_pair.exec_args(netns_pair.ev_ns))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"SECC [{addr}%{netns_pair.ev_if}]:64109 security=TLS transport=TCP"
    res = cli("link", "sdp-probe", netns_pair.ev_if, "--no-tls", "--tries", "20", env=subprocess_env,
              prefix=netns_pair.exec_args(netns_pair.ev_ns))
    assert ":64110 security=NO_TLS" in res.stdout

    async def stop():
        await server.close()

    evse_loop.run(stop())


@pytest.mark.netns
def test_slac_evse_and_listen_on_a_real_association(netns_pair, subprocess_env):
    ns = netns_pair
    listen = subprocess.Popen([*ns.exec_args(ns.evse_ns), sys.executable, "-m", "pnc_bridge", "link", "slac-listen",
                               ns.evse_if, "--timeout", "20"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=subprocess_env)
    evse = subprocess.Popen([*ns.exec_args(ns.evse_ns), sys.executable, "-m", "pnc_bridge", "link", "slac-evse",
                             ns.evse_if, "--no-set-key", "--timeout", "20"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=subprocess_env)
    try:
        # both must be listening before the EV starts (a slow start under load missed frames)
        assert "listening for SLAC" in listen.stderr.readline()
        assert "waiting for an EV" in evse.stderr.readline()
        ev = subprocess.run([*ns.exec_args(ns.ev_ns), sys.executable, "-m", "hil.ev_slac", ns.ev_if, "--timeout", "20"],
                            capture_output=True, text=True, env=subprocess_env, timeout=60)
        assert ev.returncode == 0 and ev.stdout.startswith("MATCHED"), ev.stderr
        out, _ = evse.communicate(timeout=30)
        assert evse.returncode == 0 and "MATCHED EV" in out
        nid = ev.stdout.split("nid=")[1].split()[0]
        assert f"NID {nid}" in out
    finally:
        for p in (evse, listen):
            if p.poll() is None:
                p.terminate()
        listen_out = listen.communicate(timeout=30)[0]
    assert "CM_SLAC_PARM_REQ" in listen_out and "association complete" in listen_out
