"""The transition calculator: when a schedule sleeps, pre-warms and wakes. Pure Python (no Django, no database), so
that the tick, the preview, the console's week grid and the tests all ask the same function.

A schedule's sleep periods are built in its IANA zone and then turned into UTC instants:

1. every weekly window gives, for each listed local day ``d``, the period from ``d sleep_at`` to
   ``d + wake_after_days wake_at``;
2. every holiday gives the local day from 00:00 to 24:00;
3. periods that overlap or touch are merged (a holiday next to a weekend sleeps from Friday evening to Tuesday);
4. every exception (a local day kept awake) cuts 00:00-24:00 out of the periods;
5. an override "asleep until T" adds [set, T), an override "awake until T" cuts [set, T) out;
6. a period wakes ``pre_warm_minutes`` before its end so that nodes are Ready at the wake time; a period no longer
   than its pre-warm never sleeps.

Daylight saving: a local time that does not exist (spring forward) happens at the first instant after the gap; an
ambiguous local time (fall back) happens once, at its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_PRE_WARM_MINUTES = 240
WEEK_MINUTES = 7 * 24 * 60
# Periods are computed over the asked range plus this margin on each side, so that a period which began before the
# range (a weekend, merged holidays) is seen whole.
MARGIN = timedelta(days=16)
#: Enough to decide the state at one instant (the longest window is a week).
STATE_MARGIN = timedelta(days=8)
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

SLEEP = "sleep"
PRE_WARM = "pre-warm"
WAKE = "wake"
AWAKE = "awake"
ASLEEP = "asleep"


class TimetableError(ValueError):
    """A schedule that cannot be evaluated; ``fields`` names what is wrong (``windows[1].sleep_at``)."""

    def __init__(self, fields: dict[str, list[str]]) -> None:
        self.fields = fields
        path, messages = next(iter(fields.items()))
        super().__init__(f"{path}: {messages[0]}")


# --- Parsing and validation ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A weekly sleep window: on each of ``days`` it sleeps at ``sleep_at`` and wakes ``wake_after_days`` later at
    ``wake_at``."""

    days: tuple[int, ...]  # 0 = Monday
    sleep_at: time
    wake_at: time
    wake_after_days: int

    @property
    def minutes(self) -> int:
        return (
            self.wake_after_days * 1440
            + (self.wake_at.hour * 60 + self.wake_at.minute)
            - (self.sleep_at.hour * 60 + self.sleep_at.minute)
        )

    def weekly_spans(self) -> list[tuple[int, int]]:
        """[start, end) in minutes from Monday 00:00 local, one per day (end may pass the week's end)."""
        start_of_day = self.sleep_at.hour * 60 + self.sleep_at.minute
        return [(d * 1440 + start_of_day, d * 1440 + start_of_day + self.minutes) for d in self.days]


@dataclass(frozen=True)
class Override:
    """A manual override: ``state`` ("awake" or "asleep") from ``since`` until ``until``."""

    state: str
    until: datetime
    since: datetime | None = None


@dataclass(frozen=True)
class Timetable:
    """A validated schedule, ready for :func:`periods`, :func:`state_at` and :func:`transitions`."""

    zone: ZoneInfo
    windows: tuple[Window, ...] = ()
    pre_warm: timedelta = timedelta(0)
    holidays: tuple[date, ...] = ()
    exceptions: tuple[date, ...] = ()
    override: Override | None = None


def parse_zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name or name not in _zones():
        raise TimetableError({"time_zone": ["Not an IANA time zone (e.g. Europe/Berlin)."]})
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimetableError({"time_zone": ["Not an IANA time zone (e.g. Europe/Berlin)."]})


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES


def parse_hhmm(value: object, path: str, errors: dict[str, list[str]]) -> time | None:
    match = _HHMM.match(value) if isinstance(value, str) else None
    if not match:
        errors.setdefault(path, []).append('A time "HH:MM" (00:00-23:59).')
        return None
    return time(int(match[1]), int(match[2]))


def parse_windows(raw: object) -> tuple[Window, ...]:
    """Validate ``[{"days", "sleep_at", "wake_at", "wake_after_days"?}]``; overlapping windows are an error."""
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, list):
        raise TimetableError({"windows": ["A list of windows."]})
    if len(raw) > 50:
        raise TimetableError({"windows": ["At most 50 windows."]})
    windows: list[tuple[int, Window]] = []
    for i, item in enumerate(raw):
        path = f"windows[{i}]"
        if not isinstance(item, dict):
            errors.setdefault(path, []).append("An object with days, sleep_at and wake_at.")
            continue
        unknown = set(item) - {"days", "sleep_at", "wake_at", "wake_after_days"}
        if unknown:
            errors.setdefault(path, []).append(f"Unknown keys: {', '.join(sorted(map(str, unknown)))}.")
        days = item.get("days")
        if not isinstance(days, list) or not days:
            errors.setdefault(f"{path}.days", []).append("At least one day (mon..sun).")
            day_numbers: tuple[int, ...] = ()
        elif not all(isinstance(d, str) and d.lower() in DAYS for d in days):
            errors.setdefault(f"{path}.days", []).append("Days are mon, tue, wed, thu, fri, sat, sun.")
            day_numbers = ()
        elif len({d.lower() for d in days}) != len(days):
            errors.setdefault(f"{path}.days", []).append("A day is listed twice.")
            day_numbers = ()
        else:
            day_numbers = tuple(sorted(DAYS.index(d.lower()) for d in days))
        sleep_at = parse_hhmm(item.get("sleep_at"), f"{path}.sleep_at", errors)
        wake_at = parse_hhmm(item.get("wake_at"), f"{path}.wake_at", errors)
        after = item.get("wake_after_days")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= 7):
            errors.setdefault(f"{path}.wake_after_days", []).append("An integer from 0 to 7.")
            continue
        if sleep_at is None or wake_at is None or not day_numbers:
            continue
        if after is None:
            after = 0 if wake_at > sleep_at else 1
        window = Window(day_numbers, sleep_at, wake_at, after)
        if window.minutes <= 0:
            errors.setdefault(f"{path}.wake_at", []).append("The window wakes before it sleeps.")
            continue
        if window.minutes > WEEK_MINUTES:
            errors.setdefault(f"{path}.wake_after_days", []).append("A window lasts at most a week.")
            continue
        windows.append((i, window))
    if errors:
        raise TimetableError(errors)
    # Overlaps, on the weekly clock (a window may run past Sunday into the next week).
    spans = sorted((s, e, i) for i, w in windows for s, e in w.weekly_spans())
    for k, (_, end, i1) in enumerate(spans):
        following_start, _, i2 = spans[(k + 1) % len(spans)]
        if k + 1 == len(spans):
            following_start += WEEK_MINUTES
        if following_start < end:
            first, second = sorted((i1, i2))
            message = f"Overlaps windows[{first}]." if first != second else "Overlaps itself on consecutive days."
            raise TimetableError({f"windows[{second}]": [message]})
    return tuple(w for _, w in windows)


def parse_dates(raw: object, name: str) -> tuple[date, ...]:
    if not isinstance(raw, list):
        raise TimetableError({name: ['A list of dates "YYYY-MM-DD".']})
    if len(raw) > 1000:
        raise TimetableError({name: ["At most 1000 dates."]})
    out = []
    for i, value in enumerate(raw):
        try:
            if not isinstance(value, str) or not _DATE.match(value):
                raise ValueError
            out.append(date.fromisoformat(value))
        except ValueError:
            raise TimetableError({f"{name}[{i}]": ['A date "YYYY-MM-DD".']})
    if len(set(out)) != len(out):
        raise TimetableError({name: ["A date is listed twice."]})
    return tuple(sorted(out))


def parse_pre_warm(value: object) -> timedelta:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRE_WARM_MINUTES:
        raise TimetableError({"pre_warm_minutes": [f"An integer from 0 to {MAX_PRE_WARM_MINUTES}."]})
    return timedelta(minutes=value)


def build(
    *,
    time_zone: str,
    windows: object = (),
    pre_warm_minutes: object = 0,
    holidays: object = (),
    exceptions: object = (),
    override: Override | None = None,
) -> Timetable:
    """A :class:`Timetable` from a schedule's stored or submitted values; :class:`TimetableError` names the first
    bad field. Holidays and exceptions on the same date are an error."""
    zone = parse_zone(time_zone)
    parsed_windows = parse_windows(list(windows))
    holiday_dates = parse_dates(list(holidays), "holidays")
    exception_dates = parse_dates(list(exceptions), "exceptions")
    both = set(holiday_dates) & set(exception_dates)
    if both:
        raise TimetableError({"exceptions": [f"{min(both).isoformat()} is also a holiday."]})
    return Timetable(
        zone=zone,
        windows=parsed_windows,
        pre_warm=parse_pre_warm(pre_warm_minutes),
        holidays=holiday_dates,
        exceptions=exception_dates,
        override=override,
    )


# --- Local time to UTC -----------------------------------------------------------------------------------------------


def to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """A naive local wall time in ``zone`` as an aware UTC instant.

    Ambiguous (the repeated hour of a fall-back): the first occurrence (``fold=0``). Non-existent (the skipped hour
    of a spring-forward): the first instant after the gap, i.e. the transition itself.
    """
    first = local.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == local:
        return utc
    # In a gap: fold=1 maps with the offset after the change (an earlier instant), fold=0 with the one before (a later
    # one). The transition lies between; find it to the second.
    low = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    high = utc
    if low > high:
        low, high = high, low
    before = low.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).utcoffset() == before:
            low = mid
        else:
            high = mid
    return high.replace(microsecond=0)


def _local_day_start(day: date, zone: ZoneInfo) -> datetime:
    return to_utc(datetime.combine(day, time(0, 0)), zone)


# --- Periods, state, transitions -------------------------------------------------------------------------------------

Interval = tuple[datetime, datetime]


def _merge(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[list[datetime]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def _subtract(intervals: Sequence[Interval], cuts: Iterable[Interval]) -> list[Interval]:
    out = list(intervals)
    for cut_start, cut_end in cuts:
        pieces: list[Interval] = []
        for start, end in out:
            if cut_end <= start or cut_start >= end:
                pieces.append((start, end))
                continue
            if start < cut_start:
                pieces.append((start, cut_start))
            if cut_end < end:
                pieces.append((cut_end, end))
        out = pieces
    return out


@dataclass(frozen=True)
class Period:
    """One sleep: asleep from ``sleep_at``; capacity comes back at ``pre_warm_at``; Ready by ``wake_at``."""

    sleep_at: datetime
    pre_warm_at: datetime
    wake_at: datetime

    def asleep_at(self, instant: datetime) -> bool:
        return self.sleep_at <= instant < self.pre_warm_at


def periods(
    timetable: Timetable,
    start: datetime,
    end: datetime,
    *,
    margin: timedelta = MARGIN,
    margin_after: timedelta | None = None,
) -> list[Period]:
    """The sleep periods that overlap [start, end), in UTC, after merging, cutting and overrides. Raw windows and
    holidays are generated from ``margin`` before ``start`` to ``margin`` after ``end``: at least 8 days, so that a
    window of up to a week that began earlier is seen. After ``end`` a day is enough to place a pre-warm (at most 4
    hours before a period's end) right; previews ask for the full margin so that whole periods are shown."""
    zone = timetable.zone
    lo, hi = start - margin, end + (margin if margin_after is None else margin_after)
    first_day = lo.astimezone(zone).date() - timedelta(days=1)
    last_day = hi.astimezone(zone).date() + timedelta(days=1)
    raw: list[Interval] = []
    day = first_day
    while day <= last_day:
        for window in timetable.windows:
            if day.weekday() in window.days:
                sleep = to_utc(datetime.combine(day, window.sleep_at), zone)
                wake = to_utc(datetime.combine(day + timedelta(days=window.wake_after_days), window.wake_at), zone)
                raw.append((sleep, wake))
        day += timedelta(days=1)
    for holiday in timetable.holidays:
        if first_day <= holiday <= last_day:
            raw.append((_local_day_start(holiday, zone), _local_day_start(holiday + timedelta(days=1), zone)))
    merged = _merge(raw)
    cuts = [
        (_local_day_start(d, zone), _local_day_start(d + timedelta(days=1), zone))
        for d in timetable.exceptions
        if first_day <= d <= last_day
    ]
    merged = _subtract(merged, cuts)
    override = timetable.override
    if override is not None:
        since = override.since or lo
        if override.state == ASLEEP:
            merged = _merge([*merged, (since, override.until)])
        else:
            merged = _subtract(merged, [(since, override.until)])
    out = []
    for sleep, wake in merged:
        pre_warm = wake - timetable.pre_warm
        if pre_warm <= sleep:
            continue  # shorter than its pre-warm: it would wake as soon as it slept
        if wake > start and sleep < end:
            out.append(Period(sleep, pre_warm, wake))
    return out


@dataclass(frozen=True)
class Transition:
    at: datetime
    action: str  # "sleep" | "pre-warm" | "wake"

    def local(self, zone: ZoneInfo) -> datetime:
        return self.at.astimezone(zone)


@dataclass(frozen=True)
class Evaluation:
    """What a schedule says at one instant: the state it should be in, the period it is in (if asleep or
    pre-warming), and the transitions from then on."""

    state: str  # "awake" | "asleep"
    period: Period | None
    upcoming: tuple[Transition, ...] = field(default=())

    @property
    def next(self) -> Transition | None:
        return self.upcoming[0] if self.upcoming else None


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("instants must be timezone-aware")
    return instant.astimezone(UTC)


def _steps(found: Iterable[Period], start: datetime, end: datetime) -> list[Transition]:
    out: list[Transition] = []
    for period in found:
        steps = [(period.sleep_at, SLEEP)]
        if period.pre_warm_at != period.wake_at:
            steps.append((period.pre_warm_at, PRE_WARM))
        steps.append((period.wake_at, WAKE))
        out.extend(Transition(at, action) for at, action in steps if start <= at < end)
    return out


def transitions(timetable: Timetable, start: datetime, end: datetime) -> list[Transition]:
    """Every sleep, pre-warm and wake in [start, end), in order. Without pre-warm there is no pre-warm step."""
    start, end = _aware(start), _aware(end)
    return _steps(periods(timetable, start, end), start, end)


def evaluate(timetable: Timetable, instant: datetime, *, horizon: timedelta = timedelta(days=8)) -> Evaluation:
    """The state at ``instant`` (asleep from a period's sleep until its pre-warm) and the next transitions within
    ``horizon``."""
    instant = _aware(instant)
    if horizon <= STATE_MARGIN:
        found = periods(timetable, instant, instant + horizon, margin=STATE_MARGIN, margin_after=timedelta(days=1))
    else:
        found = periods(timetable, instant, instant + horizon)
    current = next((p for p in found if p.sleep_at <= instant < p.wake_at), None)
    state = ASLEEP if current is not None and current.asleep_at(instant) else AWAKE
    return Evaluation(state, current, tuple(_steps(found, instant, instant + horizon)))


def state_at(timetable: Timetable, instant: datetime) -> str:
    instant = _aware(instant)
    asleep = any(
        p.asleep_at(instant) for p in periods(timetable, instant, instant + timedelta(seconds=1), margin=STATE_MARGIN)
    )
    return ASLEEP if asleep else AWAKE


# --- The console's week grid -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    """One local hour of the grid: asleep for the whole hour, part of it, pre-warming, or awake."""

    start: datetime  # aware, in the schedule's zone
    asleep_minutes: int
    pre_warm_minutes: int

    @property
    def css(self) -> str:
        if self.pre_warm_minutes:
            return "pre-warm"
        if self.asleep_minutes >= 60:
            return "asleep"
        if self.asleep_minutes:
            return "partly-asleep"
        return "awake"


def week_grid(timetable: Timetable, week_of: date) -> list[tuple[date, list[Cell]]]:
    """Seven local days from the Monday of ``week_of``, each as 24 local hours. A day of a spring-forward has its
    skipped hour with zero length; a fall-back day counts its repeated hour once (the first)."""
    zone = timetable.zone
    monday = week_of - timedelta(days=week_of.weekday())
    begin = _local_day_start(monday, zone)
    finish = _local_day_start(monday + timedelta(days=7), zone)
    found = periods(timetable, begin, finish)
    rows = []
    for offset in range(7):
        day = monday + timedelta(days=offset)
        cells = []
        for hour in range(24):
            s = to_utc(datetime.combine(day, time(hour)), zone)
            e = (
                to_utc(datetime.combine(day, time(hour + 1)), zone)
                if hour < 23
                else _local_day_start(day + timedelta(days=1), zone)
            )
            asleep = warm = timedelta(0)
            for p in found:
                asleep += max(timedelta(0), min(e, p.pre_warm_at) - max(s, p.sleep_at))
                warm += max(timedelta(0), min(e, p.wake_at) - max(s, p.pre_warm_at))
            cells.append(Cell(s.astimezone(zone), int(asleep.total_seconds() // 60), int(warm.total_seconds() // 60)))
        rows.append((day, cells))
    return rows
