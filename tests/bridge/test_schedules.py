"""The ISO 15118 <-> OCPP schedule mapping (``pnc_bridge.bridge._schedules``): installed
profiles -> the SECC's schedules, the EV's needs -> NotifyEVChargingNeeds, the EV's profile
-> NotifyEVChargingSchedule. Payloads are checked with the ``ocpp`` package's own schema
validation (the official OCPP 2.0.1 schemas it bundles)."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ocpp.messages import Call, validate_payload

from pnc_bridge.bridge._schedules import ev_charging_schedule, horizon, ocpp_needs, offered_schedules
from pnc_bridge.ocpp import v201 as m
from pnc_bridge.ocpp import v21 as m21
from pnc_bridge.ocpp._smart_charging import StoredProfile
from pnc_bridge.secc.effects import EnergyTransferMode, EvChargingNeeds, ProfileEntry, ReportEvChargingSchedule
from pnc_bridge.secc.schedule import LimitUnit

NOW = dt.datetime(2030, 5, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
TX = "tx-1"


def profile(purpose: str, schedules: list[dict], *, evse: int = 1, level: int = 0, pid: int = 1, **extra) -> StoredProfile:
    payload = {"id": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
               "chargingProfileKind": extra.pop("kind", "Relative" if purpose == "TxProfile" else "Absolute"),
               "chargingSchedule": schedules, **extra}
    if purpose == "TxProfile":
        payload.setdefault("transactionId", TX)
    return StoredProfile(evse, m.ChargingProfileType.model_validate(payload))


def schedule(sid: int, periods: list[tuple[int, float]], unit: str = "W", **extra) -> dict:
    return {"id": sid, "chargingRateUnit": unit,
            "chargingSchedulePeriod": [{"startPeriod": s, "limit": v} for s, v in periods], **extra}


def offered(profiles, **kw):
    args = dict(evse_id=1, now=NOW, duration=86400, transaction_id=TX, transaction_start=NOW, evse_max_w=150000.0,
                supply_phases=0, voltage=400.0)
    return offered_schedules(profiles, **{**args, **kw})


def test_every_chargingschedule_of_the_txprofile_with_its_tariff():
    tariff = {"id": 5, "numEPriceLevels": 2, "salesTariffEntry": [
        {"relativeTimeInterval": {"start": 0}, "ePriceLevel": 2,
         "consumptionCost": [{"startValue": 0, "cost": [{"costKind": "CarbonDioxideEmission", "amount": 300}]}]},
        {"relativeTimeInterval": {"start": 3600}, "ePriceLevel": 1}]}
    tx = profile("TxProfile", [schedule(1, [(0, 50000), (900, 22000), (2700, 11000)], salesTariff=tariff),
                               schedule(2, [(0, 30000)])])
    first, second = offered([tx])
    assert first.id == 1 and [(p.start, p.limit) for p in first.periods] == [(0, 50000), (900, 22000), (2700, 11000)]
    assert first.tariff.id == 5 and [e.price_level for e in first.tariff.entries] == [2, 1]
    assert first.tariff.entries[0].consumption_costs[0].costs[0].kind == "CarbonDioxideEmission"
    assert second.id == 2 and second.tariff is None and [p.limit for p in second.periods] == [30000]
    assert first.duration == 86400


def test_the_station_limits_cap_every_schedule():
    tx = profile("TxProfile", [schedule(1, [(0, 50000), (600, 10000)])])
    station_max = profile("ChargingStationMaxProfile", [schedule(1, [(0, 40000)], startSchedule=NOW.isoformat())],
                          evse=0, pid=2)
    (only,) = offered([tx, station_max])
    assert [(p.start, p.limit) for p in only.periods] == [(0, 40000), (600, 10000)]
    (hardware,) = offered([tx], evse_max_w=25000.0)
    assert [(p.start, p.limit) for p in hardware.periods] == [(0, 25000), (600, 10000)]


def test_without_a_txprofile_the_composite_schedule():
    default = profile("TxDefaultProfile", [schedule(1, [(0, 32), (3600, 16)], unit="A",
                                                    startSchedule=NOW.isoformat())], kind="Absolute")
    (only,) = offered([default], supply_phases=3, voltage=230.0)
    assert only.unit is LimitUnit.W and [p.start for p in only.periods] == [0, 3600]
    assert only.periods[0].limit == pytest.approx(32 * 230 * 3) and only.periods[1].limit == pytest.approx(16 * 230 * 3)
    (nothing,) = offered([])
    assert [(p.start, p.limit) for p in nothing.periods] == [(0, 150000)]


def test_another_transactions_profile_is_not_offered():
    other = profile("TxProfile", [schedule(1, [(0, 1000)])], transactionId="other")
    (only,) = offered([other])
    assert [p.limit for p in only.periods] == [150000]


def test_a_txprofile_started_earlier_is_offered_from_now():
    tx = profile("TxProfile", [schedule(1, [(0, 50000), (900, 22000)])])
    (only,) = offered([tx], transaction_start=NOW - dt.timedelta(seconds=600))
    assert [(p.start, p.limit) for p in only.periods] == [(0, 50000), (300, 22000)]


def _validate(action: str, payload: dict) -> None:  # the ocpp package's own check
    asyncio.run(validate_payload(Call("1", action, payload), "2.0.1"))


@pytest.mark.parametrize("mode,ocpp_mode", [
    (EnergyTransferMode.DC_extended, "DC"), (EnergyTransferMode.DC_core, "DC"),
    (EnergyTransferMode.AC_three_phase_core, "AC_three_phase"), (EnergyTransferMode.AC_single_phase_core, "AC_single_phase"),
])
def test_needs_for_the_ocpp_client(mode, ocpp_mode):
    needs = EvChargingNeeds(mode, departure_time=7200, max_entries=12, energy_request_wh=40000.7, max_current_a=200.9,
                            min_current_a=6, max_voltage_v=450, max_power_w=150000, soc=40, energy_capacity_wh=75000,
                            full_soc=100, bulk_soc=80)
    mapped = ocpp_needs(needs)
    assert mapped.energy_transfer_mode.value == ocpp_mode and not mapped.bidirectional
    assert (mapped.departure_time, mapped.max_entries, mapped.soc, mapped.bulk_soc) == (7200, 12, 40, 80)
    assert mapped.max_current_a == 200 and mapped.energy_request_wh == 40000  # floored, never rounded up


def test_needs_reach_the_csms_as_valid_ocpp():
    """What the station makes of the mapped needs passes the ``ocpp`` package's 2.0.1 schema."""
    from pnc_bridge.ocpp._v2x import needs_payload
    from pnc_bridge.ocpp._versions import to_version
    from pnc_bridge.ocpp._protocol import OcppVersion

    for mode in (EnergyTransferMode.DC_extended, EnergyTransferMode.AC_three_phase_core):
        needs = ocpp_needs(EvChargingNeeds(mode, energy_request_wh=20000, max_current_a=16.5, min_current_a=6,
                                           max_voltage_v=400, departure_time=3600))
        station_form = m21.NotifyEVChargingNeedsRequest.model_validate(needs_payload(1, needs, now=NOW)).to_payload()
        _validate("NotifyEVChargingNeeds", to_version("NotifyEVChargingNeeds", "Request", station_form, OcppVersion.v201))


def _iso20_needs(service, available, mode=EnergyTransferMode.DC_extended):
    from pnc_bridge.secc.effects import ControlMode, MobilityNeedsMode, V2xChargingParameters

    v2x = V2xChargingParameters(
        min_charge_power=0.0, max_charge_power=50000.0, min_discharge_power=500.0, max_discharge_power=11000.0,
        min_charge_current=0.0, max_charge_current=125.0, min_discharge_current=1.0, max_discharge_current=25.0,
        min_voltage=200.0, max_voltage=450.0, ev_target_energy_request=24000.0, ev_min_energy_request=-12000.0,
        ev_max_energy_request=36000.0, ev_min_v2x_energy_request=-5000.0, ev_max_v2x_energy_request=30000.0,
        target_soc=80)
    return EvChargingNeeds(mode, departure_time=7200, max_entries=24, soc=40, service=service,
                           available_services=available, control_mode=ControlMode.DynamicControl,
                           mobility_needs_mode=MobilityNeedsMode.EVCC_SECC, v2x=v2x)


def test_iso20_needs_field_for_field():
    """ISO 15118-20: the selected service and the EV's V2X parameters map one to one onto the
    OCPP client's needs (discharge limits stay magnitudes), and what the station makes of
    them is valid OCPP 2.1 (native) and 2.0.1 (customData under our vendorId)."""
    from pnc_bridge.ocpp._protocol import OcppVersion
    from pnc_bridge.ocpp._v2x import needs_payload
    from pnc_bridge.ocpp._versions import to_version
    from pnc_bridge.secc.effects import EnergyService

    mapped = ocpp_needs(_iso20_needs(EnergyService.DC_BPT, (EnergyService.DC, EnergyService.DC_BPT)))
    assert mapped.energy_transfer_mode.value == "DC_BPT" and mapped.bidirectional
    assert [m.value for m in mapped.available_energy_transfer] == ["DC", "DC_BPT"]
    assert (mapped.control_mode.value, mapped.mobility_needs_mode.value) == ("DynamicControl", "EVCC_SECC")
    assert (mapped.max_discharge_power_w, mapped.min_discharge_power_w) == (11000.0, 500.0)
    assert (mapped.max_discharge_current_a, mapped.min_discharge_current_a) == (25.0, 1.0)
    assert (mapped.min_v2x_energy_request_wh, mapped.max_v2x_energy_request_wh) == (-5000.0, 30000.0)
    assert (mapped.energy_request_wh, mapped.target_soc, mapped.max_entries) == (24000.0, 80, 24)
    payload = m21.NotifyEVChargingNeedsRequest.model_validate(needs_payload(1, mapped, now=NOW)).to_payload()
    v2x = payload["chargingNeeds"]["v2xChargingParameters"]
    assert v2x["maxDischargePower"] == 11000.0 and v2x["evMinV2XEnergyRequest"] == -5000.0
    asyncio.run(validate_payload(Call("1", "NotifyEVChargingNeeds", payload), "2.1"))
    old = to_version("NotifyEVChargingNeeds", "Request", payload, OcppVersion.v201)
    _validate("NotifyEVChargingNeeds", old)
    assert old["chargingNeeds"]["requestedEnergyTransfer"] == "DC"
    assert old["chargingNeeds"]["customData"]["v2xChargingParameters"] == v2x
    # AC: the phases come from the connector's ISO 15118-2 mode, BPT stays BPT
    ac = ocpp_needs(_iso20_needs(EnergyService.AC, (EnergyService.AC, EnergyService.AC_BPT),
                                 EnergyTransferMode.AC_single_phase_core))
    assert ac.energy_transfer_mode.value == "AC_single_phase"
    assert [m.value for m in ac.available_energy_transfer] == ["AC_single_phase", "AC_BPT"]


def test_offered_schedules_keep_discharge_within_the_evse_and_the_ev():
    """A TxProfile that discharges 20 kW for an EVSE that can take back 8 kW and an EV that may
    give 11 kW: the SECC gets a discharge period of 8 kW; without discharge hardware none."""
    from pnc_bridge.bridge._schedules import charge_only
    from pnc_bridge.secc.effects import EnergyService

    ev = ocpp_needs(_iso20_needs(EnergyService.DC_BPT, (EnergyService.DC_BPT,)))
    tx = profile("TxProfile", [schedule(1, [(0, 20000.0), (600, -20000.0), (1200, 10000.0)])],
                 transactionId="tx-1")
    (bidirectional,) = offered([tx], transaction_id="tx-1", transaction_start=NOW, evse_max_discharge_w=8000.0, ev=ev)
    assert [(p.start, p.charge_limit, p.discharge_magnitude) for p in bidirectional.periods] == [
        (0, 20000.0, 0.0), (600, 0.0, 8000.0), (1200, 10000.0, 0.0)]
    (plain,) = offered([tx], transaction_id="tx-1", transaction_start=NOW, evse_max_discharge_w=0.0, ev=ev)
    assert all(p.discharge_magnitude == 0 for p in plain.periods)
    (fallback,) = charge_only((bidirectional,))
    assert [(p.start, p.charge_limit, p.discharge_magnitude) for p in fallback.periods] == [
        (0, 20000.0, 0.0), (600, 0.0, 0.0), (1200, 10000.0, 0.0)]


def test_horizon():
    assert horizon(None) == 86400
    assert horizon(EvChargingNeeds(EnergyTransferMode.DC_extended, departure_time=3600)) == 3600
    assert horizon(EvChargingNeeds(EnergyTransferMode.DC_extended, departure_time=10**7)) == 86400


def test_the_evs_profile_as_notify_ev_charging_schedule():
    effect = ReportEvChargingSchedule(1, 3, (ProfileEntry(600, 20000.0, 3), ProfileEntry(0, 50000.0), ProfileEntry(600, 21000.0)))
    schedule_ = ev_charging_schedule(effect)
    assert schedule_ == {"id": 3, "chargingRateUnit": "W", "chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": 50000.0}, {"startPeriod": 600, "limit": 21000.0}]}
    request = m.NotifyEVChargingScheduleRequest.model_validate({"evseId": 1, "timeBase": NOW, "chargingSchedule": schedule_})
    _validate("NotifyEVChargingSchedule", request.to_payload())
    assert ev_charging_schedule(ReportEvChargingSchedule(1, 1, ())) is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 86000), st.integers(0, 200000)), min_size=1, max_size=20, unique_by=lambda p: p[0]),
       st.integers(1000, 200000))
def test_never_more_than_the_csms_or_the_evse_allows(periods, evse_max):
    periods = sorted(periods)
    periods[0] = (0, periods[0][1])
    tx = profile("TxProfile", [schedule(1, periods)])
    (only,) = offered([tx], evse_max_w=float(evse_max))

    def csms(t: int) -> float:
        return [v for s, v in periods if s <= t][-1]

    starts = [p.start for p in only.periods]
    assert starts == sorted(set(starts)) and starts[0] == 0
    for p, end in zip(only.periods, starts[1:] + [86400]):
        assert p.limit <= evse_max
        assert all(p.limit <= csms(t) for t in [p.start] + [s for s, _ in periods if p.start < s < end])
