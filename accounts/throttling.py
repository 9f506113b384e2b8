"""Failed-login limits, kept in the database so that a cache outage cannot erase them.

Three counters per attempt: the account (``LOGIN_RATE_LIMIT``), the account at this client address (the same rate)
and the address over all accounts (``LOGIN_ADDRESS_RATE_LIMIT``, much higher, so that one attacker behind a shared
NAT or proxy does not lock out everyone behind it). Each is a fixed window opened by its first failure.

An attempt is recorded *before* the password is checked: :func:`reserve` increments the three counters in one
atomic upsert and lets the check go ahead only if every count is within its limit, so concurrent wrong passwords
check at most the limit, however many arrive at once. A refused attempt, and an attempt whose password was right,
gives its place back (:func:`release`): only failed checks use up the budget.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import F
from django.utils import timezone

from spotopt.errors import RateLimited
from spotopt.ratelimit import parse_rate

from .models import LoginFailureCounter

LOCKED_MESSAGE = "Too many failed login attempts. Try again later."


@dataclass(frozen=True)
class Reservation:
    """The counters one attempt incremented."""

    keys: tuple[str, ...]


def _key(kind: str, *parts: str) -> str:
    raw = "\x00".join(p.strip().lower() for p in parts)
    return f"{kind}:{hashlib.sha256(raw.encode()).hexdigest()[:56]}"


def _limits(email: str, ip: str | None) -> list[tuple[str, int, int]]:
    """``(key, limit, window seconds)`` of every counter an attempt on ``email`` from ``ip`` is held to."""
    account_limit, account_window = parse_rate(settings.LOGIN_RATE_LIMIT)
    limits = [(_key("account", email), account_limit, account_window)]
    if ip:
        address_limit, address_window = parse_rate(settings.LOGIN_ADDRESS_RATE_LIMIT)
        limits.append((_key("account-address", email, ip), account_limit, account_window))
        limits.append((_key("address", ip), address_limit, address_window))
    # One order for every statement, so that concurrent upserts of overlapping keys never deadlock.
    return sorted(limits)


_UPSERT = """
INSERT INTO login_failure_counters ("key", "count", "window_started_at", "window_ends_at")
VALUES {values}
ON CONFLICT ("key") DO UPDATE SET
    count = CASE WHEN login_failure_counters.window_ends_at <= excluded.window_started_at
                 THEN 1 ELSE login_failure_counters.count + 1 END,
    window_started_at = CASE WHEN login_failure_counters.window_ends_at <= excluded.window_started_at
                 THEN excluded.window_started_at ELSE login_failure_counters.window_started_at END,
    window_ends_at = CASE WHEN login_failure_counters.window_ends_at <= excluded.window_started_at
                 THEN excluded.window_ends_at ELSE login_failure_counters.window_ends_at END
RETURNING "key", "count"
"""


def _increment(limits: list[tuple[str, int, int]], now: datetime) -> dict[str, int]:
    """Open or increment every counter in one statement; the count each now holds (this attempt included)."""
    adapt = connection.ops.adapt_datetimefield_value
    params: list = []
    for key, _limit, window in limits:
        params += [key, 1, adapt(now), adapt(now + timedelta(seconds=window))]
    values = ", ".join(["(%s, %s, %s, %s)"] * len(limits))
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT.format(values=values), params)
        return {key: count for key, count in cursor.fetchall()}


def reserve(email: str, ip: str | None) -> Reservation:
    """Record an attempt on ``email`` from ``ip``; raise :class:`RateLimited` (and give the place back) when the
    account, the account at this address, or the address is over its limit."""
    now = timezone.now()
    limits = _limits(email or "", ip)
    counts = _increment(limits, now)
    reservation = Reservation(keys=tuple(key for key, _limit, _window in limits))
    over = [key for key, limit, _window in limits if counts[key] > limit]
    if over:
        release(reservation)
        ends = LoginFailureCounter.objects.filter(key__in=over).values_list("window_ends_at", flat=True)
        wait = max((math.ceil((end - now).total_seconds()) for end in ends), default=1)
        raise RateLimited(LOCKED_MESSAGE, retry_after=max(1, wait))
    return reservation


def release(reservation: Reservation) -> None:
    """Give back the place an attempt took (its password was right, or it was refused unchecked)."""
    LoginFailureCounter.objects.filter(key__in=reservation.keys, count__gt=0).update(count=F("count") - 1)


def purge_expired(now: datetime | None = None) -> int:
    deleted, _ = LoginFailureCounter.objects.filter(window_ends_at__lt=now or timezone.now()).delete()
    return deleted
