"""Charging-profile checks (K01) and the composite schedule (K 3.4/3.5, K08)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from pnc_bridge.ocpp import v201
from pnc_bridge.ocpp._smart_charging import ProfileContext, StoredProfile, check_profile, composite_schedule

T0 = datetime(2024, 6, 3, 12, 0, tzinfo=timezone.utc)

CTX = ProfileContext(
    evse_ids=frozenset({1, 2}),
    transactions={1: "TX1"},
    supported_units=frozenset({"A", "W"}),
    max_stack_level=5,
    periods_per_schedule=10,
    max_profiles=20,
)


def profile(pid: int, purpose: str, stack: int, periods: list[tuple[int, float]], *, kind: str = "Absolute",
            start: datetime | None = T0, unit: str = "W", tx: str | None = None, recurrency: str | None = None,
            valid_from: datetime | None = None, valid_to: datetime | None = None, duration: int | None = None) -> v201.ChargingProfileType:
    schedule = {
        "id": 1,
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods],
    }
    if start is not None and kind != "Relative":
        schedule["startSchedule"] = start
    if duration is not None:
        schedule["duration"] = duration
    data = {"id": pid, "stackLevel": stack, "chargingProfilePurpose": purpose, "chargingProfileKind": kind,
            "chargingSchedule": [schedule]}
    if tx:
        data["transactionId"] = tx
    if recurrency:
        data["recurrencyKind"] = recurrency
    if valid_from:
        data["validFrom"] = valid_from
    if valid_to:
        data["validTo"] = valid_to
    return v201.ChargingProfileType.model_validate(data)


@pytest.mark.parametrize(
    "evse,p,expected",
    [
        (1, profile(1, "TxDefaultProfile", 0, [(0, 11000)]), ("Accepted", None)),
        (0, profile(1, "ChargingStationMaxProfile", 0, [(0, 50000)]), ("Accepted", None)),
        (1, profile(1, "ChargingStationMaxProfile", 0, [(0, 50000)]), ("Rejected", "InvalidProfile")),
        (0, profile(1, "ChargingStationExternalConstraints", 0, [(0, 1)]), ("Rejected", "InvalidProfile")),  # K01.FR.22
        (9, profile(1, "TxDefaultProfile", 0, [(0, 1)]), ("Rejected", "UnknownEvse")),  # K01.FR.28
        (2, profile(1, "TxProfile", 0, [(0, 1)], tx="TX1"), ("Rejected", "TxNotFound")),  # K01.FR.09
        (1, profile(1, "TxProfile", 0, [(0, 1)], tx="TX9"), ("Rejected", "TxNotFound")),  # K01.FR.33
        (1, profile(1, "TxProfile", 0, [(0, 1)], tx="TX1"), ("Accepted", None)),
        (1, profile(1, "TxDefaultProfile", 6, [(0, 1)]), ("Rejected", "InvalidStackLevel")),
        (1, profile(1, "TxDefaultProfile", 0, [(5, 1)]), ("Rejected", "InvalidSchedule")),  # K01.FR.31
        (1, profile(1, "TxDefaultProfile", 0, [(0, 1), (0, 2)]), ("Rejected", "InvalidSchedule")),  # K01.FR.35
        (1, profile(1, "TxDefaultProfile", 0, [(0, 1)], start=None), ("Rejected", "InvalidSchedule")),  # K01.FR.40
    ],
)
def test_check_profile(evse, p, expected) -> None:
    assert check_profile(evse, p, [], CTX) == expected


def test_a_rate_unit_the_station_does_not_support_is_refused() -> None:
    amps_only = ProfileContext(**{**CTX.__dict__, "supported_units": frozenset({"A"})})
    assert check_profile(1, profile(1, "TxDefaultProfile", 0, [(0, 1)], unit="W"), [], amps_only) == (
        "Rejected", "UnsupportedRateUnit"  # K01.FR.26
    )


def test_duplicates_are_refused_and_the_same_id_replaces() -> None:
    installed = [StoredProfile(0, profile(10, "TxDefaultProfile", 1, [(0, 1)]))]
    # K01.FR.53: TxDefault on an EVSE with the stack level of one on EVSE 0
    assert check_profile(1, profile(11, "TxDefaultProfile", 1, [(0, 1)]), installed, CTX) == ("Rejected", "DuplicateProfile")
    assert check_profile(1, profile(11, "TxDefaultProfile", 2, [(0, 1)]), installed, CTX) == ("Accepted", None)
    assert check_profile(0, profile(10, "TxDefaultProfile", 1, [(0, 7)]), installed, CTX) == ("Accepted", None)  # K01.FR.05


def schedule(profiles, **kw):
    defaults = dict(evse_id=1, start=T0, duration=7200, unit="W", evse_max=150000.0, supply_phases=0, line_voltage=400.0)
    defaults.update(kw)
    return composite_schedule(profiles, **defaults)["chargingSchedulePeriod"]


def test_higher_stack_level_wins_within_a_purpose() -> None:
    base = StoredProfile(1, profile(1, "TxDefaultProfile", 0, [(0, 11000)]))
    peak = StoredProfile(1, profile(2, "TxDefaultProfile", 1, [(0, 6000)], start=T0 + timedelta(minutes=30), duration=1800))
    assert schedule([base, peak]) == [
        {"startPeriod": 0, "limit": 11000.0},
        {"startPeriod": 1800, "limit": 6000.0},
        {"startPeriod": 3600, "limit": 11000.0},
    ]


def test_txprofile_overrules_txdefault_and_the_lowest_purpose_limit_applies() -> None:
    default = StoredProfile(1, profile(1, "TxDefaultProfile", 0, [(0, 20000)]))
    tx = StoredProfile(1, profile(2, "TxProfile", 0, [(0, 40000), (3600, 5000)], tx="TX1"))
    station_max = StoredProfile(0, profile(3, "ChargingStationMaxProfile", 0, [(0, 30000)]))
    periods = schedule([default, tx, station_max], transaction_id="TX1", transaction_start=T0)
    assert periods == [{"startPeriod": 0, "limit": 30000.0}, {"startPeriod": 3600, "limit": 5000.0}]
    # without the transaction the TxProfile does not apply (K08.FR.06)
    assert schedule([default, tx, station_max]) == [{"startPeriod": 0, "limit": 20000.0}]


def test_recurring_daily_profile_and_validity() -> None:
    night = StoredProfile(1, profile(1, "TxDefaultProfile", 0, [(0, 3000), (8 * 3600, 11000)], kind="Recurring",
                                     recurrency="Daily", start=datetime(2024, 1, 1, tzinfo=timezone.utc)))
    periods = schedule([night], start=datetime(2024, 6, 3, 7, 0, tzinfo=timezone.utc), duration=3 * 3600)
    assert periods == [{"startPeriod": 0, "limit": 3000.0}, {"startPeriod": 3600, "limit": 11000.0}]
    expired = StoredProfile(1, profile(2, "TxDefaultProfile", 1, [(0, 1000)], valid_to=T0 + timedelta(minutes=10)))
    assert schedule([expired], duration=1200) == [{"startPeriod": 0, "limit": 1000.0}, {"startPeriod": 600, "limit": 150000.0}]


def test_amperes_and_watts_are_converted_with_phases_and_voltage() -> None:
    amps = StoredProfile(1, profile(1, "TxDefaultProfile", 0, [(0, 16)], unit="A"))
    ac = schedule([amps], supply_phases=3, line_voltage=230.0, evse_max=22000.0, duration=60)
    assert ac == [{"startPeriod": 0, "limit": 11040.0}]  # 16 A x 230 V x 3 phases (K01.FR.49/50)
    in_amps = schedule([amps], supply_phases=3, line_voltage=230.0, evse_max=22000.0, unit="A", duration=60)
    assert in_amps == [{"startPeriod": 0, "limit": 16.0}]
