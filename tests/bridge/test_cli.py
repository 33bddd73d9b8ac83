"""``pnc-bridge run`` configuration (the [evse.v2g] keys, the trust store) and ``pnc-bridge demo``
as a user runs them: exit status, one-line errors, the timeline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hil.demo import run_demo
from pnc_bridge.cli import main
from tests.bridge.conftest import run
from tests.conftest import REPO

BASE = """
[station]
identity = "CS-1"
[csms]
url = "ws://127.0.0.1:9/ocpp"
security_profile = 1
password = "password-0123456789"
[paths]
data_dir = "data"
trust_store = "trust"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(BASE + text))
    return path


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = os.pathsep.join([str(REPO), e.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return e


def test_the_example_configuration_serves_evs(capsys):
    assert main(["run", "--config", str(REPO / "examples" / "pnc-bridge.toml"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "EVSE 1: SECC on interface plc0 with SLAC (TCP any, TLS any); iso2, din; Contract, ExternalPayment" in out


@pytest.mark.parametrize("text,message", [
    ("[[evse]]\nid = 1\n[evse.v2g]\ntcp_port = 70000\n", "evse.0.v2g.tcp_port"),
    ("[[evse]]\nid = 1\n[evse.v2g]\nprotocols = [\"iso3\"]\n", "evse.0.v2g.protocols"),
    ("[[evse]]\nid = 1\n[evse.v2g]\nlisten = 1\n", "evse.0.v2g.listen: unknown key"),
    ("[[evse]]\nid = 1\niso15118_evse_id = \"DE*1\"\n", "evse.0.iso15118_evse_id"),
    ("[[evse]]\nid = 1\n[evse.v2g]\ninterface = \"plc0\"\n[[evse]]\nid = 2\n[evse.v2g]\ninterface = \"plc0\"\n",
     "each EVSE needs its own PLC interface"),
    ("[[evse]]\nid = 1\n[evse.v2g]\ntls_port = 50000\n[[evse]]\nid = 2\n[evse.v2g]\ntls_port = 50000\n",
     "two EVSEs listen on the same port"),
    ("[[evse]]\nid = 1\n[evse.v2g]\ntcp_port = 15118\n", "dynamic range 49152-65535"),
    ("[iso15118]\nlocal_contract_validation = \"sometimes\"\n", "iso15118.local_contract_validation"),
])
def test_configuration_errors_are_one_clear_message(tmp_path, capsys, text, message):
    assert main(["run", "--config", str(write(tmp_path, text)), "--check"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_directory_that_is_not_a_trust_store_is_refused(tmp_path, capsys):
    (tmp_path / "trust").mkdir()
    (tmp_path / "trust" / "CSMSRootCertificate").mkdir()  # the OCPP client's old file layout
    assert main(["run", "--config", str(write(tmp_path, "")), ]) == 2
    err = capsys.readouterr().err
    assert "paths.trust_store" in err and "not a trust store" in err and "Traceback" not in err


def test_a_missing_interface_is_reported_not_a_traceback(tmp_path, capsys):
    text = "[[evse]]\nid = 1\n[evse.v2g]\ninterface = \"no-such-if0\"\nslac = false\n"
    assert main(["run", "--config", str(write(tmp_path, text))]) == 2
    err = capsys.readouterr().err
    assert "EVSE 1: cannot serve EVs" in err and "Traceback" not in err


def test_demo_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pnc_bridge", "demo", "--loops", "3"], capture_output=True, text=True,
                            env=env(), timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for needle in ("EV → SECC     CertificateInstallationReq", "SECC → CSMS   Get15118EVCertificate",
                   "CSMS → SECC   SetChargingProfile", "sa_schedules=#1: 0s 50 kW, 900s 22 kW, 2700s 11 kW, 5400s 50 kW",
                   "SECC → EV     MeteringReceiptRes", "SECC → EV     SessionStopRes", "eventType=Ended",
                   "OK: complete session"):
        assert needle in out, needle
    assert "Traceback" not in result.stderr


def test_demo_json_for_rigs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pnc_bridge", "demo", "--protocol", "din-dc", "--loops", "2", "--json"],
                            capture_output=True, text=True, env=env(), timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["ok"] and doc["protocol"] == "din-dc" and doc["problems"] == []
    messages = [(e["direction"], e["message"]) for e in doc["timeline"]]
    assert ("CSMS → SECC", "RequestStartTransaction") in messages and ("EV → SECC", "ContractAuthenticationReq") in messages
    assert all(isinstance(e["t_ms"], float) for e in doc["timeline"])


def test_demo_ac_in_process():
    result = run(run_demo("iso2-ac", loops=2, interval=0.02))
    assert result.ok, result.problems
    assert result.summary["contract_installed"] and result.summary["protocol"] == "iso2"
    needs = [e for e in result.entries if e.message == "NotifyEVChargingNeeds"]
    assert needs[0].fields["requestedEnergyTransfer"] == "AC_three_phase"


def test_demo_iso20_dc_bpt_as_a_user_runs_it(tmp_path):
    """``pnc-bridge demo --protocol iso20-dc-bpt`` (OCPP 2.1 by default): exit 0, and the
    timeline shows the power going charge -> discharge -> charge and the energy both ways."""
    result = subprocess.run([sys.executable, "-m", "pnc_bridge", "demo", "--protocol", "iso20-dc-bpt", "--loops", "40"],
                            capture_output=True, text=True, timeout=120, env=env(), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    out = result.stdout
    assert "power directions in the charge loop: charge → discharge → charge" in out
    assert "session: iso20-dc (OCPP 2.1)" in out
    assert "DC_ChargeLoopRes" in out and "power=-7.0 kW" in out and "power=+20.0 kW" in out
    assert "export_wh=" in out and "OK: complete session" in out


def test_demo_iso20_on_ocpp201_in_process():
    result = run(run_demo("iso20-dc-bpt", loops=40, interval=0.1, ocpp="2.0.1"))
    assert result.ok, result.problems
    s = result.summary
    assert s["ocpp"] == "2.0.1" and s["power_signs"].replace("0", "").count("+-+") == 1
    assert s["csms_export_wh"] > 0 and s["csms_import_wh"] > 0
    needs = next(e for e in result.entries if e.message == "NotifyEVChargingNeeds")
    assert needs.fields["requestedEnergyTransfer"] == "DC (DC_BPT in customData)"
    profile = next(e for e in result.entries if e.message == "SetChargingProfile")
    assert "-7 kW" in profile.fields["chargingSchedule"][0]


def test_demo_iso20_refuses_a_charge_loop_too_short_for_its_schedule(capsys):
    assert main(["demo", "--protocol", "iso20-dc-bpt", "--loops", "5"]) == 2
    assert "at least 3 s of charge loop" in capsys.readouterr().err


def test_demo_refuses_a_bad_ocpp_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--protocol", "iso20-dc-bpt", "--ocpp", "1.6"])
    assert exc.value.code == 2 and "--ocpp" in capsys.readouterr().err


def test_demo_keep_refuses_a_used_directory(tmp_path, capsys):
    (tmp_path / "something").write_text("x")
    assert main(["demo", "--keep", str(tmp_path)]) == 2
    assert "must be new or empty" in capsys.readouterr().err
