"""The transition calculator: windows across midnight and weekends, multi-day windows, holidays, exceptions,
overrides, pre-warm, and daylight saving in America/New_York and Europe/Berlin around their 2026 and 2027 changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hibernation import timetable as tt

WEEKNIGHTS = {"days": ["mon", "tue", "wed", "thu"], "sleep_at": "20:00", "wake_at": "07:00"}
WEEKEND = {"days": ["fri"], "sleep_at": "20:00", "wake_at": "07:00", "wake_after_days": 3}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(zone: str, *args) -> datetime:
    return tt.to_utc(datetime(*args), tt.parse_zone(zone))


def plan(zone="UTC", windows=(WEEKNIGHTS, WEEKEND), **kwargs) -> tt.Timetable:
    return tt.build(time_zone=zone, windows=list(windows), **kwargs)


def actions(table, start, end):
    return [(t.action, t.at) for t in tt.transitions(table, start, end)]


# --- windows -----------------------------------------------------------------------------------------------------


def test_weeknights_and_weekend_in_one_week():
    table = plan("Europe/Berlin")
    # Monday 2026-06-01 (CEST, UTC+2) to the next Monday.
    got = actions(table, utc(2026, 6, 1), utc(2026, 6, 8))
    sleeps = [at for a, at in got if a == tt.SLEEP]
    wakes = [at for a, at in got if a == tt.WAKE]
    assert sleeps == [utc(2026, 6, d, 18) for d in (1, 2, 3, 4, 5)]
    # Monday (the previous weekend's end) to Friday mornings at 07:00 local.
    assert wakes == [utc(2026, 6, d, 5) for d in (1, 2, 3, 4, 5)]
    assert tt.state_at(table, utc(2026, 6, 6, 12)) == tt.ASLEEP  # Saturday noon
    assert tt.state_at(table, utc(2026, 6, 3, 12)) == tt.AWAKE  # Wednesday noon
    assert tt.state_at(table, utc(2026, 6, 3, 23)) == tt.ASLEEP  # Wednesday night, across midnight


def test_weekend_window_runs_from_friday_evening_to_monday_morning():
    table = plan("America/New_York", windows=[WEEKEND])
    (period,) = tt.periods(table, utc(2026, 6, 5), utc(2026, 6, 9))
    assert period.sleep_at == local("America/New_York", 2026, 6, 5, 20)
    assert period.wake_at == local("America/New_York", 2026, 6, 8, 7)


def test_window_from_sunday_across_the_week_end():
    table = plan("UTC", windows=[{"days": ["sun"], "sleep_at": "22:00", "wake_at": "06:00"}])
    (period,) = tt.periods(table, utc(2026, 6, 7), utc(2026, 6, 9))  # Sunday 2026-06-07
    assert (period.sleep_at, period.wake_at) == (utc(2026, 6, 7, 22), utc(2026, 6, 8, 6))


def test_same_day_window_defaults_to_zero_days():
    table = plan("UTC", windows=[{"days": ["sat"], "sleep_at": "01:00", "wake_at": "05:00"}])
    (period,) = tt.periods(table, utc(2026, 6, 6), utc(2026, 6, 7))
    assert period.wake_at - period.sleep_at == timedelta(hours=4)


def test_touching_windows_merge_into_one_period():
    table = plan(
        "UTC",
        windows=[
            {"days": ["sat"], "sleep_at": "00:00", "wake_at": "12:00"},
            {"days": ["sat"], "sleep_at": "12:00", "wake_at": "00:00"},
        ],
    )
    got = actions(table, utc(2026, 6, 6), utc(2026, 6, 8))
    assert got == [(tt.SLEEP, utc(2026, 6, 6)), (tt.WAKE, utc(2026, 6, 7))]


# --- pre-warm ----------------------------------------------------------------------------------------------------


def test_pre_warm_wakes_capacity_before_the_wake_time_and_counts_as_awake():
    table = plan("UTC", windows=[WEEKNIGHTS], pre_warm_minutes=45)
    got = actions(table, utc(2026, 6, 1, 19), utc(2026, 6, 2, 8))
    assert got == [
        (tt.SLEEP, utc(2026, 6, 1, 20)),
        (tt.PRE_WARM, utc(2026, 6, 2, 6, 15)),
        (tt.WAKE, utc(2026, 6, 2, 7)),
    ]
    assert tt.state_at(table, utc(2026, 6, 2, 6, 14)) == tt.ASLEEP
    assert tt.state_at(table, utc(2026, 6, 2, 6, 15)) == tt.AWAKE


def test_period_no_longer_than_its_pre_warm_never_sleeps():
    table = plan("UTC", windows=[{"days": ["mon"], "sleep_at": "10:00", "wake_at": "11:00"}], pre_warm_minutes=60)
    assert tt.periods(table, utc(2026, 6, 1), utc(2026, 6, 2)) == []


# --- holidays, exceptions, overrides ------------------------------------------------------------------------------


def test_holiday_monday_merges_with_the_weekend_and_the_monday_night():
    # Whit Monday 2026-05-25 in Berlin.
    table = plan("Europe/Berlin", holidays=["2026-05-25"])
    period = next(p for p in tt.periods(table, utc(2026, 5, 22), utc(2026, 5, 27)) if p.sleep_at > utc(2026, 5, 22))
    assert period.sleep_at == local("Europe/Berlin", 2026, 5, 22, 20)
    assert period.wake_at == local("Europe/Berlin", 2026, 5, 26, 7)  # Tuesday morning


def test_holiday_alone_is_the_whole_local_day():
    table = plan("America/New_York", windows=[], holidays=["2026-07-03"])
    (period,) = tt.periods(table, utc(2026, 7, 1), utc(2026, 7, 6))
    assert period.sleep_at == local("America/New_York", 2026, 7, 3, 0)
    assert period.wake_at == local("America/New_York", 2026, 7, 4, 0)


def test_exception_cuts_windows_at_its_edges():
    # Monday 2026-06-08 kept awake: the weekend ends at Monday 00:00, Monday night starts Tuesday 00:00.
    table = plan("UTC", exceptions=["2026-06-08"])
    found = tt.periods(table, utc(2026, 6, 5), utc(2026, 6, 10))
    spans = [(p.sleep_at, p.wake_at) for p in found]
    assert (utc(2026, 6, 5, 20), utc(2026, 6, 8)) in spans
    assert (utc(2026, 6, 9), utc(2026, 6, 9, 7)) in spans
    assert tt.state_at(table, utc(2026, 6, 8, 3)) == tt.AWAKE
    assert tt.state_at(table, utc(2026, 6, 8, 22)) == tt.AWAKE


def test_override_awake_cuts_the_window_until_it_ends_then_the_window_resumes():
    override = tt.Override(tt.AWAKE, until=utc(2026, 6, 1, 22), since=utc(2026, 6, 1, 19))
    table = plan("UTC", windows=[WEEKNIGHTS], override=override)
    assert tt.state_at(table, utc(2026, 6, 1, 21)) == tt.AWAKE
    assert actions(table, utc(2026, 6, 1, 19), utc(2026, 6, 2, 8)) == [
        (tt.SLEEP, utc(2026, 6, 1, 22)),
        (tt.WAKE, utc(2026, 6, 2, 7)),
    ]


def test_override_asleep_sleeps_now_and_merges_with_the_window():
    override = tt.Override(tt.ASLEEP, until=utc(2026, 6, 1, 21), since=utc(2026, 6, 1, 15))
    table = plan("UTC", windows=[WEEKNIGHTS], override=override)
    assert actions(table, utc(2026, 6, 1, 14), utc(2026, 6, 2, 8)) == [
        (tt.SLEEP, utc(2026, 6, 1, 15)),
        (tt.WAKE, utc(2026, 6, 2, 7)),
    ]


def test_evaluate_gives_state_period_and_next_transition():
    table = plan("UTC", pre_warm_minutes=30)
    result = tt.evaluate(table, utc(2026, 6, 2, 2))
    assert result.state == tt.ASLEEP
    assert result.period.wake_at == utc(2026, 6, 2, 7)
    assert result.next == tt.Transition(utc(2026, 6, 2, 6, 30), tt.PRE_WARM)


# --- daylight saving ----------------------------------------------------------------------------------------------

# (zone, spring-forward local date, gap start hour, fall-back local date, repeated hour)
DST = [
    ("America/New_York", date(2026, 3, 8), 2, date(2026, 11, 1), 1),
    ("America/New_York", date(2027, 3, 14), 2, date(2027, 11, 7), 1),
    ("Europe/Berlin", date(2026, 3, 29), 2, date(2026, 10, 25), 2),
    ("Europe/Berlin", date(2027, 3, 28), 2, date(2027, 10, 31), 2),
]


@pytest.mark.parametrize(("zone", "spring", "gap_hour", "fall", "repeated_hour"), DST)
def test_non_existent_local_time_happens_at_the_first_instant_after_the_gap(
    zone, spring, gap_hour, fall, repeated_hour
):
    day = tt.DAYS[spring.weekday()]
    table = plan(zone, windows=[{"days": [day], "sleep_at": f"{gap_hour:02d}:30", "wake_at": "09:00"}])
    (period,) = tt.periods(
        table,
        datetime.combine(spring, datetime.min.time(), UTC),
        datetime.combine(spring + timedelta(days=1), datetime.min.time(), UTC),
    )
    at_local = period.sleep_at.astimezone(tt.parse_zone(zone))
    # The clock jumps from gap_hour:00 to gap_hour+1:00; the sleep happens at gap_hour+1:00 sharp, new offset.
    assert (at_local.hour, at_local.minute) == (gap_hour + 1, 0)
    assert at_local.date() == spring
    just_before = period.sleep_at - timedelta(seconds=1)
    assert just_before.astimezone(tt.parse_zone(zone)).utcoffset() != at_local.utcoffset()


@pytest.mark.parametrize(("zone", "spring", "gap_hour", "fall", "repeated_hour"), DST)
def test_ambiguous_local_time_happens_once_at_its_first_occurrence(zone, spring, gap_hour, fall, repeated_hour):
    day = tt.DAYS[fall.weekday()]
    table = plan(zone, windows=[{"days": [day], "sleep_at": f"{repeated_hour:02d}:30", "wake_at": "09:00"}])
    begin = datetime.combine(fall - timedelta(days=1), datetime.min.time(), UTC)
    got = actions(table, begin, begin + timedelta(days=3))
    sleeps = [at for a, at in got if a == tt.SLEEP]
    assert len(sleeps) == 1
    first = sleeps[0].astimezone(tt.parse_zone(zone))
    assert (first.hour, first.minute, first.fold) == (repeated_hour, 30, 0)
    # The first occurrence is in summer time: one hour earlier in UTC than the second would be.
    second = datetime.combine(fall, datetime.min.time()).replace(hour=repeated_hour, minute=30, fold=1)
    assert sleeps[0] == second.replace(tzinfo=tt.parse_zone(zone)).astimezone(UTC) - timedelta(hours=1)


@pytest.mark.parametrize(("zone", "spring", "gap_hour", "fall", "repeated_hour"), DST)
def test_overnight_windows_across_a_change_neither_skip_nor_double(zone, spring, gap_hour, fall, repeated_hour):
    table = plan(zone, windows=[{"days": list(tt.DAYS), "sleep_at": "22:00", "wake_at": "06:00"}], pre_warm_minutes=30)
    for change, hours in ((spring, 7), (fall, 9)):
        begin = datetime.combine(change - timedelta(days=3), datetime.min.time(), UTC) + timedelta(hours=14)
        got = actions(table, begin, begin + timedelta(days=6))
        kinds = [a for a, _ in got]
        # Strictly alternating sleep / pre-warm / wake, one per night.
        assert kinds == [tt.SLEEP, tt.PRE_WARM, tt.WAKE] * (len(kinds) // 3)
        assert len(kinds) // 3 in (5, 6)
        night = next(
            p
            for p in tt.periods(table, begin, begin + timedelta(days=6))
            if p.sleep_at.astimezone(tt.parse_zone(zone)).date() == change - timedelta(days=1)
        )
        # The night of the change is an hour shorter (spring) or longer (fall) in real time.
        assert night.wake_at - night.sleep_at == timedelta(hours=hours)
        assert night.wake_at.astimezone(tt.parse_zone(zone)).hour == 6


def test_week_grid_marks_sleep_and_pre_warm_in_local_hours():
    table = plan("Europe/Berlin", windows=[WEEKNIGHTS], pre_warm_minutes=60)
    grid = tt.week_grid(table, date(2026, 6, 3))
    monday, cells = grid[0]
    assert monday == date(2026, 6, 1)
    assert cells[20].css == "asleep" and cells[19].css == "awake"
    tuesday = grid[1][1]
    assert tuesday[6].css == "pre-warm" and tuesday[5].css == "asleep" and tuesday[7].css == "awake"


def test_week_grid_on_a_spring_forward_day_has_an_empty_skipped_hour():
    table = plan("Europe/Berlin", windows=[{"days": ["sun"], "sleep_at": "00:00", "wake_at": "06:00"}])
    grid = dict(tt.week_grid(table, date(2026, 3, 29)))
    sunday = grid[date(2026, 3, 29)]
    assert sunday[2].asleep_minutes == 0  # 02:00-03:00 does not exist that night
    assert sunday[1].asleep_minutes == 60 and sunday[3].asleep_minutes == 60


# --- validation -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "utc+2"}, "time_zone"),
        ({"windows": [{"days": [], "sleep_at": "20:00", "wake_at": "07:00"}]}, "windows[0].days"),
        ({"windows": [{"days": ["funday"], "sleep_at": "20:00", "wake_at": "07:00"}]}, "windows[0].days"),
        ({"windows": [{"days": ["mon"], "sleep_at": "25:00", "wake_at": "07:00"}]}, "windows[0].sleep_at"),
        ({"windows": [{"days": ["mon"], "sleep_at": "20:00", "wake_at": "7:00"}]}, "windows[0].wake_at"),
        (
            {"windows": [{"days": ["mon"], "sleep_at": "20:00", "wake_at": "07:00", "wake_after_days": 0}]},
            "windows[0].wake_at",
        ),
        (
            {"windows": [{"days": ["mon"], "sleep_at": "20:00", "wake_at": "21:00", "wake_after_days": 7}]},
            "windows[0].wake_after_days",
        ),
        ({"windows": [WEEKNIGHTS, {"days": ["tue"], "sleep_at": "06:00", "wake_at": "08:00"}]}, "windows[1]"),
        # Friday 20:00 to Monday 07:00 overlaps Sunday night 22:00.
        ({"windows": [WEEKEND, {"days": ["sun"], "sleep_at": "22:00", "wake_at": "05:00"}]}, "windows[1]"),
        # Sunday night into Monday morning overlaps Monday 06:00 across the week's end.
        (
            {
                "windows": [
                    {"days": ["mon"], "sleep_at": "06:00", "wake_at": "08:00"},
                    {"days": ["sun"], "sleep_at": "22:00", "wake_at": "07:00"},
                ]
            },
            "windows[1]",
        ),
        (
            {"windows": [{"days": ["mon", "tue"], "sleep_at": "20:00", "wake_at": "07:00", "wake_after_days": 2}]},
            "windows[0]",
        ),
        ({"pre_warm_minutes": 241}, "pre_warm_minutes"),
        ({"pre_warm_minutes": -1}, "pre_warm_minutes"),
        ({"holidays": ["2026-02-30"]}, "holidays[0]"),
        ({"exceptions": ["tomorrow"]}, "exceptions[0]"),
        ({"holidays": ["2026-12-24"], "exceptions": ["2026-12-24"]}, "exceptions"),
    ],
)
def test_invalid_schedules_name_the_field(kwargs, field):
    values = {"time_zone": "UTC", "windows": [WEEKNIGHTS]} | kwargs
    with pytest.raises(tt.TimetableError) as exc:
        tt.build(**values)
    assert field in exc.value.fields


# --- properties -----------------------------------------------------------------------------------------------------

_window = st.fixed_dictionaries(
    {
        "days": st.lists(st.sampled_from(tt.DAYS), min_size=1, max_size=1),
        "sleep_at": st.sampled_from(["00:00", "01:30", "02:30", "18:00", "22:15"]),
        "wake_at": st.sampled_from(["03:00", "06:45", "09:00", "23:59"]),
    }
)


@settings(max_examples=60, deadline=None)
@given(
    windows=st.lists(_window, min_size=1, max_size=3),
    zone=st.sampled_from(["America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]),
    pre_warm=st.integers(0, 240),
    start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1)),
)
def test_transitions_alternate_and_agree_with_the_state(windows, zone, pre_warm, start):
    try:
        table = tt.build(time_zone=zone, windows=windows, pre_warm_minutes=pre_warm)
    except tt.TimetableError:
        return  # overlapping draws
    begin = start.replace(tzinfo=UTC)
    got = tt.transitions(table, begin, begin + timedelta(days=9))
    for a, b in zip(got, got[1:], strict=False):
        assert a.at <= b.at
    for t in got:
        after = t.at + timedelta(seconds=1)
        expected = tt.ASLEEP if t.action == tt.SLEEP else tt.AWAKE
        assert tt.state_at(table, after) == expected
