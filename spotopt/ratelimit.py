"""Request-rate limits kept in the cache, counted atomically.

A limit is a DRF-style rate (``100/min``). The first request of a key opens a window of that period (``add``: a
Redis ``SET NX EX``); every later request increments the key (Redis ``INCR``), so concurrent requests each get their
own count and at most ``limit`` of them pass in a window, however many arrive at once. When the cache is down the
request passes (failing open, counted by :mod:`spotopt.cache`): request-rate limits protect capacity, not security
state.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.core.cache import cache

from .cache import CacheUnavailable

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """``"100/min"`` → ``(100, 60)``."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period.strip()[0]]


def _cache_key(key: str) -> str:
    return "rl:" + hashlib.sha256(key.encode()).hexdigest()[:40]


def hit(key: str, rate: str) -> int | None:
    """Count one request of ``key`` against ``rate``. ``None`` when it may pass, else the seconds to wait."""
    limit, window = parse_rate(rate)
    counter = _cache_key(key)
    try:
        count = _increment(counter, window)
        if count <= limit:
            return None
        opened = cache.get(f"{counter}:opened")
    except CacheUnavailable:
        return None
    now = time.time()
    if not isinstance(opened, int | float):
        return window
    return max(1, math.ceil(opened + window - now))


def _increment(counter: str, window: int) -> int:
    for _ in range(3):
        if cache.add(counter, 1, timeout=window):
            cache.set(f"{counter}:opened", time.time(), timeout=window)
            return 1
        try:
            return cache.incr(counter)
        except ValueError:
            continue  # the window closed between add and incr: open the next one
    raise CacheUnavailable("the counter kept expiring")
