"""`pnc-bridge hil ...` as a lab runs it: help, one-line user errors, a whole session in one
command, and the EV emulator against the stand-alone SECC in another process sharing a test
PKI made by `pnc-bridge pki test-pki` (Plug & Charge over TLS)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def env():
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return e


def cli(*args, env, timeout=120):
    return subprocess.run([sys.executable, "-m", "pnc_bridge", *args], capture_output=True, text=True, env=env, timeout=timeout)


@pytest.mark.parametrize("cmd", [[], ["session"], ["ev"], ["secc"]])
def test_help(cmd, env):
    res = cli("hil", *cmd, "--help", env=env)
    assert res.returncode == 0 and "usage:" in res.stdout


@pytest.mark.parametrize("args,msg", [
    (["ev"], "give --port (and --host), or --sdp IFACE"),
    (["ev", "--port", "1", "--pnc"], "--tls and --pnc need --pki DIR"),
    (["ev", "--port", "1", "--pki", "/nonexistent"], "not a test PKI directory"),
    (["ev", "--port", "1", "--protocol", "din", "--mode", "ac3"], "DIN 70121 is DC only"),
    (["ev", "--port", "1", "--loops", "0"], "--loops must be at least 1"),
    (["secc"], "give --tcp-port and/or --tls-port"),
    (["secc", "--tls-port", "1"], "--tls-port needs --pki DIR"),
    (["secc", "--tcp-port", "0", "--modes", "dc,xx"], "unknown mode 'xx'"),
])
def test_user_errors_are_one_line(args, msg, env):
    res = cli("hil", *args, env=env)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("pnc-bridge: error:") and msg in res.stderr and "Traceback" not in res.stderr


def test_ev_without_a_secc_fails_with_the_reason(env):
    res = cli("hil", "ev", "--port", "9", "--host", "::1", env=env)
    assert res.returncode == 1 and "FAILED: cannot connect" in res.stdout


@pytest.mark.parametrize("args", [["--protocol", "din"], ["--protocol", "iso2", "--mode", "ac3"], ["--pnc"]])
def test_session_in_one_command(args, env):
    res = cli("hil", "session", "--loops", "3", "--interval", "0.01", *args, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SessionStopRes" in res.stdout and res.stdout.rstrip().splitlines()[-1].startswith("ok: session ended")
    if "--pnc" in args:
        assert "CertificateInstallationRes" in res.stdout and "contract installed: True" in res.stdout


def test_ev_against_the_stand_alone_secc_with_a_shared_pki(tmp_path, env):
    assert cli("pki", "test-pki", str(tmp_path / "pki"), env=env).returncode == 0
    secc = subprocess.Popen(
        [sys.executable, "-m", "pnc_bridge", "hil", "secc", "--pki", str(tmp_path / "pki"), "--host", "::1",
         "--tcp-port", "0", "--tls-port", "0", "--duration", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        line = secc.stdout.readline()
        ports = re.match(r"SECC listening: TCP (\d+), TLS (\d+)", line)
        assert ports, line
        tls_port = ports.group(2)
        res = cli("hil", "ev", "--port", tls_port, "--tls", "--pnc", "--pki", str(tmp_path / "pki"), "--loops", "3",
                  "--interval", "0.01", env=env)
        assert res.returncode == 0, res.stdout + res.stderr
        assert "contract installed: True" in res.stdout
        eim = cli("hil", "ev", "--port", ports.group(1), "--protocol", "din", "--loops", "2", "--interval", "0.01", env=env)
        assert eim.returncode == 0, eim.stdout
        deadline = time.monotonic() + 10
        seen = []
        while time.monotonic() < deadline and not any("session ends: the EV ended the session" in s for s in seen[-3:]):
            seen.append(secc.stdout.readline())
        text = "".join(seen)
        assert "StartTransaction" in text and "CurrentDemandReq" in text
    finally:
        secc.terminate()
        secc.wait(timeout=10)
