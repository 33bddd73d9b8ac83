"""The CSMS emulator's scripted scenarios (TOML), against a real station."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from hil.csms import CsmsEmulator, load_scenario, run_scenario
from tests.ocpp.conftest import IDENTITY, PASSWORD, run

SCENARIO = """
[[step]]
wait = "BootNotification"
timeout = 10
[[step]]
call = "GetVariables"
payload = { getVariableData = [ { component = { name = "ISO15118Ctrlr" }, variable = { name = "PnCEnabled" } } ] }
expect = { getVariableResult = [ { attributeStatus = "Accepted", attributeValue = "true" } ] }
[[step]]
call = "Reset"
payload = { type = "Sometime" }
validate = false
expect_error = "PropertyConstraintViolation"
[[step]]
raw = "definitely not json"
[[step]]
cut = true
[[step]]
wait_connected = 10
[[step]]
call = "GetBaseReport"
payload = { requestId = 3, reportBase = "SummaryInventory" }
expect = { status = "Accepted" }
[[step]]
wait = "NotifyReport"
match = { requestId = 3 }
"""


def test_a_scenario_runs_against_the_station(harness, tmp_path: Path) -> None:
    path = tmp_path / "scenario.toml"
    path.write_text(textwrap.dedent(SCENARIO))
    scenario = load_scenario(path)

    async def body() -> None:
        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}) as csms:
            h = harness(csms.url)
            await h.start()
            await csms.wait_connected(IDENTITY)
            results = await run_scenario(csms, scenario["step"], IDENTITY)
            assert [r.ok for r in results] == [True] * len(results), [r.detail for r in results if not r.ok]
            assert csms.connections == 2
            await h.stop()

    run(body())


def test_a_bad_scenario_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[[step]]\ncall = "Reset"\nwait = "Boot"\n')
    with pytest.raises(ValueError, match="exactly one of"):
        load_scenario(path)


def test_the_emulator_cli_refuses_an_unknown_ocpp_version(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    path = tmp_path / "v.toml"
    path.write_text('[csms]\nocpp = ["1.6"]\n[[step]]\nsleep = 0\n')
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run([sys.executable, "-m", "hil.csms", "--port", "0", "--scenario", str(path), "--station", "X"],
                          capture_output=True, text=True, env=env, cwd=repo, timeout=60)
    assert done.returncode == 2 and "unknown OCPP version(s) 1.6" in done.stderr and "Traceback" not in done.stderr
