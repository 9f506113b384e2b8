"""``Authorization: Api-Key <key>`` for the agent endpoints, and the agents' own request rate."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from spotopt.api.throttling import RateThrottle

from .models import ApiKey
from .services import agent_touch

KEYWORD = "Api-Key"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """Authenticates an agent: ``request.auth`` is its ApiKey (cluster preloaded), ``request.user`` anonymous.
    A missing, unknown or revoked key is a 401."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        keyword, _, raw = header.partition(" ")
        if keyword != KEYWORD:
            return None
        key = ApiKey.objects.for_key(raw.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        agent_touch(api_key=key)
        return AnonymousUser(), key

    def authenticate_header(self, request) -> str:
        return KEYWORD


class IsAgent(BasePermission):
    def has_permission(self, request, view) -> bool:
        return isinstance(request.auth, ApiKey)


class AgentRateThrottle(RateThrottle):
    """``AGENT_RATE_LIMIT`` per API key, separate from the operators' API rate."""

    scope = "agent"

    def get_rate(self) -> str:
        return settings.AGENT_RATE_LIMIT

    def get_cache_key(self, request, view) -> str | None:
        if isinstance(request.auth, ApiKey):
            return f"key:{request.auth.prefix}"
        return f"ip:{self.get_ident(request)}"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """Documents ``Api-Key`` in the OpenAPI schema."""

    target_class = "agentapi.authentication.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`: the cluster's agent key.",
        }
