"""Liveness (``/health``) and readiness with details (``/health/detailed``).

``/health/detailed`` tells anyone whether each dependency is up; its details (backend, latency, the error) go only to
a super admin or a request carrying ``HEALTH_TOKEN``, unless ``HEALTH_DETAILS_PUBLIC`` (the development default).
Errors are reported without hosts, ports, user or database names, whoever asks: a probe's output ends up in
dashboards and tickets.
"""

from __future__ import annotations

import hmac
import re
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.settings import api_settings

from .cache import failure_stats

# Where a dependency lives, as drivers spell it in their errors: URLs, quoted names and paths, host:port, addresses,
# "port 5432", "host=db", and dotted host names.
_LOCATION_PATTERNS = [
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "<url>"),
    (re.compile(r"\"[^\"]*\"|'[^']*'"), '"<redacted>"'),
    (re.compile(r"\[[0-9a-f:.]+\](:\d+)?", re.I), "<address>"),
    (re.compile(r"\b(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\b", re.I), "<address>"),
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "<address>"),
    (re.compile(r"(?:\b[\w.-]+|<redacted>):\d{1,5}\b"), "<address>"),
    (re.compile(r"\b(port|host|hostaddr|dbname|database|user|db)\s*[=:]?\s*[\w./-]+", re.I), r"\1 <redacted>"),
    (re.compile(r"\b[a-z0-9-]+(?:\.[a-z0-9-]+)+\b", re.I), "<host>"),
    (re.compile(r"/[\w./-]+"), "<path>"),
]


def _configured_locations() -> set[str]:
    """The configured hosts, ports, names and users of the database, cache and broker: never echoed back."""
    values: set[str] = set()
    for db in settings.DATABASES.values():
        values.update(str(db.get(key) or "") for key in ("HOST", "PORT", "NAME", "USER"))
    for url in (settings.REDIS_URL, getattr(settings, "CELERY_BROKER_URL", "")):
        if url and "://" in url:
            parts = urlsplit(url)
            values.update(str(v or "") for v in (parts.hostname, parts.port, parts.username, parts.path.strip("/")))
    return {v for v in values if len(v) >= 2}


def sanitize_error(exc: BaseException) -> str:
    """The exception's type and message with every host, port, address, path and configured name taken out."""
    text = str(exc)
    for value in sorted(_configured_locations(), key=len, reverse=True):
        text = text.replace(value, "<redacted>")
    for pattern, replacement in _LOCATION_PATTERNS:
        text = pattern.sub(replacement, text)
    text = " ".join(text.split())
    return f"{type(exc).__name__}: {text}"[:300] if text else type(exc).__name__


def _timed(check: Callable[[], str | None]) -> dict:
    started = time.monotonic()
    try:
        detail = check()
        result = {"status": "ok"}
        if detail:
            result["detail"] = detail
    except Exception as exc:  # noqa: BLE001 - a health probe reports every failure instead of raising it
        result = {"status": "down", "error": sanitize_error(exc)}
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
    return result


def _presents_health_token(request: HttpRequest) -> bool:
    token = settings.HEALTH_TOKEN
    if not token:
        return False
    presented = [request.headers.get("X-Health-Token", "")]
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        presented.append(credentials.strip())
    return any(value and hmac.compare_digest(value.encode(), token.encode()) for value in presented)


def _caller(request: HttpRequest):
    """The console session's user, else the user of an API access token (the API's own authentication)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    if not request.headers.get("Authorization"):
        return None
    drf_request = Request(request)
    for authentication in api_settings.DEFAULT_AUTHENTICATION_CLASSES:
        if authentication.__name__ == "SessionAuthentication":
            continue
        try:
            result = authentication().authenticate(drf_request)
        except APIException:
            return None
        if result is not None:
            return result[0]
    return None


def _sees_details(request: HttpRequest) -> bool:
    if settings.HEALTH_DETAILS_PUBLIC or _presents_health_token(request):
        return True
    user = _caller(request)
    return bool(user is not None and getattr(user, "is_super_admin", False))


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return connection.vendor


def _cache() -> str:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "1", timeout=5)
    if cache.get(key) != "1":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)
    return "redis" if settings.REDIS_URL else "in-process"


def _broker() -> str:
    from spotopt.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        return conn.transport_cls if isinstance(conn.transport_cls, str) else conn.transport.driver_name


def _migrations() -> str:
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        raise RuntimeError(f"{len(plan)} migration(s) not applied")
    return "up to date"


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def health_detailed(request: HttpRequest) -> JsonResponse:
    checks = {
        "database": _timed(_database),
        # With the failures that failed open since this process started (the API kept answering through them).
        "cache": _timed(_cache) | {"failed_open": failure_stats()},
        "broker": _timed(_broker),
        "migrations": _timed(_migrations),
    }
    healthy = all(c["status"] == "ok" for c in checks.values())
    body: dict = {"status": "ok" if healthy else "degraded"}
    if _sees_details(request):
        body.update(environment=settings.ENVIRONMENT, checks=checks)
    else:
        body["checks"] = {name: {"status": check["status"]} for name, check in checks.items()}
    return JsonResponse(body, status=200 if healthy else 503)
