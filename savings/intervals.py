"""Time arithmetic of ledger entries: how long an entry was in force within a window, pauses left out. Pure."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from datetime import datetime

from django.utils.dateparse import parse_datetime


def _instant(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return parse_datetime(value)


def overlap(a0: datetime, a1: datetime, b0: datetime, b1: datetime) -> float:
    """Seconds shared by [a0, a1) and [b0, b1)."""
    start, end = max(a0, b0), min(a1, b1)
    return max(0.0, (end - start).total_seconds())


def in_force_seconds(
    started_at: datetime,
    ended_at: datetime | None,
    pauses: Iterable[Sequence[str | datetime | None]],
    *,
    since: datetime | None,
    until: datetime,
) -> float:
    """Seconds of [started_at, ended_at or until) inside [since, until), less the pauses inside it."""
    lo = max(started_at, since) if since else started_at
    hi = min(ended_at, until) if ended_at else until
    if hi <= lo:
        return 0.0
    total = (hi - lo).total_seconds()
    for pause in pauses:
        p0, p1 = _instant(pause[0]), _instant(pause[1]) or hi
        total -= overlap(lo, hi, p0, p1)
    return max(0.0, total)


def segments(
    started_at: datetime,
    ended_at: datetime | None,
    pauses: Iterable[Sequence[str | datetime | None]],
    *,
    since: datetime,
    until: datetime,
) -> list[tuple[float, float]]:
    """The entry's in-force time within [since, until) as (start, end) POSIX-second pairs, pauses cut out."""
    lo = max(started_at, since).timestamp()
    hi = (min(ended_at, until) if ended_at else until).timestamp()
    if hi <= lo:
        return []
    parts = [(lo, hi)]
    for pause in pauses:
        p0 = _instant(pause[0]).timestamp()
        p1 = _instant(pause[1]).timestamp() if pause[1] else hi
        cut: list[tuple[float, float]] = []
        for a, b in parts:
            if p1 <= a or p0 >= b:
                cut.append((a, b))
                continue
            if a < p0:
                cut.append((a, p0))
            if p1 < b:
                cut.append((p1, b))
        parts = cut
    return parts


def seconds_by_bucket(parts: Iterable[tuple[float, float]], edges: Sequence[float]) -> list[float]:
    """Seconds of ``parts`` inside each bucket [edges[i], edges[i+1]) (edges ascending)."""
    out = [0.0] * (len(edges) - 1)
    if not out:
        return out

    for a, b in parts:
        i = max(0, bisect.bisect_right(edges, a) - 1)
        while i < len(out) and edges[i] < b:
            out[i] += max(0.0, min(b, edges[i + 1]) - max(a, edges[i]))
            i += 1
    return out
