"""`pnc-bridge hil session --protocol iso20 ...` as a lab runs it: the -20 EV against our -20
SECC over TLS 1.3 in one command, with the timeline showing the power both ways; one-line
user errors."""

from __future__ import annotations

import re

import pytest

from tests.secc.test_cli import cli, env  # noqa: F401 - the fixture

pytestmark = pytest.mark.timeout(180)


def test_a_v2g_session_in_one_command_shows_charge_discharge_charge(env):  # noqa: F811
    res = cli("hil", "session", "--protocol", "iso20", "--service", "ac-bpt", "--control", "dynamic", "--v2g", "1",
              "--loops", "12", "--interval", "0.25", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    targets = [int(t) for t in re.findall(r"EVSE target ([+-]\d+) W", res.stdout)]
    signs = [t > 0 for t in targets]
    assert signs[0] and not all(signs) and signs[-1]  # charge, discharge, charge again
    assert re.search(r"ok: session ended \(protocol iso20-ac, 12 charge-loop messages.*Wh charged, [0-9.]+ Wh given back\)", res.stdout)
    given_back = float(re.search(r"([0-9.]+) Wh given back", res.stdout).group(1))
    assert given_back > 0


def test_plug_and_charge_with_installation_in_one_command(env):  # noqa: F811
    res = cli("hil", "session", "--protocol", "iso20", "--service", "dc", "--pnc", "--loops", "3", "--interval", "0.01", env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "CertificateInstallationRes" in res.stdout and "contract installed: True" in res.stdout


@pytest.mark.parametrize("args,msg", [
    (["session", "--protocol", "iso20", "--protocol", "iso2"], "do not combine it with din / iso2"),
    (["session", "--v2g", "2"], "--v2g SECONDS is for --protocol iso20"),
    (["ev", "--port", "1", "--protocol", "iso20"], "ISO 15118-20 runs over TLS"),
    (["secc", "--tcp-port", "0", "--pki20", "/nonexistent"], "not a test PKI directory"),
])
def test_iso20_user_errors_are_one_line(args, msg, env):  # noqa: F811
    res = cli("hil", *args, env=env)
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("pnc-bridge: error:") and msg in res.stderr and "Traceback" not in res.stderr
