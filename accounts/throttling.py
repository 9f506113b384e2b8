"""Login failure limits, per account (email) and per client IP, kept in the cache (Redis when configured)."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse(rate: str) -> tuple[int, int]:
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


def _key(kind: str, value: str) -> str:
    return f"login-fail:{kind}:{hashlib.sha256(value.lower().encode()).hexdigest()[:32]}"


def _keys(email: str, ip: str | None) -> list[str]:
    keys = [_key("email", email or "")]
    if ip:
        keys.append(_key("ip", ip))
    return keys


def retry_after(email: str, ip: str | None) -> int | None:
    """Seconds to wait when the account or the IP is over its failure budget, else None."""
    limit, window = _parse(settings.LOGIN_RATE_LIMIT)
    now = time.time()
    waits = []
    for key in _keys(email, ip):
        stamps = [t for t in (cache.get(key) or []) if t > now - window]
        if len(stamps) >= limit:
            waits.append(int(stamps[0] + window - now) + 1)
    return max(waits) if waits else None


def note_failure(email: str, ip: str | None) -> None:
    limit, window = _parse(settings.LOGIN_RATE_LIMIT)
    now = time.time()
    for key in _keys(email, ip):
        stamps = [t for t in (cache.get(key) or []) if t > now - window]
        stamps.append(now)
        cache.set(key, stamps[-limit:], timeout=window)
