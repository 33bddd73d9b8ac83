"""OCPP 2.1 and V2X against the ``hil.csms`` emulator over real WebSockets, on both versions.

The emulator runs the ``ocpp`` package's ``v201`` or ``v21`` ChargePoint, whichever the
connection agreed, and checks every frame it receives against the official schemas of
that version; every test ends by asserting it found no invalid frame.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from hil.csms import CsmsCallError, CsmsEmulator, load_scenario, run_scenario
from pnc_bridge.ocpp import (
    V2X_VENDOR_ID,
    CallFailed,
    ControlMode,
    EnergyTransferMode,
    EvChargingNeeds,
    MobilityNeedsMode,
    OcppVersion,
    SchedulePeriod,
    bidirectional_meter_value,
    ev_schedule_payload,
    events,
)
from tests.ocpp.conftest import IDENTITY, PASSWORD, StationHarness, run, station_config

REPO = Path(__file__).resolve().parents[2]
VERSIONS = {"2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}

BPT_NEEDS = EvChargingNeeds(
    EnergyTransferMode.DC_BPT,
    (EnergyTransferMode.DC, EnergyTransferMode.DC_BPT),
    ControlMode.ScheduledControl,
    MobilityNeedsMode.EVCC,
    departure_time=3600,
    max_entries=24,
    energy_request_wh=20_000.0,
    max_current_a=200.0,
    max_voltage_v=500.0,
    max_power_w=50_000.0,
    max_discharge_power_w=11_000.0,
    max_discharge_current_a=25.0,
    min_v2x_energy_request_wh=-5_000.0,
    soc=40,
    target_soc=80,
)
PLAIN_NEEDS = EvChargingNeeds(EnergyTransferMode.DC, max_current_a=200.0, max_voltage_v=500.0, max_power_w=50_000.0)


async def next_event(queue: asyncio.Queue, kind: type, predicate: Callable[[Any], bool] = lambda e: True, timeout: float = 10.0) -> Any:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        event = await asyncio.wait_for(queue.get(), max(0.01, end - loop.time()))
        if isinstance(event, kind) and predicate(event):
            return event


class Rig:
    """An emulator accepting ``csms_versions`` and a station offering ``station_versions``."""

    def __init__(self, tmp_path: Path, csms_versions: list[str], station_versions: tuple[str, ...] = ("ocpp2.1", "ocpp2.0.1"),
                 discharge_w: float = 22_000.0, clock: Callable[[], datetime] | None = None) -> None:
        self.csms = CsmsEmulator(subprotocols=csms_versions, basic_auth={IDENTITY: PASSWORD})
        self.tmp_path = tmp_path
        self.station_versions = station_versions
        self.discharge_w = discharge_w
        self.clock = clock
        self.harness: StationHarness | None = None

    async def __aenter__(self) -> "Rig":
        await self.csms.start()
        self.harness = StationHarness(self.tmp_path, station_config(self.csms.url, subprotocols=self.station_versions,
                                                                     discharge_w=self.discharge_w))
        kwargs = {"clock": self.clock} if self.clock else {}
        self.station = await self.harness.start(**kwargs)
        self.events = self.station.subscribe()
        assert await self.station.wait_online(10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.harness is not None
        await self.harness.stop()
        await self.csms.stop()
        bad = self.csms.invalid_frames()
        assert not bad, [(r.action, r.error) for r in bad]

    async def transaction(self) -> str:
        return await self.station.start_transaction(1, 1, trigger_reason="CablePluggedIn", charging_state="EVConnected")

    async def call(self, action: str, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
        return await self.csms.call_json(IDENTITY, action, payload, **kw)


def tx_profile(transaction_id: str, periods: list[dict[str, Any]], *, pid: int = 1, kind: str = "Relative",
               stack: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "id": pid, "stackLevel": stack, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": kind,
        "transactionId": transaction_id,
        "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": periods}], **extra,
    }


# --------------------------------------------------------------------------- version negotiation


@pytest.mark.parametrize(
    "csms_versions, station_versions, expected",
    [
        (["ocpp2.1", "ocpp2.0.1"], ("ocpp2.1", "ocpp2.0.1"), "ocpp2.1"),
        (["ocpp2.0.1"], ("ocpp2.1", "ocpp2.0.1"), "ocpp2.0.1"),
        (["ocpp2.1", "ocpp2.0.1"], ("ocpp2.0.1",), "ocpp2.0.1"),
        (["ocpp2.0.1", "ocpp2.1"], ("ocpp2.1", "ocpp2.0.1"), "ocpp2.0.1"),  # the CSMS picks
        (["ocpp2.1"], ("ocpp2.1",), "ocpp2.1"),
    ],
)
def test_the_station_speaks_what_the_csms_picks(tmp_path: Path, csms_versions: list[str],
                                                station_versions: tuple[str, ...], expected: str) -> None:
    async def body() -> None:
        async with Rig(tmp_path, csms_versions, station_versions) as rig:
            assert rig.station.ocpp_version is OcppVersion(expected)
            assert rig.csms.version(IDENTITY) == expected.removeprefix("ocpp")
            connected = await next_event(rig.events, events.ConnectionChanged, lambda e: e.online, timeout=1)
            assert connected.subprotocol == expected
            # The device model and the 2.0.1 features answer the same on both versions.
            answer = await rig.call("GetVariables", {"getVariableData": [
                {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "SecurityProfile"}},
                {"component": {"name": "ISO15118Ctrlr"}, "variable": {"name": "SeccId"}},
            ]})
            assert [r["attributeValue"] for r in answer["getVariableResult"]] == ["1", "SECC1"]
            report = await rig.call("GetBaseReport", {"requestId": 7, "reportBase": "FullInventory"})
            assert report["status"] == "Accepted"
            await rig.csms.wait_for(lambda e: e.received("NotifyReport"))

    run(body())


def test_no_common_version_is_a_failed_connection(tmp_path: Path) -> None:
    async def body() -> None:
        async with CsmsEmulator(subprotocols=["ocpp2.1"], basic_auth={IDENTITY: PASSWORD}) as csms:
            harness = StationHarness(tmp_path, station_config(csms.url, subprotocols=("ocpp2.0.1",)))
            station = await harness.start()
            try:
                assert not await station.wait_online(1.5)
                assert station.ocpp_version is None and csms.connections == 0
            finally:
                await harness.stop()

    run(body())


# --------------------------------------------------------------------------- needs


def test_v2x_needs_native_on_21(tmp_path: Path) -> None:
    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.1"]) as rig:
            await rig.transaction()
            response = await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            assert response.status.value == "Accepted"
            (frame,) = rig.csms.received("NotifyEVChargingNeeds")
            needs = frame.payload["chargingNeeds"]
            assert needs["requestedEnergyTransfer"] == "DC_BPT"
            assert needs["availableEnergyTransfer"] == ["DC", "DC_BPT"]
            assert needs["controlMode"] == "ScheduledControl" and needs["mobilityNeedsMode"] == "EVCC"
            assert needs["v2xChargingParameters"]["maxDischargePower"] == 11_000.0
            assert needs["v2xChargingParameters"]["maxDischargeCurrent"] == 25.0
            assert needs["v2xChargingParameters"]["evMinV2XEnergyRequest"] == -5_000.0
            assert frame.payload["maxScheduleTuples"] == 24 and "customData" not in needs
            assert rig.station.ev_needs(1) == BPT_NEEDS

    run(body())


def test_v2x_needs_in_custom_data_on_201(tmp_path: Path) -> None:
    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.0.1"]) as rig:
            await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            (frame,) = rig.csms.received("NotifyEVChargingNeeds")
            needs = frame.payload["chargingNeeds"]
            assert needs["requestedEnergyTransfer"] == "DC"
            assert needs["dcChargingParameters"]["evMaxPower"] == 50_000
            custom = needs["customData"]
            assert custom["vendorId"] == V2X_VENDOR_ID == "org.pnc-bridge.v2x"
            assert custom["requestedEnergyTransfer"] == "DC_BPT"
            assert custom["v2xChargingParameters"]["maxDischargePower"] == 11_000.0
            assert custom["controlMode"] == "ScheduledControl"

    run(body())


# --------------------------------------------------------------------------- profiles both ways


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
def test_schedule_that_charges_discharges_charges(tmp_path: Path, version: str) -> None:
    """The CSMS's TxProfile goes to the service as a neutral schedule with the sign changes;
    GetCompositeSchedule shows the same in the version's own terms."""
    if version == "2.1":
        discharge = {"startPeriod": 60, "limit": 0.0, "dischargeLimit": -7_000.0, "setpoint": -7_000.0,
                     "operationMode": "CentralSetpoint"}
    else:
        discharge = {"startPeriod": 60, "limit": -7_000.0}
    periods = [{"startPeriod": 0, "limit": 11_000.0}, discharge, {"startPeriod": 120, "limit": 11_000.0}]

    async def body() -> None:
        async with Rig(tmp_path, [VERSIONS[version]]) as rig:
            tid = await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            answer = await rig.call("SetChargingProfile", {"evseId": 1, "chargingProfile": tx_profile(tid, periods)})
            assert answer["status"] == "Accepted"
            changed = await next_event(rig.events, events.ChargingScheduleChanged)
            starts = [p.start for p in changed.schedule.periods]
            signs = [(p.limit > 0) - (p.limit < 0) or (p.setpoint or 0) < 0 and -1 for p in changed.schedule.periods]
            # From now: the charge period may have begun a moment ago; the discharge lasts 60 s.
            assert signs[-3:] == [1, -1, 1] and starts[-1] - starts[-2] == 60, changed.schedule.periods
            assert changed.schedule.unit == "W"
            assert changed.schedule.periods[-2].max_discharge == 7_000.0
            composite = await rig.call("GetCompositeSchedule", {"evseId": 1, "duration": 180, "chargingRateUnit": "W"})
            out = composite["schedule"]["chargingSchedulePeriod"][-3:]
            assert out[2]["startPeriod"] - out[1]["startPeriod"] == 60
            if version == "2.1":
                assert out[1]["dischargeLimit"] == -7_000.0 and out[1]["setpoint"] == -7_000.0
                assert out[1]["operationMode"] == "CentralSetpoint"
            else:
                assert out[1]["limit"] == -7_000.0
                assert out[1]["customData"]["vendorId"] == V2X_VENDOR_ID and out[1]["customData"]["dischargeLimit"] == -7_000.0

    run(body())


def test_201_csms_may_send_21_fields_in_our_custom_data(tmp_path: Path) -> None:
    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.0.1"]) as rig:
            tid = await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            period = {"startPeriod": 0, "limit": 10_000.0,
                      "customData": {"vendorId": V2X_VENDOR_ID, "dischargeLimit": -6_000.0, "setpoint": -4_000.0,
                                     "operationMode": "CentralSetpoint"}}
            answer = await rig.call("SetChargingProfile", {"evseId": 1, "chargingProfile": tx_profile(tid, [period])})
            assert answer["status"] == "Accepted"
            changed = await next_event(rig.events, events.ChargingScheduleChanged)
            first = changed.schedule.periods[0]
            assert (first.limit, first.discharge_limit, first.setpoint) == (10_000.0, -6_000.0, -4_000.0)
            bad = {**period, "customData": {"vendorId": V2X_VENDOR_ID, "dischargeLimit": 6_000.0}}  # > 0: invalid in 2.1
            answer = await rig.call("SetChargingProfile", {"evseId": 1, "chargingProfile": tx_profile(tid, [bad], pid=2, stack=2)})
            assert answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == "InvalidValue"

    run(body())


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
def test_discharge_for_an_ev_without_bpt_is_rejected(tmp_path: Path, version: str) -> None:
    async def body() -> None:
        async with Rig(tmp_path, [VERSIONS[version]]) as rig:
            tid = await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, PLAIN_NEEDS)
            periods = [{"startPeriod": 0, "limit": 11_000.0}, {"startPeriod": 60, "limit": -7_000.0}]
            answer = await rig.call("SetChargingProfile", {"evseId": 1, "chargingProfile": tx_profile(tid, periods)})
            assert answer == {"status": "Rejected", "statusInfo": {"reasonCode": "NoBidirectional"}}
            # A TxDefaultProfile set before the EV came is kept, but gives this EV no discharge.
            default = {**tx_profile(tid, periods, pid=5, stack=0), "chargingProfilePurpose": "TxDefaultProfile"}
            del default["transactionId"]
            answer = await rig.call("SetChargingProfile", {"evseId": 0, "chargingProfile": default})
            assert answer["status"] == "Accepted"
            changed = await next_event(rig.events, events.ChargingScheduleChanged)
            assert [p.limit for p in changed.schedule.periods[:2]] == [11_000.0, 0.0]
            assert not changed.schedule.discharges

    run(body())


# --------------------------------------------------------------------------- dynamic control (2.1)


def test_dynamic_setpoints_reach_the_service_at_once(tmp_path: Path) -> None:
    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.1"]) as rig:
            tid = await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            period = {"startPeriod": 0, "limit": 40_000.0, "dischargeLimit": -11_000.0, "setpoint": 5_000.0,
                      "operationMode": "CentralSetpoint"}
            profile = tx_profile(tid, [period], pid=77, kind="Dynamic")
            assert (await rig.call("SetChargingProfile", {"evseId": 1, "chargingProfile": profile}))["status"] == "Accepted"
            for setpoint in (-6_000.0, 2_500.0, -11_000.0):
                answer = await rig.call("UpdateDynamicSchedule", {"chargingProfileId": 77, "scheduleUpdate": {"setpoint": setpoint}})
                assert answer["status"] == "Accepted"
                update = await next_event(rig.events, events.DynamicScheduleUpdated)
                assert (update.evse_id, update.charging_profile_id, update.transaction_id) == (1, 77, tid)
                assert update.period.setpoint == setpoint and update.source == "UpdateDynamicSchedule"
            # beyond the EV's 11 kW discharge: refused, nothing reaches the service, the last one stays
            answer = await rig.call("UpdateDynamicSchedule", {"chargingProfileId": 77, "scheduleUpdate": {"setpoint": -20_000.0}})
            assert answer == {"status": "Rejected", "statusInfo": {"reasonCode": "SetpointOutOfRange"}}
            assert rig.station.charging_schedule(1).periods[0].setpoint == -11_000.0
            answer = await rig.call("UpdateDynamicSchedule", {"chargingProfileId": 999, "scheduleUpdate": {"setpoint": 1.0}})
            assert answer["status"] == "Rejected" and answer["statusInfo"]["reasonCode"] == "UnknownProfile"
            while not rig.events.empty():
                assert not isinstance(rig.events.get_nowait(), events.DynamicScheduleUpdated)

    run(body())


def test_dynamic_profile_is_pulled_every_dyn_update_interval(tmp_path: Path) -> None:
    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.1"]) as rig:
            setpoints = iter([-3_000.0, 4_000.0, -1_000.0, 0.0, 0.0, 0.0])
            rig.csms.responses["PullDynamicScheduleUpdate"] = lambda payload, station: {
                "status": "Accepted", "scheduleUpdate": {"setpoint": next(setpoints)}}
            tid = await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            period = {"startPeriod": 0, "limit": 40_000.0, "dischargeLimit": -11_000.0, "setpoint": 0.0,
                      "operationMode": "CentralSetpoint"}
            profile = tx_profile(tid, [period], pid=78, kind="Dynamic", dynUpdateInterval=1)
            assert (await rig.call("SetChargingProfile", {"evseId": 1, "chargingProfile": profile}))["status"] == "Accepted"
            first = await next_event(rig.events, events.DynamicScheduleUpdated, timeout=5)
            second = await next_event(rig.events, events.DynamicScheduleUpdated, timeout=5)
            assert (first.period.setpoint, second.period.setpoint) == (-3_000.0, 4_000.0)
            assert first.source == "PullDynamicScheduleUpdate"
            assert all(f.payload == {"chargingProfileId": 78} for f in rig.csms.received("PullDynamicScheduleUpdate"))

    run(body(), timeout=30)


def test_21_only_actions_are_not_implemented_on_201(tmp_path: Path) -> None:
    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.0.1"]) as rig:
            with pytest.raises(CsmsCallError) as error:
                await rig.call("UpdateDynamicSchedule", {"chargingProfileId": 1, "scheduleUpdate": {"setpoint": 1.0}},
                               validate=False)
            assert error.value.code == "NotImplemented"

    run(body())


def test_allowed_energy_transfer_from_the_csms(tmp_path: Path) -> None:
    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.1"]) as rig:
            tid = await rig.transaction()
            answer = await rig.call("NotifyAllowedEnergyTransfer", {"transactionId": tid, "allowedEnergyTransfer": ["DC"]})
            assert answer["status"] == "Accepted"
            event = await next_event(rig.events, events.AllowedEnergyTransferChanged)
            assert event == events.AllowedEnergyTransferChanged(tid, 1, ("DC",))
            assert rig.station.allowed_energy_transfer(tid) == ("DC",)
            answer = await rig.call("NotifyAllowedEnergyTransfer", {"transactionId": "nope", "allowedEnergyTransfer": ["DC"]})
            assert answer["status"] == "Rejected"

    run(body())


# --------------------------------------------------------------------------- connection drop mid-discharge


def test_connection_drop_mid_discharge_keeps_the_last_valid_schedule_then_charge_only(tmp_path: Path) -> None:
    """What the bridge needs for its fallback: ConnectionChanged, the last valid schedule while
    offline, and on 2.1 the profile's maxOfflineDuration ending it (then the next valid
    profile, here none: charge-only at the EVSE/EV limits). Time moves by the station's clock."""
    offset = [0.0]

    def clock() -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=offset[0])

    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.1"], clock=clock) as rig:
            tid = await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            periods = [{"startPeriod": 0, "limit": -8_000.0}]
            profile = tx_profile(tid, periods, maxOfflineDuration=300)
            assert (await rig.call("SetChargingProfile", {"evseId": 1, "chargingProfile": profile}))["status"] == "Accepted"
            assert rig.station.charging_schedule(1).periods[0].limit == -8_000.0
            await rig.csms.down()
            lost = await next_event(rig.events, events.ConnectionChanged, lambda e: not e.online)
            assert lost.online is False and rig.station.ocpp_version is None
            offset[0] += 200  # within maxOfflineDuration: the last valid schedule
            assert rig.station.charging_schedule(1).periods[0].limit == -8_000.0
            offset[0] += 200  # past it: the profile no longer counts
            fallback = rig.station.charging_schedule(1)
            assert not fallback.discharges and fallback.periods[0].limit == 50_000.0  # the EV's maximum
            assert rig.station.charging_schedule(1).charge_only() == fallback
            # Energy accounting still adds up: the events queued offline are sent on return.
            await rig.station.update_transaction(tid, trigger_reason="MeterValuePeriodic", meter_value=[
                bidirectional_meter_value(timestamp=clock(), energy_import_wh=100.0, energy_export_wh=900.0, power_w=-8000.0)])
            await rig.station.end_transaction(tid, trigger_reason="EVCommunicationLost", stopped_reason="EVDisconnected")
            await rig.csms.up()
            await rig.csms.wait_for(lambda e: any(f.payload["eventType"] == "Ended" for f in e.received("TransactionEvent")), 15)
            seqs = [f.payload["seqNo"] for f in rig.csms.received("TransactionEvent")]
            assert sorted(set(seqs)) == list(range(3))

    run(body(), timeout=40)


def test_schedule_without_max_offline_duration_stays_while_offline(tmp_path: Path) -> None:
    offset = [0.0]

    def clock() -> datetime:
        return datetime.now(timezone.utc) + timedelta(seconds=offset[0])

    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.0.1"], clock=clock) as rig:
            tid = await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            assert (await rig.call("SetChargingProfile", {"evseId": 1, "chargingProfile": tx_profile(
                tid, [{"startPeriod": 0, "limit": -8_000.0}])}))["status"] == "Accepted"
            await rig.csms.cut(IDENTITY)
            await next_event(rig.events, events.ConnectionChanged, lambda e: not e.online)
            offset[0] += 3600
            assert rig.station.charging_schedule(1).periods[0].limit == -8_000.0  # last valid schedule
            assert rig.station.charging_schedule(1).charge_only().periods[0].limit == 0.0  # the bridge's fallback

    run(body())


# --------------------------------------------------------------------------- metering and the EV's schedule


@pytest.mark.parametrize("version", ["2.1", "2.0.1"])
def test_energy_both_ways_and_the_evs_schedule_with_discharge(tmp_path: Path, version: str) -> None:
    async def body() -> None:
        async with Rig(tmp_path, [VERSIONS[version]]) as rig:
            now = datetime.now(timezone.utc)
            reading = bidirectional_meter_value(timestamp=now, energy_import_wh=5_000.0, energy_export_wh=1_250.0, power_w=-6_600.0)
            tid = await rig.station.start_transaction(1, 1, trigger_reason="CablePluggedIn", charging_state="EVConnected",
                                                      meter_value=[reading])
            await rig.station.update_transaction(tid, trigger_reason="ChargingRateChanged", charging_state="Charging",
                                                 meter_value=[reading], operation_mode="CentralSetpoint")
            await rig.station.meter_values(1, [reading])
            plan = [SchedulePeriod(0, 11_000.0), SchedulePeriod(600, -7_000.0), SchedulePeriod(1200, 11_000.0)]
            await rig.station.notify_ev_charging_schedule(1, now, ev_schedule_payload(plan, start=now))
            await rig.station.end_transaction(tid, trigger_reason="EVDeparted", stopped_reason="EVDisconnected",
                                              meter_value=[reading])
            await rig.csms.wait_for(lambda e: len(e.received("TransactionEvent")) == 3 and e.received("MeterValues")
                                    and e.received("NotifyEVChargingSchedule"))
            for frame in rig.csms.received("TransactionEvent") + rig.csms.received("MeterValues"):
                for value in frame.payload["meterValue"]:
                    got = {s["measurand"]: s["value"] for s in value["sampledValue"]}
                    assert got["Energy.Active.Import.Register"] == 5_000.0
                    assert got["Energy.Active.Export.Register"] == 1_250.0
                    assert got["Power.Active.Export"] == 6_600.0
            updated = rig.csms.received("TransactionEvent")[1].payload["transactionInfo"]
            (schedule,) = rig.csms.received("NotifyEVChargingSchedule")
            limits = [p["limit"] for p in schedule.payload["chargingSchedule"]["chargingSchedulePeriod"]]
            assert limits == [11_000.0, -7_000.0, 11_000.0]
            discharge = schedule.payload["chargingSchedule"]["chargingSchedulePeriod"][1]
            if version == "2.1":
                assert updated["operationMode"] == "CentralSetpoint" and discharge["dischargeLimit"] == -7_000.0
            else:
                assert updated["customData"] == {"vendorId": V2X_VENDOR_ID, "operationMode": "CentralSetpoint"}
                assert discharge["customData"] == {"vendorId": V2X_VENDOR_ID, "dischargeLimit": -7_000.0}

    run(body())


def test_live_call_too_long_for_the_connections_version(tmp_path: Path) -> None:
    """Get15118EVCertificate exiRequest: 5600 characters in 2.0.1, 11000 in 2.1; the live
    connection's version decides."""

    async def body() -> None:
        from pnc_bridge.ocpp import OutgoingInvalid

        for version, ok in (("ocpp2.1", True), ("ocpp2.0.1", False)):
            async with Rig(tmp_path / version, [version]) as rig:
                call = rig.station.get_15118_ev_certificate(iso15118_schema_version="urn:iso:std:iso:15118:-20:CommonMessages",
                                                            action="Install", exi_request="A" * 8000)
                if ok:
                    assert (await call).status.value == "Accepted"
                else:
                    with pytest.raises(OutgoingInvalid, match="2.0.1|exiRequest"):
                        await call

    run(body())


# --------------------------------------------------------------------------- scripted scenarios


@pytest.mark.parametrize("name, changes_expected", [("v2x_ocpp21.toml", 3), ("v2x_ocpp201.toml", 2)])
def test_v2x_scenarios(tmp_path: Path, name: str, changes_expected: int) -> None:
    scenario = load_scenario(REPO / "hil" / "csms" / "scenarios" / name)
    versions = [f"ocpp{v}" for v in scenario["csms"]["ocpp"]]

    async def body() -> None:
        async with Rig(tmp_path, versions) as rig:
            runner = asyncio.ensure_future(run_scenario(rig.csms, scenario["step"], IDENTITY))
            tid = await rig.transaction()
            await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            seen: list[Any] = []
            ended = False
            while not runner.done() or not rig.events.empty():
                try:
                    event = await asyncio.wait_for(rig.events.get(), 0.2)
                except asyncio.TimeoutError:
                    # The scenario's last step waits for the end, after its schedule changes.
                    if not ended and len([e for e in seen if isinstance(e, events.ChargingScheduleChanged)]) >= changes_expected:
                        ended = True
                        await rig.station.end_transaction(tid, trigger_reason="EVDeparted", stopped_reason="EVDisconnected")
                    continue
                seen.append(event)
            results = runner.result()
            assert all(r.ok for r in results), [(r.index, r.verb, r.detail) for r in results if not r.ok]
            changes = [e for e in seen if isinstance(e, events.ChargingScheduleChanged) and e.reason != "TransactionEnded"]
            assert len(changes) == changes_expected
            first = changes[0].schedule
            assert [(p.limit > 0, p.discharges) for p in first.periods[:3]] == [(True, False), (False, True), (True, False)]
            # the last change before the end discharges at once
            assert changes[-1].schedule.periods[0].discharges

    run(body(), timeout=60)


def test_station_offline_needs_fail_fast_but_are_remembered(tmp_path: Path) -> None:
    async def body() -> None:
        async with Rig(tmp_path, ["ocpp2.1"]) as rig:
            await rig.csms.down()
            await next_event(rig.events, events.ConnectionChanged, lambda e: not e.online)
            with pytest.raises(CallFailed) as failed:
                await rig.station.notify_ev_charging_needs(1, BPT_NEEDS)
            assert failed.value.reason == "Offline"
            assert rig.station.ev_needs(1) == BPT_NEEDS
            await rig.csms.up()

    run(body())
