"""The cache fails open: when Redis is down, reads miss and writes are dropped, so the API keeps answering.

Every failure is logged (at most once every few seconds per process, so an outage does not flood the log) and
counted; ``/health/detailed`` shows the count. Operations that must know whether they happened (``add``, ``incr``)
raise :class:`CacheUnavailable` instead, and their caller decides: the request-rate limiter lets the request through.
Security state (failed-login counts, token denylists) is never kept in the cache, so an outage cannot erase it.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import RedisError

logger = logging.getLogger("spotopt.cache")

_LOG_EVERY_SECONDS = 10.0
_lock = threading.Lock()
_stats: dict[str, Any] = {"failures": 0, "last_failure_at": None, "last_error": ""}
_last_logged = 0.0


class CacheUnavailable(Exception):
    """The cache could not be reached for an operation whose outcome the caller needs."""


def note_failure(operation: str, exc: BaseException) -> None:
    """Count a failed cache operation and log it (rate-limited). The message names the error type only: Redis
    errors can carry the server's address."""
    global _last_logged
    now = time.monotonic()
    with _lock:
        _stats["failures"] += 1
        _stats["last_failure_at"] = datetime.now(UTC).isoformat()
        _stats["last_error"] = type(exc).__name__
        should_log = now - _last_logged >= _LOG_EVERY_SECONDS
        if should_log:
            _last_logged = now
        failures = _stats["failures"]
    if should_log:
        logger.warning(
            "cache unavailable, failing open",
            extra={"operation": operation, "error": type(exc).__name__, "failures": failures},
        )


def failure_stats() -> dict[str, Any]:
    """Cache operations that failed open in this process since it started."""
    with _lock:
        return dict(_stats)


def reset_failure_stats() -> None:
    global _last_logged
    with _lock:
        _stats.update(failures=0, last_failure_at=None, last_error="")
        _last_logged = 0.0


class FailOpenRedisCache(RedisCache):
    """Django's Redis cache, failing open (see the module docstring)."""

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except RedisError as exc:
            note_failure("get", exc)
            return default

    def get_many(self, keys, version=None):
        try:
            return super().get_many(keys, version)
        except RedisError as exc:
            note_failure("get_many", exc)
            return {}

    def has_key(self, key, version=None):
        try:
            return super().has_key(key, version)
        except RedisError as exc:
            note_failure("has_key", exc)
            return False

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().set(key, value, timeout, version)
        except RedisError as exc:
            note_failure("set", exc)
            return None

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().set_many(data, timeout, version)
        except RedisError as exc:
            note_failure("set_many", exc)
            return list(data)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().touch(key, timeout, version)
        except RedisError as exc:
            note_failure("touch", exc)
            return False

    def delete(self, key, version=None):
        try:
            return super().delete(key, version)
        except RedisError as exc:
            note_failure("delete", exc)
            return False

    def delete_many(self, keys, version=None):
        try:
            return super().delete_many(keys, version)
        except RedisError as exc:
            note_failure("delete_many", exc)
            return None

    def clear(self):
        try:
            return super().clear()
        except RedisError as exc:
            note_failure("clear", exc)
            return False

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        try:
            return super().add(key, value, timeout, version)
        except RedisError as exc:
            note_failure("add", exc)
            raise CacheUnavailable("add") from exc

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except RedisError as exc:
            note_failure("incr", exc)
            raise CacheUnavailable("incr") from exc
