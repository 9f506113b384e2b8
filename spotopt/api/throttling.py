"""Request rate limits: ``API_RATE_LIMIT`` per user (anonymous callers: per client address; agents: per API key).

Counted atomically in the cache (:mod:`spotopt.ratelimit`); the client address is :func:`spotopt.middleware.client_ip`,
which believes ``X-Forwarded-For`` only from ``TRUSTED_PROXIES``.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from spotopt import ratelimit
from spotopt.middleware import client_ip


class RateThrottle(BaseThrottle):
    """Base of every request-rate limit: subclasses give the rate and the key."""

    scope = ""

    def get_rate(self) -> str:
        raise NotImplementedError

    def get_cache_key(self, request, view) -> str | None:
        raise NotImplementedError

    def get_ident(self, request) -> str:
        return client_ip(request) or "unknown"

    def allow_request(self, request, view) -> bool:
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        self._wait = ratelimit.hit(f"{self.scope}:{key}", self.get_rate())
        return self._wait is None

    def wait(self) -> float | None:
        return getattr(self, "_wait", None)


class ApiRateThrottle(RateThrottle):
    scope = "api"

    def get_rate(self) -> str:
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request, view) -> str:
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            return f"user:{user.pk}"
        if getattr(request, "auth", None) is not None and hasattr(request.auth, "prefix"):
            return f"key:{request.auth.prefix}"
        return f"ip:{self.get_ident(request)}"
