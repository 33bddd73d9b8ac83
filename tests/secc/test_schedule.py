"""The pure schedule mapping (pnc_bridge/secc/schedule.py): every period becomes a
PMaxScheduleEntry, the EV's MaxEntriesSAScheduleTuple and departure time are honoured, and the
EV is never allowed more than the CSMS allowed at any moment."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pnc_bridge import exi
from pnc_bridge.messages import din, iso2
from pnc_bridge.secc.schedule import (
    DEFAULT_HORIZON,
    ChargingSchedule,
    ConsumptionCost,
    Cost,
    LimitUnit,
    SchedulePeriod,
    Tariff,
    TariffEntry,
    physical_value,
    plan_entries,
    to_din_sa_schedule_list,
    to_iso2_sa_schedule_list,
)


def _w(pv) -> float:
    return pv.value * 10.0**pv.multiplier


def _iso2(schedules, **kw):
    args = dict(max_entries=None, departure_time=None, voltage_v=230.0, phases=3, fallback_power_w=22000.0)
    args.update(kw)
    return to_iso2_sa_schedule_list(schedules, **args)


def _encodable(sa_list) -> None:
    """The mapped list fits the XSD: a ChargeParameterDiscoveryRes carrying it encodes."""
    res = iso2.ChargeParameterDiscoveryRes(
        response_code=iso2.ResponseCode.OK, evse_processing=iso2.EVSEProcessing.Finished, sa_schedules=sa_list,
        evse_charge_parameter=iso2.AC_EVSEChargeParameter(
            ac_evse_status=iso2.AC_EVSEStatus(notification_max_delay=0, evse_notification=iso2.EVSENotification.None_, rcd=False),
            evse_nominal_voltage=physical_value(iso2, 230, "V"), evse_max_current=physical_value(iso2, 32, "A")),
    )
    msg = iso2.V2G_Message(header=iso2.MessageHeader(session_id=bytes(8)), body=iso2.Body(body_element=res))
    assert exi.decode("iso2", exi.encode("iso2", msg)) == msg


def test_every_period_is_an_entry():
    periods = tuple(SchedulePeriod(i * 900, 11000 - 1000 * (i % 3)) for i in range(10))
    sa = _iso2([ChargingSchedule(1, LimitUnit.W, periods)])
    entries = sa.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert [e.time_interval.start for e in entries] == [p.start for p in periods]
    assert [_w(e.p_max) for e in entries] == [p.limit for p in periods]
    assert [e.time_interval.duration for e in entries] == [None] * 9 + [DEFAULT_HORIZON - 8100]
    _encodable(sa)


def test_departure_time_is_the_horizon():
    periods = tuple(SchedulePeriod(i * 3600, 7000) for i in range(6))
    sa = _iso2([ChargingSchedule(1, LimitUnit.W, periods)], departure_time=2 * 3600 + 60)
    entries = sa.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert [e.time_interval.start for e in entries] == [0, 3600, 7200]
    assert entries[-1].time_interval.duration == 60


def test_no_departure_time_covers_24_hours():
    sa = _iso2([ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 7000),))])
    (entry,) = sa.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert entry.time_interval.start == 0 and entry.time_interval.duration == 86400


def test_max_entries_folds_the_tail_to_its_lowest_limit():
    limits = [11000, 9000, 10000, 4000, 8000, 6000]
    periods = tuple(SchedulePeriod(i * 600, lim) for i, lim in enumerate(limits))
    sa = _iso2([ChargingSchedule(1, LimitUnit.W, periods)], max_entries=4)
    entries = sa.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert [e.time_interval.start for e in entries] == [0, 600, 1200, 1800]
    assert [_w(e.p_max) for e in entries] == [11000, 9000, 10000, 4000]  # min of 4000, 8000, 6000


def test_max_entries_counts_sales_tariff_entries():
    periods = tuple(SchedulePeriod(i * 600, 11000 - i * 100) for i in range(6))
    tariff = Tariff(5, tuple(TariffEntry(i * 1800, price_level=i) for i in range(4)))
    sa = _iso2([ChargingSchedule(1, LimitUnit.W, periods, tariff=tariff)], max_entries=6)
    t = sa.sa_schedule_tuple[0]
    n_pmax = len(t.p_max_schedule.p_max_schedule_entry)
    n_tariff = len(t.sales_tariff.sales_tariff_entry)
    assert n_pmax + n_tariff <= 6 and n_pmax >= 3 and n_tariff >= 1
    assert t.sales_tariff.sales_tariff_id == 5
    _encodable(sa)


def test_sales_tariff_is_mapped():
    tariff = Tariff(
        3,
        (TariffEntry(0, price_level=1, consumption_costs=(ConsumptionCost(0, (Cost("relativePricePercentage", 100),)),)),
         TariffEntry(3600, price_level=2)),
        description="peak/off-peak",
    )
    sa = _iso2([ChargingSchedule(2, LimitUnit.W, (SchedulePeriod(0, 11000),), tariff=tariff)], departure_time=7200)
    st_ = sa.sa_schedule_tuple[0].sales_tariff
    assert st_.sales_tariff_description == "peak/off-peak" and st_.num_e_price_levels == 2
    assert [e.e_price_level for e in st_.sales_tariff_entry] == [1, 2]
    assert st_.sales_tariff_entry[-1].time_interval.duration == 3600
    assert st_.sales_tariff_entry[0].consumption_cost[0].cost[0].cost_kind is iso2.CostKind.relativePricePercentage
    _encodable(sa)


def test_current_limits_become_power():
    ac = _iso2([ChargingSchedule(1, LimitUnit.A, (SchedulePeriod(0, 16), SchedulePeriod(60, 10, number_phases=1)))])
    entries = ac.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert [_w(e.p_max) for e in entries] == [16 * 230 * 3, 10 * 230]
    dc = _iso2([ChargingSchedule(1, LimitUnit.A, (SchedulePeriod(0, 100),))], voltage_v=400.0, phases=1)
    assert _w(dc.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry[0].p_max) == 40000


def test_a_schedule_that_ends_early_falls_back_to_the_evse_limit():
    sa = _iso2([ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 5000), SchedulePeriod(1800, 3000)), duration=3600)])
    entries = sa.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert [(e.time_interval.start, _w(e.p_max)) for e in entries] == [(0, 5000), (1800, 3000), (3600, 22000)]


def test_a_schedule_starting_late_gets_the_evse_limit_first():
    sa = _iso2([ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(300, 5000),))])
    entries = sa.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert [(e.time_interval.start, _w(e.p_max)) for e in entries] == [(0, 22000), (300, 5000)]


def test_at_most_three_tuples_with_valid_ids():
    schedules = [ChargingSchedule(i, LimitUnit.W, (SchedulePeriod(0, 1000 * i),)) for i in (4, 9, 2, 8)]
    sa = _iso2(schedules)
    assert [t.sa_schedule_tuple_id for t in sa.sa_schedule_tuple] == [4, 9, 2]
    bad = [ChargingSchedule(0, LimitUnit.W, (SchedulePeriod(0, 1),)), ChargingSchedule(0, LimitUnit.W, (SchedulePeriod(0, 2),))]
    assert [t.sa_schedule_tuple_id for t in _iso2(bad).sa_schedule_tuple] == [1, 2]


def test_no_schedule_gives_the_evse_limit():
    (t,) = _iso2([]).sa_schedule_tuple
    assert [_w(e.p_max) for e in t.p_max_schedule.p_max_schedule_entry] == [22000]


def test_limits_are_floored_when_scaled():
    pv = physical_value(iso2, 150_999.0, "W", floor=True)
    assert _w(pv) <= 150_999 and pv.value <= 32767
    assert _w(physical_value(iso2, 400.4, "V")) == pytest.approx(400.4)
    assert _w(physical_value(iso2, 1e12, "W")) == 32767 * 1000  # clamped, never wraps


def test_din_mapping():
    sa = to_din_sa_schedule_list(
        [ChargingSchedule(1, LimitUnit.W, (SchedulePeriod(0, 150000), SchedulePeriod(600, 20000)))],
        voltage_v=400, fallback_power_w=50000,
    )
    entries = sa.sa_schedule_tuple[0].p_max_schedule.p_max_schedule_entry
    assert [(e.time_interval.start, e.p_max) for e in entries] == [(0, 32767), (600, 20000)]
    assert entries[-1].time_interval.duration == 86400 - 600
    res = din.ChargeParameterDiscoveryRes(
        response_code=din.ResponseCode.OK, evse_processing=din.EVSEProcessing.Finished, sa_schedules=sa,
        evse_charge_parameter=din.DC_EVSEChargeParameter(
            dc_evse_status=din.DC_EVSEStatus(evse_status_code=din.DC_EVSEStatusCode.EVSE_Ready, notification_max_delay=0,
                                             evse_notification=din.EVSENotification.None_),
            evse_maximum_current_limit=physical_value(din, 200, "A"), evse_maximum_voltage_limit=physical_value(din, 500, "V"),
            evse_minimum_current_limit=physical_value(din, 0, "A"), evse_minimum_voltage_limit=physical_value(din, 150, "V"),
            evse_peak_current_ripple=physical_value(din, 1, "A")),
    )
    exi.encode("din", din.V2G_Message(header=din.MessageHeader(session_id=bytes(8)), body=din.Body(body_element=res)))


# --------------------------------------------------------------------------- #
# Properties                                                                   #
# --------------------------------------------------------------------------- #

periods_st = st.lists(
    st.tuples(st.integers(0, 200_000), st.floats(0, 400_000, allow_nan=False)), min_size=0, max_size=40, unique_by=lambda p: p[0]
)


def _limit_at(periods: list[tuple[int, float]], t: int, fallback: float, duration: int | None) -> float:
    if duration is not None and t >= duration:
        return fallback
    current = fallback
    for start, limit in sorted(periods):
        if start <= t:
            current = limit
    return current


@settings(max_examples=300, deadline=None)
@given(periods=periods_st, max_entries=st.one_of(st.none(), st.integers(1, 30)),
       departure=st.one_of(st.none(), st.integers(1, 300_000)), duration=st.one_of(st.none(), st.integers(1, 300_000)))
def test_mapping_never_exceeds_the_csms_limit(periods, max_entries, departure, duration):
    fallback = 22000.0
    schedule = ChargingSchedule(1, LimitUnit.W, tuple(SchedulePeriod(s, w) for s, w in periods), duration=duration)
    planned = plan_entries(schedule, horizon=departure or DEFAULT_HORIZON, budget=max_entries or 1024, voltage_v=230,
                           phases=3, fallback_power_w=fallback)
    horizon = departure or DEFAULT_HORIZON
    assert 1 <= len(planned) <= (max_entries or 1024)
    starts = [e.start for e in planned]
    assert starts[0] == 0 and starts == sorted(set(starts)) and starts[-1] < horizon
    assert all(e.duration is None for e in planned[:-1]) and 1 <= planned[-1].duration <= 86400
    # at every moment before the horizon the EV gets at most what the CSMS (or the EVSE) allows
    checkpoints = set(starts) | {s for s, _ in periods if s < horizon} | ({duration} if duration and duration < horizon else set())
    for t in checkpoints:
        offered = [e.power_w for e in planned if e.start <= t][-1]
        assert offered <= _limit_at(periods, t, fallback, duration) + 1e-6
    # without folding, every period before the horizon (and the schedule's end) is an entry
    if max_entries is None or max_entries >= len(periods) + 2:
        for s, _ in periods:
            if s < horizon and (duration is None or s < duration):
                assert s in starts


@settings(max_examples=100, deadline=None)
@given(periods=periods_st, max_entries=st.one_of(st.none(), st.integers(1, 30)),
       departure=st.one_of(st.none(), st.integers(1, 300_000)))
def test_mapping_always_fits_the_xsd(periods, max_entries, departure):
    schedule = ChargingSchedule(1, LimitUnit.W, tuple(SchedulePeriod(s, w) for s, w in periods))
    sa = _iso2([schedule], max_entries=max_entries, departure_time=departure)
    _encodable(sa)
