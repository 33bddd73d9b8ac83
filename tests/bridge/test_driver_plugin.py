"""A charger maker's own EVSE driver (``[driver] kind = "python"``), loaded by the service.

The driver here is written the way a charger maker writes one: a module of their own, found
through ``python_path`` next to the configuration, a factory taking ``evse_id``, ``limits``,
``ac`` and ``options``; it is not the simulator (no ``plug_in``): its CP line says the EV is
there. A whole ISO 15118-2 DC session runs through it against the ``hil.ev`` EV emulator and
the ``hil.csms`` CSMS emulator, and the test checks what the power electronics were asked to
do, in order. Every way of getting the driver wrong is one configuration error, not a
traceback.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hil.demo_rig import BridgeRig
from hil.ev import EvConfig, run_ev
from pnc_bridge.config import ConfigError, load_config
from pnc_bridge.bridge._service import build_drivers
from pnc_bridge.secc.effects import EnergyTransferMode, PaymentOption
from tests.bridge.conftest import run

DRIVER_MODULE = '''
"""A bench driver: the EV is on the cable from the start; every call is recorded."""
from pnc_bridge.evse import EvseSimulator


class BenchDriver:
    def __init__(self, evse_id, limits, ac, options):
        self._hw = EvseSimulator(evse_id, limits=limits, ac=ac)
        self._hw.plug_in()
        self._hw.ev_ready()
        self.options = options
        self.calls = []
        self.closed = False

    @property
    def evse_id(self):
        return self._hw.evse_id

    def cp_state(self):
        return self._hw.cp_state()

    def cp_state_changes(self):
        return self._hw.cp_state_changes()

    def limits(self):
        return self._hw.limits()

    async def set_contactors(self, closed):
        self.calls.append(("set_contactors", closed))
        await self._hw.set_contactors(closed)

    async def isolation_check(self, voltage_v):
        self.calls.append(("isolation_check", voltage_v))
        return await self._hw.isolation_check(voltage_v)

    async def set_limit(self, *, current_a=None, power_w=None):
        self.calls.append(("set_limit", current_a, power_w))
        await self._hw.set_limit(current_a=current_a, power_w=power_w)

    async def set_target(self, voltage_v, current_a):
        self.calls.append(("set_target", voltage_v, current_a))
        await self._hw.set_target(voltage_v, current_a)

    async def present_values(self):
        return await self._hw.present_values()

    async def read_meter(self, *, signed=False):
        return await self._hw.read_meter(signed=signed)

    async def aclose(self):
        self.closed = True

    # the bench's hands on the cable
    def cable_out(self):
        self._hw.unplug()

    def cable_in(self):
        self._hw.plug_in()
        self._hw.ev_ready()

    def fault(self):
        self._hw.inject_fault()


def make(*, evse_id, limits, ac, options):
    if options.get("bus") != "can0":
        raise ValueError("options.bus must name the CAN bus")
    return BenchDriver(evse_id, limits, ac, options)


def not_a_driver(*, evse_id, limits, ac, options):
    return object()


NOT_CALLABLE = 42
'''


@pytest.fixture
def driver_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "vendor"
    directory.mkdir()
    # a module name no other test uses, so sys.modules holds this file's version
    (directory / f"acme_power_{tmp_path.name.replace('-', '_')}.py").write_text(DRIVER_MODULE)
    return directory


def module_name(driver_dir: Path) -> str:
    return next(driver_dir.glob("acme_power_*.py")).stem


def driver_toml(driver_dir: Path, factory: str = "make", options: str = 'bus = "can0"') -> str:
    return textwrap.dedent(f"""
        [driver]
        kind = "python"
        factory = "{module_name(driver_dir)}:{factory}"
        python_path = ["{driver_dir}"]
        [driver.options]
        {options}
    """)


def test_a_whole_dc_session_drives_the_charger_makers_driver(test_pki, tmp_path, driver_dir):
    config = EvConfig(protocols=("iso2",), energy_mode=EnergyTransferMode.DC_extended,
                      payment=PaymentOption.ExternalPayment, loop_messages=3, loop_interval=0.02,
                      ongoing_interval=0.02, battery_voltage_v=387.0)

    async def main():
        async with BridgeRig(tmp_path / "rig", test_pki, device_model={"AuthCtrlr/Enabled": "false"},
                             driver_toml=driver_toml(driver_dir)) as rig:
            driver = rig.service.drivers[1]
            assert type(driver).__name__ == "BenchDriver" and driver.options == {"bus": "can0"}
            assert not rig.service.contexts[1].simulated
            ev = await run_ev(config, rig.v2g["host"], rig.endpoint.tcp_port)
            await rig.wait_idle()
            events = rig.tx_events()
        return ev, driver, events

    ev, driver, events = run(main())
    assert ev.result.ok, ev.result.reason
    names = [c[0] for c in driver.calls]
    # CableCheck before any power
    assert "isolation_check" in names and names.index("isolation_check") < names.index("set_target")
    # the contactors close (at the first pre-charge target, confirmed at PowerDelivery Start:
    # docs/bridge.md) and open once, after the power stage was ramped down to 0 V / 0 A
    contactors = [c[1] for c in driver.calls if c[0] == "set_contactors"]
    assert contactors[-1] is False and all(contactors[:-1]) and len(contactors) >= 2
    close = names.index("set_contactors")
    opened = len(names) - 1 - names[::-1].index("set_contactors")
    targets = [c[1:] for c in driver.calls[close:opened] if c[0] == "set_target"]
    assert (387.0, 200.0) in targets, "the EV's CurrentDemand target reaches the power stage"
    assert targets[-1] == (0.0, 0.0), "the output is ramped down before the contactors open"
    # the CSMS's limit (the demo CSMS's 50 kW TxProfile) was applied to the power stage
    assert ("set_limit", None, 50000.0) in driver.calls
    assert driver.closed, "the service closes the driver at shutdown"
    assert events[0]["eventType"] == "Started" and events[-1]["eventType"] == "Ended"


def dc_ev(**kw) -> EvConfig:
    defaults = dict(protocols=("iso2",), energy_mode=EnergyTransferMode.DC_extended,
                    payment=PaymentOption.ExternalPayment, loop_messages=3, loop_interval=0.02, ongoing_interval=0.02)
    return EvConfig(**{**defaults, **kw})


def statuses(rig) -> list[str]:
    return [c["connectorStatus"] for c in rig.calls("StatusNotification")]


def test_cable_pulled_mid_charge_loop_ends_the_session_at_once(test_pki, tmp_path, driver_dir):
    """CP state A during CurrentDemand: the session ends now, not at the EV's or the SECC's
    timeout; the output is ramped down and opened; the transaction ends as EVDeparted /
    EVDisconnected (E06 with TxStopPoint EVConnected) and the connector is Available."""
    async def main():
        async with BridgeRig(tmp_path / "rig", test_pki, device_model={"AuthCtrlr/Enabled": "false"},
                             driver_toml=driver_toml(driver_dir)) as rig:
            driver = rig.service.drivers[1]
            ev_task = asyncio.create_task(run_ev(dc_ev(loop_messages=1000, loop_interval=0.05), rig.v2g["host"],
                                                 rig.endpoint.tcp_port))
            await rig.wait_for(lambda r: any(c[0] == "set_target" and c[2] == 200.0 for c in driver.calls))
            await asyncio.sleep(0.2)  # a few CurrentDemand cycles into the loop
            driver.cable_out()
            # the EV would loop for 50 s more: only the CP line can end it in time
            ev = await asyncio.wait_for(ev_task, 10)
            ended = await rig.wait_ended()
            await rig.wait_for(lambda r: statuses(r)[-1:] == ["Available"])
            return ev, driver, ended, statuses(rig)

    ev, driver, ended, seen = run(main())
    assert not ev.result.ok  # the EV lost its connection
    assert ended["triggerReason"] == "EVDeparted"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert ("set_contactors", False) in driver.calls, "the output is opened when the cable is gone"
    assert seen[-2:] == ["Occupied", "Available"]


def test_cable_pulled_while_paused_ends_the_transaction(test_pki, tmp_path, driver_dir):
    """An ISO 15118-2 session paused by the EV keeps its transaction (the EV may come back);
    the cable leaving ends it as EVDeparted."""
    async def main():
        async with BridgeRig(tmp_path / "rig", test_pki, device_model={"AuthCtrlr/Enabled": "false"},
                             driver_toml=driver_toml(driver_dir)) as rig:
            driver = rig.service.drivers[1]
            ev = await run_ev(dc_ev(pause=True), rig.v2g["host"], rig.endpoint.tcp_port)
            await rig.wait_idle()
            open_before = not any(e["eventType"] == "Ended" for e in rig.tx_events())
            occupied = statuses(rig)[-1]
            driver.cable_out()
            ended = await rig.wait_ended()
            await rig.wait_for(lambda r: statuses(r)[-1:] == ["Available"])
            return ev, open_before, occupied, ended

    ev, open_before, occupied, ended = run(main())
    assert ev.result.ok and ev.result.paused, ev.result.reason
    assert open_before and occupied == "Occupied"
    assert ended["triggerReason"] == "EVDeparted"
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"  # a pause is not a stop


def test_cp_fault_makes_the_connector_faulted_until_it_recovers(test_pki, tmp_path, driver_dir):
    async def main():
        async with BridgeRig(tmp_path / "rig", test_pki, driver_toml=driver_toml(driver_dir)) as rig:
            driver = rig.service.drivers[1]
            driver.fault()
            await rig.wait_for(lambda r: statuses(r)[-1:] == ["Faulted"])
            driver.cable_out()
            await rig.wait_for(lambda r: statuses(r)[-1:] == ["Available"])
            return statuses(rig)

    seen = run(main())
    assert seen[-2:] == ["Faulted", "Available"]


@pytest.mark.parametrize(
    "factory, options, message",
    [
        ("make", 'bus = "can1"', "failed for EVSE 1: ValueError: options.bus must name the CAN bus"),
        ("not_a_driver", "", "lacks the EvseDriver member(s): cp_state, cp_state_changes"),
        ("NOT_CALLABLE", "", "NOT_CALLABLE is not callable"),
        ("missing", "", "has no missing"),
    ],
)
def test_a_wrong_driver_is_one_configuration_error(tmp_path, driver_dir, factory, options, message):
    path = tmp_path / "pnc-bridge.toml"
    path.write_text(base_toml() + driver_toml(driver_dir, factory, options))
    with pytest.raises(ConfigError, match="^driver: driver factory") as info:
        build_drivers(load_config(path))
    assert message in str(info.value)


def test_run_check_imports_the_driver_and_names_it(tmp_path, driver_dir):
    good = tmp_path / "good.toml"
    good.write_text(base_toml() + driver_toml(driver_dir))
    done = subprocess.run([sys.executable, "-m", "pnc_bridge", "run", "--config", str(good), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert f"driver python ({module_name(driver_dir)}:make)" in done.stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(base_toml() + '[driver]\nkind = "python"\nfactory = "no_such_vendor_module:make"\n')
    done = subprocess.run([sys.executable, "-m", "pnc_bridge", "run", "--config", str(bad), "--check"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "cannot import no_such_vendor_module" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "text, message",
    [
        ('[driver]\nkind = "python"\n', 'kind "python" needs factory'),
        ('[driver]\nfactory = "a:b"\n', "the simulator takes none"),
        ('[driver]\nkind = "python"\nfactory = "a:b"\n[simulator]\nsessions = 1\n', "simulator.sessions"),
    ],
)
def test_driver_section_errors(tmp_path, text, message):
    path = tmp_path / "pnc-bridge.toml"
    path.write_text(base_toml() + text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def base_toml() -> str:
    return textwrap.dedent("""
        [station]
        identity = "CS001"
        vendor = "acme"
        model = "m1"
        [csms]
        url = "ws://127.0.0.1:9/ocpp"
        security_profile = 1
        password = "0123456789abcdef"
        [paths]
        data_dir = "data"
        trust_store = "trust"
    """)
