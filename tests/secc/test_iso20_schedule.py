"""The protocol-neutral schedule -> ISO 15118-20 ScheduleTuple mapping (pnc_bridge/secc/schedule.py),
and the charge-loop control rules (pnc_bridge/secc/iso20/_control.py), as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pnc_bridge import exi
from pnc_bridge.messages import iso20 as m
from pnc_bridge.secc import EvseStatus
from pnc_bridge.secc.iso20 import EvLimits, dc_scheduled_target, steer, window
from pnc_bridge.secc.schedule import (
    ChargingSchedule,
    LimitUnit,
    SchedulePeriod,
    Tariff,
    TariffEntry,
    from_rational,
    has_discharge,
    period_at,
    rational_number,
    to_iso20_schedule_tuples,
)

ANCHOR = 1_700_000_000


def tuples(schedules, *, bpt=True, max_points=None, departure=None, fallback=22000.0):
    return to_iso20_schedule_tuples(schedules, max_supporting_points=max_points, departure_time=departure, bpt=bpt, voltage_v=400.0,
                                    phases=1, fallback_charge_w=fallback, fallback_discharge_w=0.0, time_anchor=ANCHOR)


def entries(schedule) -> list[tuple[int, float]]:
    return [(e.duration, from_rational(e.power)) for e in schedule.power_schedule.power_schedule_entries.power_schedule_entry]


def encodable(tups) -> None:
    res = m.ScheduleExchangeRes(header=m.MessageHeader(session_id=bytes(8), time_stamp=ANCHOR), response_code=m.ResponseCode.OK,
                                evse_processing=m.Processing.Finished,
                                scheduled_se_res_control_mode=m.Scheduled_SEResControlMode(schedule_tuple=tups))
    assert exi.decode("iso20-common", exi.encode("iso20-common", res)) == res


def test_charge_discharge_charge_in_both_conventions():
    v21 = ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 11000), SchedulePeriod(600, 0, discharge_limit=-7000),
                                            SchedulePeriod(1200, 11000)))
    v201 = ChargingSchedule(2, LimitUnit.W, (SchedulePeriod(0, 11000), SchedulePeriod(600, -7000), SchedulePeriod(1200, 11000)))
    for tup in tuples([v21, v201], departure=3600):
        assert entries(tup.charging_schedule) == [(600, 11000), (600, 0), (2400, 11000)]
        assert entries(tup.discharging_schedule) == [(600, 0), (600, -7000), (2400, 0)]
        assert tup.charging_schedule.power_schedule.time_anchor == ANCHOR
    encodable(tuples([v21, v201]))


def test_without_bpt_there_is_no_discharging_schedule_and_discharge_periods_carry_no_power():
    s = ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 11000), SchedulePeriod(600, -7000)))
    (tup,) = tuples([s], bpt=False, departure=1200)
    assert tup.discharging_schedule is None and entries(tup.charging_schedule) == [(600, 11000), (600, 0)]
    assert has_discharge(s) and not has_discharge(ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 5),)))


def test_no_schedule_gives_the_evse_limit_and_no_discharge():
    (tup,) = tuples([])
    assert entries(tup.charging_schedule) == [(86400, 22000)] and entries(tup.discharging_schedule) == [(86400, 0)]


def test_a_schedule_that_starts_late_or_ends_early_is_completed_with_the_evse_limit_and_no_discharge():
    s = ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(300, 5000, discharge_limit=-2000),), duration=900)
    (tup,) = tuples([s], departure=1800)
    assert entries(tup.charging_schedule) == [(300, 22000), (600, 5000), (900, 22000)]
    assert entries(tup.discharging_schedule) == [(300, 0), (600, -2000), (900, 0)]


def test_current_limits_become_power_at_the_given_voltage():
    s = ChargingSchedule(1, LimitUnit.A, (SchedulePeriod(0, 100, discharge_limit=-25),))
    (tup,) = tuples([s], departure=60)
    assert entries(tup.charging_schedule) == [(60, 40000)] and entries(tup.discharging_schedule) == [(60, -10000)]


def test_three_tuples_at_most_with_their_ids_or_renumbered():
    ids = [t.schedule_tuple_id for t in tuples([ChargingSchedule(i, LimitUnit.W, (SchedulePeriod(0, 1000),)) for i in (42, 7, 48, 9)])]
    assert ids == [42, 7, 48]
    dup = [ChargingSchedule(5, LimitUnit.W, (SchedulePeriod(0, 1000),)), ChargingSchedule(5, LimitUnit.W, (SchedulePeriod(0, 2000),))]
    assert [t.schedule_tuple_id for t in tuples(dup)] == [1, 2]


def test_price_levels_become_a_price_level_schedule():
    tariff = Tariff(3, (TariffEntry(0, price_level=2), TariffEntry(1800, price_level=0)), description="night")
    (tup,) = tuples([ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 11000),), tariff=tariff)], departure=3600)
    levels = tup.charging_schedule.price_level_schedule
    assert levels.price_schedule_id == 3 and levels.price_schedule_description == "night" and levels.number_of_price_levels == 3
    assert [(e.duration, e.price_level) for e in levels.price_level_schedule_entries.price_level_schedule_entry] == [(1800, 2), (1800, 0)]
    encodable([tup])


def test_rational_numbers_round_limits_toward_zero_and_measurements_to_nearest():
    assert from_rational(rational_number(-7000.7, toward_zero=True)) == -7000
    assert from_rational(rational_number(150_999.0, toward_zero=True)) == 150_990
    assert from_rational(rational_number(0.25)) == 0.25
    r = rational_number(1e30)
    assert r.value == 32767  # clamped, never wraps


def test_period_at():
    s = ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(100, 1), SchedulePeriod(0, 2)), duration=200)
    assert [getattr(period_at(s, t), "limit", None) for t in (0, 99, 100, 199, 200)] == [2, 2, 1, 1, None]


# --------------------------------------------------------------------------- #
# Properties of the mapping                                                    #
# --------------------------------------------------------------------------- #

periods_st = st.lists(
    st.tuples(st.integers(0, 200_000), st.floats(-50_000, 400_000, allow_nan=False), st.one_of(st.none(), st.floats(-60_000, 0))),
    min_size=0, max_size=40, unique_by=lambda p: p[0],
)


def _expected_at(periods, t, duration, fallback):
    """(charge limit, discharge magnitude) the CSMS allows at ``t`` (the EVSE's limit and no
    discharge outside the schedule)."""
    if duration is not None and t >= duration:
        return fallback, 0.0
    current = (fallback, 0.0)
    for start, limit, discharge in sorted(periods):
        if start <= t:
            p = SchedulePeriod(start, limit, discharge_limit=discharge)
            current = (p.charge_limit, p.discharge_magnitude)
    return current


@settings(max_examples=300, deadline=None)
@given(periods=periods_st, max_points=st.one_of(st.none(), st.integers(12, 60)), departure=st.one_of(st.none(), st.integers(1, 300_000)),
       duration=st.one_of(st.none(), st.integers(1, 300_000)), bpt=st.booleans())
def test_the_mapping_never_offers_more_than_the_csms_allows_either_way(periods, max_points, departure, duration, bpt):
    fallback = 22000.0
    schedule = ChargingSchedule(1, LimitUnit.W, tuple(SchedulePeriod(s, w, discharge_limit=d) for s, w, d in periods), duration=duration)
    (tup,) = tuples([schedule], bpt=bpt, max_points=max_points, departure=departure, fallback=fallback)
    charge = entries(tup.charging_schedule)
    discharge = entries(tup.discharging_schedule) if bpt else []
    horizon = departure or 86400
    assert len(charge) + len(discharge) <= (max_points or 2048) and len(charge) <= 1024
    assert sum(d for d, _ in charge) == horizon
    if bpt:
        assert [d for d, _ in discharge] == [d for d, _ in charge]
        assert all(p <= 0 for _, p in discharge)
    starts, t = [], 0
    for d, _ in charge:
        starts.append(t)
        t += d
    checkpoints = set(starts) | {s for s, _, _ in periods if s < horizon} | ({duration} if duration and duration < horizon else set())
    for c in checkpoints:
        i = max(i for i, s in enumerate(starts) if s <= c)
        allowed_charge, allowed_discharge = _expected_at(periods, c, duration, fallback)
        assert charge[i][1] <= allowed_charge + 1e-6
        if bpt:
            assert -discharge[i][1] <= allowed_discharge + 1e-6


@settings(max_examples=100, deadline=None)
@given(periods=periods_st, max_points=st.one_of(st.none(), st.integers(12, 1024)), departure=st.one_of(st.none(), st.integers(1, 300_000)))
def test_the_mapping_always_fits_the_xsd(periods, max_points, departure):
    schedule = ChargingSchedule(1, LimitUnit.W, tuple(SchedulePeriod(s, w, discharge_limit=d) for s, w, d in periods))
    encodable(tuples([schedule], max_points=max_points, departure=departure))


# --------------------------------------------------------------------------- #
# Control                                                                      #
# --------------------------------------------------------------------------- #

EVSE = EvseStatus(max_power_w=50000, max_current_a=125, max_voltage_v=500, max_discharge_power_w=30000, max_discharge_current_a=75)
EV = EvLimits(max_charge_w=40000, max_discharge_w=20000, max_charge_a=100, max_discharge_a=60)
V2G = ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 11000), SchedulePeriod(100, 0, discharge_limit=-7000, setpoint=-5000)))


def _win(t, *, bpt=True, ordered=False, ev=EV, schedule=V2G):
    period = period_at(schedule, t) if schedule else None
    return window(ev, EVSE, dc=True, bpt=bpt, phases=1, voltage_v=400, schedule=schedule, period=period, discharge_ordered=ordered)


def test_the_window_takes_the_lowest_limit_each_way():
    assert (_win(0).lo_w, _win(0).hi_w) == (0.0, 11000)  # charging period: no discharge permission
    assert (_win(150).lo_w, _win(150).hi_w) == (-7000, 0.0)
    assert (_win(0, ordered=True).lo_w) == -20000  # a pushed setpoint: the EV's 20 kW bounds it
    assert (_win(150, bpt=False).lo_w) == 0.0
    assert _win(0, schedule=None).lo_w == 0.0 and _win(0, schedule=None).hi_w == 40000  # no schedule: charge only
    dc_current = window(EvLimits(max_discharge_a=10), EVSE, dc=True, bpt=True, phases=1, voltage_v=400, schedule=None, period=None,
                        discharge_ordered=True)
    assert dc_current.lo_w == -4000  # 10 A at 400 V


def test_steering_prefers_a_pushed_setpoint_then_the_periods_setpoint_then_its_limit():
    assert steer(_win(150, ordered=True), setpoint_w=-3000, schedule=V2G, period=period_at(V2G, 150), voltage_v=400, phases=1).target_w == -3000
    assert steer(_win(150), setpoint_w=None, schedule=V2G, period=period_at(V2G, 150), voltage_v=400, phases=1).source == "schedule"
    plain = steer(_win(0), setpoint_w=None, schedule=V2G, period=period_at(V2G, 0), voltage_v=400, phases=1)
    assert (plain.target_w, plain.source, plain.clamped) == (11000, "limit", False)
    over = steer(_win(150, ordered=True), setpoint_w=-9000, schedule=V2G, period=period_at(V2G, 150), voltage_v=400, phases=1)
    assert over.target_w == -7000 and over.clamped  # the period's dischargeLimit bounds the setpoint


@pytest.mark.parametrize("asked,bpt,expected,current_limit,power_limit", [
    (50.0, True, 50.0, False, False),
    (200.0, True, 100.0, True, True),  # EVSE 125 A, then the EV's 100 A (40 kW at 400 V)
    (-30.0, True, -30.0, False, False),
    (-90.0, True, -50.0, True, True),  # EVSE 75 A, then the EV's 20 kW
    (-10.0, False, 0.0, True, False),
])
def test_a_scheduled_dc_target_is_held_within_the_limits(asked, bpt, expected, current_limit, power_limit):
    win = window(EV, EVSE, dc=True, bpt=bpt, phases=1, voltage_v=400, schedule=None, period=None, discharge_ordered=True)
    held = dc_scheduled_target(asked, 400, win, EVSE, bpt=bpt)
    assert (held.current_a, held.current_limit, held.power_limit) == (expected, current_limit, power_limit)
