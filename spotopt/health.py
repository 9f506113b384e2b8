"""Liveness (``/health``) and readiness with details (``/health/detailed``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from .cache import failure_stats


def _timed(check: Callable[[], str | None]) -> dict:
    started = time.monotonic()
    try:
        detail = check()
        result = {"status": "ok"}
        if detail:
            result["detail"] = detail
    except Exception as exc:  # noqa: BLE001 - a health probe reports every failure instead of raising it
        result = {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.monotonic() - started) * 1000, 2)
    return result


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
    return JsonResponse(
        {"status": "ok" if healthy else "degraded", "environment": settings.ENVIRONMENT, "checks": checks},
        status=200 if healthy else 503,
    )
