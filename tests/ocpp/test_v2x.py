"""V2X without a network: the 2.0.1 <-> 2.1 mapping, the EV's needs, the composite schedule
with charge and discharge, the profile checks, offline validity and the EVSE battery model.

Payloads are judged by the ``ocpp`` package's own validator (``ocpp.messages``) with the
official schemas of each version, not by pnc_bridge's schema code.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult, _validate_payload

from pnc_bridge.evse import BidirectionalEvseDriver, EvBattery, EvseDriver, EvseLimits, EvseSimulator
from pnc_bridge.ocpp import (
    V2X_VENDOR_ID,
    ChargingSchedule,
    ControlMode,
    EnergyTransferMode,
    EvChargingNeeds,
    MobilityNeedsMode,
    OperationMode,
    SchedulePeriod,
    OcppVersion,
    VersionMismatch,
    bidirectional_meter_value,
    ev_schedule_payload,
    lift,
    to_version,
    v21,
)
from pnc_bridge.ocpp._model import OcppModel
from pnc_bridge.ocpp._smart_charging import ProfileContext, StoredProfile, check_profile, composite_schedule
from pnc_bridge.ocpp._v2x import needs_payload, schedule_from_composite
from pnc_bridge.ocpp._versions import schema

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)


def json_payload(model_or_dict: Any) -> Any:
    import json

    from pnc_bridge.ocpp._model import format_datetime

    def default(o: Any) -> Any:
        if isinstance(o, datetime):
            return format_datetime(o)
        raise TypeError(o)

    data = model_or_dict.to_payload() if isinstance(model_or_dict, OcppModel) else model_or_dict
    return json.loads(json.dumps(data, default=default))


def valid(action: str, payload: dict[str, Any], version: str, kind: str = "Request") -> str | None:
    """The ``ocpp`` package's verdict: None when valid, else the error."""
    message = Call("1", action, payload) if kind == "Request" else CallResult("1", payload, action)
    try:
        _validate_payload(message, version)
    except OCPPError as exc:
        return f"{exc.code}: {exc.description}"
    return None


# --------------------------------------------------------------------------- needs, both versions

modes = st.sampled_from(list(EnergyTransferMode))
amount = st.one_of(st.none(), st.floats(min_value=0, max_value=500_000, allow_nan=False).map(lambda x: round(x, 2)))
soc = st.one_of(st.none(), st.integers(0, 100))


@st.composite
def needs_strategy(draw: Any) -> EvChargingNeeds:
    return EvChargingNeeds(
        energy_transfer_mode=draw(modes),
        available_energy_transfer=tuple(draw(st.lists(modes, max_size=4, unique=True))),
        control_mode=draw(st.one_of(st.none(), st.sampled_from(list(ControlMode)))),
        mobility_needs_mode=draw(st.one_of(st.none(), st.sampled_from(list(MobilityNeedsMode)))),
        departure_time=draw(st.one_of(st.none(), st.integers(0, 86_400 * 3))),
        max_entries=draw(st.one_of(st.none(), st.integers(1, 1024))),
        energy_request_wh=draw(amount),
        energy_capacity_wh=draw(amount),
        min_energy_request_wh=draw(amount),
        max_energy_request_wh=draw(amount),
        min_v2x_energy_request_wh=draw(amount),
        max_v2x_energy_request_wh=draw(amount),
        soc=draw(soc),
        target_soc=draw(soc),
        full_soc=draw(soc),
        bulk_soc=draw(soc),
        max_current_a=draw(amount),
        min_current_a=draw(amount),
        max_power_w=draw(amount),
        min_power_w=draw(amount),
        max_voltage_v=draw(amount),
        min_voltage_v=draw(amount),
        max_discharge_power_w=draw(amount),
        min_discharge_power_w=draw(amount),
        max_discharge_current_a=draw(amount),
        min_discharge_current_a=draw(amount),
    )


@settings(max_examples=150, deadline=None)
@given(needs_strategy())
def test_needs_valid_in_both_versions_and_201_customdata_lifts_back(needs: EvChargingNeeds) -> None:
    payload = json_payload(needs_payload(1, needs, now=NOW))
    assert valid("NotifyEVChargingNeeds", payload, "2.1") is None
    if needs.energy_transfer_mode is EnergyTransferMode.WPT:
        with pytest.raises(VersionMismatch, match="WPT"):  # wireless has no 2.0.1 mode at all
            to_version("NotifyEVChargingNeeds", "Request", payload, "ocpp2.0.1")
        return
    down = to_version("NotifyEVChargingNeeds", "Request", payload, "ocpp2.0.1")
    assert valid("NotifyEVChargingNeeds", down, "2.0.1") is None
    charging = down["chargingNeeds"]
    if needs.energy_transfer_mode.bidirectional or needs.control_mode is not None or needs.available_energy_transfer:
        assert charging["customData"]["vendorId"] == V2X_VENDOR_ID
    # Everything 2.1 says survives the trip: the 2.1-only fields come back from customData.
    back = lift(down, schema(OcppVersion.v21, "NotifyEVChargingNeedsRequest"))
    for key in ("v2xChargingParameters", "controlMode", "mobilityNeedsMode", "availableEnergyTransfer", "requestedEnergyTransfer"):
        assert back["chargingNeeds"].get(key) == payload["chargingNeeds"].get(key)
    assert back.get("timestamp") == payload["timestamp"]


def test_bpt_needs_on_201_use_the_21_field_names_under_our_vendor_id() -> None:
    needs = EvChargingNeeds(
        EnergyTransferMode.DC_BPT, (EnergyTransferMode.DC, EnergyTransferMode.DC_BPT), ControlMode.DynamicControl,
        MobilityNeedsMode.EVCC, departure_time=7200, max_current_a=300.0, max_voltage_v=920.0, max_power_w=150_000.0,
        max_discharge_power_w=22_000.0, min_discharge_power_w=500.0, max_discharge_current_a=60.0,
        energy_request_wh=40_000.5, min_v2x_energy_request_wh=-10_000.0, target_soc=80, soc=35,
    )
    down = to_version("NotifyEVChargingNeeds", "Request", json_payload(needs_payload(1, needs, now=NOW)), "ocpp2.0.1")
    charging = down["chargingNeeds"]
    assert charging["requestedEnergyTransfer"] == "DC"  # 2.0.1 has no DC_BPT
    assert charging["dcChargingParameters"] == {
        "evMaxCurrent": 300, "evMaxVoltage": 920, "energyAmount": 40000, "evMaxPower": 150000, "stateOfCharge": 35,
    }
    custom = charging["customData"]
    assert custom["vendorId"] == "org.pnc-bridge.v2x"
    assert custom["requestedEnergyTransfer"] == "DC_BPT"
    assert custom["controlMode"] == "DynamicControl" and custom["mobilityNeedsMode"] == "EVCC"
    v2x = custom["v2xChargingParameters"]
    # The OCPP 2.1 V2XChargingParametersType names, one to one.
    assert set(v2x) <= set(schema(OcppVersion.v21, "NotifyEVChargingNeedsRequest")
                           ["definitions"]["V2XChargingParametersType"]["properties"])
    assert v2x["maxDischargePower"] == 22_000.0 and v2x["minDischargePower"] == 500.0 and v2x["maxDischargeCurrent"] == 60.0
    assert v2x["evMinV2XEnergyRequest"] == -10_000.0 and v2x["targetSoC"] == 80


def test_mapping_refuses_what_201_cannot_say() -> None:
    profile = {"requestId": 1, "chargingLimitSource": "CSO", "evseId": 1, "chargingProfile": [
        {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Dynamic",
         "chargingSchedule": [{"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 1.0}]}]}]}
    with pytest.raises(VersionMismatch, match="Dynamic"):
        to_version("ReportChargingProfiles", "Request", profile, "ocpp2.0.1")
    assert to_version("ReportChargingProfiles", "Request", profile, "ocpp2.1") is profile


def test_ev_schedule_with_discharge_in_both_versions() -> None:
    periods = [SchedulePeriod(0, 11_000.0), SchedulePeriod(600, -7_000.0), SchedulePeriod(1200, 0.0, -5000.0, -3000.0,
                                                                                         OperationMode.CentralSetpoint)]
    payload = json_payload({"evseId": 1, "timeBase": NOW, "chargingSchedule": ev_schedule_payload(periods, start=NOW, duration=1800)})
    assert valid("NotifyEVChargingSchedule", payload, "2.1") is None
    down = to_version("NotifyEVChargingSchedule", "Request", payload, "ocpp2.0.1")
    assert valid("NotifyEVChargingSchedule", down, "2.0.1") is None
    out = down["chargingSchedule"]["chargingSchedulePeriod"]
    assert [p["limit"] for p in out] == [11_000.0, -7_000.0, 0.0]
    assert out[1]["customData"] == {"vendorId": V2X_VENDOR_ID, "dischargeLimit": -7000.0}
    assert out[2]["customData"] == {"vendorId": V2X_VENDOR_ID, "dischargeLimit": -5000.0, "setpoint": -3000.0,
                                    "operationMode": "CentralSetpoint"}


def test_meter_value_carries_energy_both_ways() -> None:
    value = json_payload(bidirectional_meter_value(timestamp=NOW, energy_import_wh=1234.56, energy_export_wh=78.9, power_w=-7000.0))
    measurands = {s["measurand"]: s["value"] for s in value["sampledValue"]}
    assert measurands == {"Energy.Active.Import.Register": 1234.6, "Energy.Active.Export.Register": 78.9,
                          "Power.Active.Import": 0.0, "Power.Active.Export": 7000.0}
    for version in ("2.0.1", "2.1"):
        assert valid("MeterValues", {"evseId": 1, "meterValue": [value]}, version) is None


# --------------------------------------------------------------------------- composite schedule


def tx_profile(periods: list[dict[str, Any]], *, kind: str = "Absolute", stack: int = 1, pid: int = 1,
               purpose: str = "TxProfile", tx: str | None = "tx-1", **extra: Any) -> Any:
    schedule: dict[str, Any] = {"id": 1, "chargingRateUnit": "W", "chargingSchedulePeriod": periods}
    if kind == "Absolute":
        schedule["startSchedule"] = NOW
    profile = {"id": pid, "stackLevel": stack, "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
               "chargingSchedule": [schedule], **extra}
    if tx is not None and purpose == "TxProfile":
        profile["transactionId"] = tx
    return v21.ChargingProfileType.model_validate(profile)


def composite(profiles: list[Any], *, ev: EvChargingNeeds | None = None, discharge: float = 10_000.0,
              offline_for: float | None = None, evse_max: float = 50_000.0) -> ChargingSchedule:
    result = composite_schedule(
        [StoredProfile(1, p) for p in profiles], evse_id=1, start=NOW, duration=3600, unit="W", transaction_id="tx-1",
        transaction_start=NOW, evse_max=evse_max, supply_phases=0, line_voltage=400.0, evse_max_discharge=discharge,
        ev=ev, offline_for=offline_for,
    )
    assert valid("GetCompositeSchedule", json_payload({"status": "Accepted", "schedule": result}), "2.1", "Response") is None
    down = to_version("GetCompositeSchedule", "Response", json_payload({"status": "Accepted", "schedule": result}), "ocpp2.0.1")
    assert valid("GetCompositeSchedule", down, "2.0.1", "Response") is None
    return schedule_from_composite(result)


BPT_EV = EvChargingNeeds(EnergyTransferMode.DC_BPT, max_power_w=40_000.0, max_discharge_power_w=8_000.0)
PLAIN_EV = EvChargingNeeds(EnergyTransferMode.DC, max_power_w=40_000.0)
CHARGE_DISCHARGE_CHARGE_201 = [{"startPeriod": 0, "limit": 11_000.0}, {"startPeriod": 600, "limit": -7_000.0},
                               {"startPeriod": 1200, "limit": 11_000.0}]


def test_charge_discharge_charge_with_the_201_convention() -> None:
    schedule = composite([tx_profile(CHARGE_DISCHARGE_CHARGE_201)], ev=BPT_EV)
    assert [(p.start, p.limit, p.max_discharge) for p in schedule.periods] == [
        (0, 11_000.0, 0.0), (600, -7_000.0, 7_000.0), (1200, 11_000.0, 0.0)]
    assert schedule.period_at(NOW + timedelta(seconds=700)).discharges


def test_21_setpoints_and_discharge_limits_are_bounded_by_evse_and_ev() -> None:
    periods = [{"startPeriod": 0, "limit": 60_000.0, "dischargeLimit": -20_000.0, "setpoint": -15_000.0,
                "operationMode": "CentralSetpoint"}]
    schedule = composite([tx_profile(periods)], ev=BPT_EV, discharge=10_000.0)
    (period,) = schedule.periods
    # charge: EV 40 kW < EVSE 50 kW < profile 60 kW; discharge: EV 8 kW < EVSE 10 kW < profile 20 kW
    assert (period.limit, period.discharge_limit, period.setpoint) == (40_000.0, -8_000.0, -8_000.0)
    assert period.operation_mode is OperationMode.CentralSetpoint


def test_discharge_period_for_an_ev_without_bpt_becomes_no_transfer() -> None:
    schedule = composite([tx_profile(CHARGE_DISCHARGE_CHARGE_201)], ev=PLAIN_EV)
    assert [p.limit for p in schedule.periods] == [11_000.0, 0.0, 11_000.0]
    assert not schedule.discharges


def test_evse_that_cannot_discharge_never_discharges() -> None:
    schedule = composite([tx_profile(CHARGE_DISCHARGE_CHARGE_201)], ev=BPT_EV, discharge=0.0)
    assert [p.limit for p in schedule.periods] == [11_000.0, 0.0, 11_000.0]


def test_station_max_profile_caps_charge_not_discharge_and_tx_overrules_default() -> None:
    station_max = tx_profile([{"startPeriod": 0, "limit": 5_000.0}], purpose="ChargingStationMaxProfile", pid=9, stack=0)
    default = tx_profile([{"startPeriod": 0, "limit": -2_000.0}], purpose="TxDefaultProfile", pid=8, stack=0)
    schedule = composite([station_max, default, tx_profile(CHARGE_DISCHARGE_CHARGE_201)], ev=BPT_EV)
    assert [p.limit for p in schedule.periods] == [5_000.0, -7_000.0, 5_000.0]
    only_default = composite([station_max, default], ev=BPT_EV)
    assert [p.limit for p in only_default.periods] == [-2_000.0]


def test_charge_only_fallback_removes_every_discharge() -> None:
    schedule = composite([tx_profile(CHARGE_DISCHARGE_CHARGE_201)], ev=BPT_EV).charge_only()
    assert [(p.start, p.limit) for p in schedule.periods] == [(0, 11_000.0), (600, 0.0), (1200, 11_000.0)]
    assert not schedule.discharges


def test_max_offline_duration_drops_the_profile_after_that_long_offline() -> None:
    profile = tx_profile(CHARGE_DISCHARGE_CHARGE_201, maxOfflineDuration=120)
    assert composite([profile], ev=BPT_EV, offline_for=100).discharges
    fallback = composite([profile], ev=BPT_EV, offline_for=121)
    assert [p.limit for p in fallback.periods] == [40_000.0]  # EV's maximum, no profile, no discharge


# --------------------------------------------------------------------------- profile checks


def ctx(**kw: Any) -> ProfileContext:
    base = dict(
        evse_ids=frozenset({1}), transactions={1: "tx-1"}, supported_units=frozenset({"W", "A"}), max_stack_level=10,
        periods_per_schedule=24, max_profiles=20, dc_evses=frozenset({1}), discharge_evses={1: 10_000.0},
        ev_needs={1: BPT_EV}, evse_max_w={1: 50_000.0}, nominal_voltage={1: 400.0},
    )
    base.update(kw)
    return ProfileContext(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "periods, context, expected",
    [
        (CHARGE_DISCHARGE_CHARGE_201, {}, ("Accepted", None)),
        (CHARGE_DISCHARGE_CHARGE_201, {"ev_needs": {1: PLAIN_EV}}, ("Rejected", "NoBidirectional")),
        (CHARGE_DISCHARGE_CHARGE_201, {"discharge_evses": {}}, ("Rejected", "NoBidirectional")),
        # only permission to discharge: harmless for an EV without BPT, the composite gives it none
        ([{"startPeriod": 0, "limit": 11_000.0, "dischargeLimit": -5_000.0}], {"ev_needs": {1: PLAIN_EV}}, ("Accepted", None)),
        ([{"startPeriod": 0, "setpoint": -9_000.0, "operationMode": "CentralSetpoint"}], {}, ("Rejected", "SetpointOutOfRange")),
        ([{"startPeriod": 0, "setpoint": -8_000.0, "operationMode": "CentralSetpoint"}], {}, ("Accepted", None)),
        ([{"startPeriod": 0, "setpoint": 45_000.0, "operationMode": "CentralSetpoint"}], {}, ("Rejected", "SetpointOutOfRange")),
        ([{"startPeriod": 0, "operationMode": "CentralSetpoint", "limit": 1000.0}], {}, ("Rejected", "InvalidSchedule")),
        ([{"startPeriod": 0, "limit": 1000.0, "operationMode": "LocalFrequency"}], {}, ("Rejected", "InvalidSchedule")),
        ([{"startPeriod": 0, "limit": -1000.0, "operationMode": "ChargingOnly"}], {}, ("Rejected", "InvalidSchedule")),
    ],
)
def test_v2x_profile_checks(periods: list[dict[str, Any]], context: dict[str, Any], expected: tuple[str, str | None]) -> None:
    assert check_profile(1, tx_profile(periods), [], ctx(**context)) == expected


def test_discharge_in_a_station_max_profile_is_refused() -> None:
    profile = tx_profile([{"startPeriod": 0, "limit": -1000.0}], purpose="ChargingStationMaxProfile", kind="Absolute")
    assert check_profile(0, profile, [], ctx()) == ("Rejected", "InvalidSchedule")


def test_dynamic_profile_has_one_period() -> None:
    two = tx_profile([{"startPeriod": 0, "limit": 1000.0}, {"startPeriod": 60, "limit": 2000.0}], kind="Dynamic")
    one = tx_profile([{"startPeriod": 0, "limit": 1000.0, "setpoint": 500.0, "operationMode": "CentralSetpoint"}], kind="Dynamic")
    assert check_profile(1, two, [], ctx()) == ("Rejected", "InvalidSchedule")
    assert check_profile(1, one, [], ctx()) == ("Accepted", None)


# --------------------------------------------------------------------------- EVSE battery model


def test_simulator_battery_discharges_within_both_limits_and_counts_export() -> None:
    clock = [0.0]
    sim = EvseSimulator(1, limits=EvseLimits(200.0, 50_000.0, 500.0, max_discharge_power_w=10_000.0), clock=lambda: clock[0])
    assert isinstance(sim, BidirectionalEvseDriver) and isinstance(sim, EvseDriver)

    async def scenario() -> list[tuple[float, float, float]]:
        battery = EvBattery(capacity_wh=20_000.0, soc=50.0, max_charge_power_w=30_000.0, max_discharge_power_w=8_000.0)
        sim.plug_in(battery)
        sim.ev_ready()
        await sim.set_contactors(True)
        await sim.set_target(400.0, 0.0)
        seen = []
        await sim.set_setpoint(-15_000.0)  # beyond both: the battery's 8 kW wins
        clock[0] += 1800
        reading = await sim.read_meter()
        seen.append((reading.power_w, reading.energy_export_wh, battery.soc))
        await sim.set_discharge_limit(power_w=5_000.0)  # the schedule's dischargeLimit
        clock[0] += 3600 * 2  # empties the battery on the way: 6 kWh left at 5 kW
        reading = await sim.read_meter()
        seen.append((reading.power_w, reading.energy_export_wh, battery.soc))
        await sim.set_setpoint(12_000.0)  # charging again, as the schedule turns
        clock[0] += 1800
        reading = await sim.read_meter()
        seen.append((reading.power_w, reading.energy_import_wh, battery.soc))
        return seen

    (p1, export1, soc1), (p2, export2, soc2), (p3, import3, soc3) = asyncio.run(scenario())
    assert p1 == pytest.approx(-8_000.0) and export1 == pytest.approx(4_000.0) and soc1 == pytest.approx(30.0)
    assert p2 == 0.0 and soc2 == 0.0  # empty: nothing more flows out
    assert export2 > export1
    assert p3 == pytest.approx(12_000.0) and import3 == pytest.approx(6_000.0) and soc3 == pytest.approx(30.0)


def test_simulator_without_battery_model_or_discharge_hardware_never_exports() -> None:
    clock = [0.0]
    sim = EvseSimulator(1, clock=lambda: clock[0])  # default limits: not bidirectional

    async def scenario() -> tuple[float, float]:
        sim.plug_in(EvBattery(50_000.0, 80.0, 50_000.0, 10_000.0))
        sim.ev_ready()
        await sim.set_contactors(True)
        await sim.set_setpoint(-5_000.0)
        await sim.set_limit(power_w=-5_000.0)  # a discharge period given to an old caller
        clock[0] += 600
        reading = await sim.read_meter()
        return reading.power_w, reading.energy_export_wh

    assert asyncio.run(scenario()) == (0.0, 0.0)
