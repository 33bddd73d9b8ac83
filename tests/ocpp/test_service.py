"""The service side: configuration errors, ``pnc-bridge run``, the EVSE simulator, the
``ocpp`` tools, and the reset / remote start path through the running service."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from hil.csms import CsmsEmulator
from pnc_bridge.cli import main
from pnc_bridge.config import ConfigError, load_config
from pnc_bridge.evse import CpState, EvseDriver, EvseFault, EvseSimulator, IsolationResult
from tests.ocpp.conftest import IDENTITY, PASSWORD, run

GOOD = f"""
[station]
identity = "{IDENTITY}"
[csms]
url = "ws://127.0.0.1:9/ocpp"
security_profile = 1
password = "{PASSWORD}"
[paths]
data_dir = "data"
trust_store = "trust"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    "text,message",
    [
        ("x = = 1", "not valid TOML"),
        (GOOD.replace('security_profile = 1', 'security_profile = 2'), "needs a wss:// url"),
        (GOOD.replace(f'password = "{PASSWORD}"', 'password = "short"'), "16 to 40 characters"),
        (GOOD.replace(f'password = "{PASSWORD}"', ""), "password or csms.password_file is needed"),
        (GOOD + "\n[paths2]\n", "paths2: unknown key"),
        (GOOD.replace(IDENTITY, "bad:identity"), "station.identity"),
        (GOOD + '\n[device_model]\n"Nope/Nothing" = "1"\n', "unknown variables: Nope/Nothing"),
        (GOOD.replace('security_profile = 1', 'security_profile = 1\nsubprotocols = ["ocpp1.6"]'), "csms.subprotocols"),
        (GOOD.replace('security_profile = 1', 'security_profile = 1\nsubprotocols = []'), "csms.subprotocols"),
    ],
)
def test_configuration_errors_are_one_clear_message(tmp_path: Path, capsys, text: str, message: str) -> None:
    status = main(["run", "--config", str(write(tmp_path, text)), "--check"])
    err = capsys.readouterr().err
    assert status == 2 and message in err and "Traceback" not in err


def test_missing_file_and_relative_paths(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")
    config = load_config(write(tmp_path, GOOD))
    assert config.paths.data_dir == (tmp_path / "data").resolve()


def test_ocpp_versions_offered_in_the_configured_order(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).csms.subprotocols == ("ocpp2.1", "ocpp2.0.1")  # default: 2.1 first
    only = GOOD.replace('security_profile = 1', 'security_profile = 1\nsubprotocols = ["ocpp2.0.1"]')
    assert load_config(write(tmp_path, only)).csms.subprotocols == ("ocpp2.0.1",)


def test_the_example_configuration_is_valid(capsys) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "pnc-bridge.toml"
    assert main(["run", "--config", str(example), "--check"]) == 0
    assert "OK" in capsys.readouterr().out


def test_ocpp_tools(tmp_path: Path, capsys) -> None:
    assert main(["ocpp", "generate", "--check"]) == 0
    assert main(["ocpp", "outbox", "--config", str(write(tmp_path, GOOD))]) == 2
    assert "no state database" in capsys.readouterr().err


def test_evse_simulator_is_an_evse_driver() -> None:
    async def body() -> None:
        now = [0.0]
        sim = EvseSimulator(1, clock=lambda: now[0])
        assert isinstance(sim, EvseDriver)
        changes = sim.cp_state_changes()
        sim.plug_in()
        assert await changes.__anext__() is CpState.B
        with pytest.raises(EvseFault):
            await sim.set_contactors(True)  # EV not ready
        sim.ev_ready()
        await sim.set_contactors(True)
        assert await sim.isolation_check(500) is IsolationResult.Valid
        sim.demand(100.0, 400.0)
        await sim.set_limit(power_w=20_000)
        now[0] = 3600.0
        reading = await sim.read_meter(signed=True)
        assert reading.power_w == pytest.approx(20_000) and reading.energy_import_wh == pytest.approx(20_000)
        assert reading.signed is not None and reading.signed.public_key
        sim.unplug()
        assert (await sim.present_values()).current_a == 0.0

    run(body())


def test_running_service_answers_remote_start_and_reset(tmp_path: Path) -> None:
    from pnc_bridge.bridge import Service

    async def body() -> None:
        async with CsmsEmulator(basic_auth={IDENTITY: PASSWORD}) as csms:
            config_path = write(tmp_path, GOOD.replace("ws://127.0.0.1:9/ocpp", csms.url) + textwrap.dedent("""
                [simulator]
                session_seconds = 30
                meter_interval = 0.2
                [device_model]
                "OCPPCommCtrlr/WebSocketPingInterval" = "0"
            """))
            config = load_config(config_path)
            stop = asyncio.Event()
            task = asyncio.create_task(Service(config).run(stop))
            await csms.wait_connected(IDENTITY)
            await csms.wait_for(lambda e: e.received("StatusNotification"), 5)
            answer = await csms.call_json(IDENTITY, "RequestStartTransaction", {"evseId": 1, "remoteStartId": 5,
                                                                                 "idToken": {"idToken": "APP", "type": "Central"}})
            assert answer["status"] == "Accepted"
            await csms.wait_for(lambda e: len(e.received("TransactionEvent")) >= 3, 10)
            started = csms.received("TransactionEvent")[0].payload
            assert started["triggerReason"] == "RemoteStart" and started["transactionInfo"]["remoteStartId"] == 5
            tid = started["transactionInfo"]["transactionId"]
            # F06.FR.06: the service's meter answers a triggered MeterValues
            assert (await csms.call_json(IDENTITY, "TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 1}}))["status"] == "Accepted"
            await csms.wait_for(lambda e: e.received("MeterValues"), 5)
            sampled = csms.received("MeterValues")[0].payload["meterValue"][0]["sampledValue"]
            assert {v["measurand"] for v in sampled} == {"Energy.Active.Import.Register", "Power.Active.Import"}
            assert (await csms.call_json(IDENTITY, "Reset", {"type": "Immediate"}))["status"] == "Accepted"
            assert await asyncio.wait_for(task, 15) == "reset"
            ended = [r.payload for r in csms.received("TransactionEvent") if r.payload["eventType"] == "Ended"]
            assert ended and ended[0]["transactionInfo"] == {"transactionId": tid, "stoppedReason": "ImmediateReset"}
            assert ended[0]["triggerReason"] == "ResetCommand"  # B12.FR.04
            reset_events = [r.payload for r in csms.received("SecurityEventNotification") if r.payload["type"] == "ResetOrReboot"]
            assert reset_events

    run(body())
