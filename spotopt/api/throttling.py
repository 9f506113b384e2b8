"""Request rate limits: ``API_RATE_LIMIT`` per user (anonymous callers: per IP; agents: per API key)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class ApiRateThrottle(SimpleRateThrottle):
    scope = "api"

    def get_rate(self) -> str:
        return settings.API_RATE_LIMIT

    def get_cache_key(self, request, view) -> str:
        user = getattr(request, "user", None)
        if user is not None and getattr(user, "is_authenticated", False):
            ident = f"user:{user.pk}"
        elif getattr(request, "auth", None) is not None and hasattr(request.auth, "prefix"):
            ident = f"key:{request.auth.prefix}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return f"throttle_api_{ident}"
