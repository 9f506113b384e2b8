"""``/metrics``: Prometheus metrics of the platform itself.

- requests: ``spotopt_http_requests_total{method,status}`` and ``spotopt_http_request_duration_seconds`` (this
  process; set ``PROMETHEUS_MULTIPROC_DIR`` to aggregate several gunicorn workers);
- read at scrape time from the database, in a fixed number of queries: optimization jobs and steps by state, agent
  actions by state (the agent queue's depth) and their lease latency over the last hour, the savings ledger's
  totals by source; the Celery broker's queue depth when it is Redis;
- tick durations: every Celery task's runtime, kept in the shared cache by the worker (``task_postrun``), so the web
  process can show the beat ticks' last and total durations.

Open in development; in production only with ``Authorization: Bearer <METRICS_TOKEN>`` (404 when no token is set).
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import redis
from django.apps import apps
from django.conf import settings
from django.core.cache import cache
from django.db.models import Avg, Count, DurationField, ExpressionWrapper, F, Max, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

REQUESTS = Counter("spotopt_http_requests", "HTTP requests served.", ["method", "status"])
LATENCY = Histogram(
    "spotopt_http_request_duration_seconds",
    "Server time per HTTP request.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
TASK_KEY = "metrics:task:{}"
TASKS_KEY = "metrics:tasks"


class MetricsMiddleware:
    """Counts requests and their server time (the metrics endpoint itself excluded)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        if request.path != "/metrics":
            LATENCY.observe(time.perf_counter() - started)
            REQUESTS.labels(request.method, str(response.status_code)).inc()
        return response


def record_task_runtime(name: str, seconds: float) -> None:
    """Called by the worker after each task (``spotopt.celery``): count, total and last runtime, in the cache."""
    key = TASK_KEY.format(name)
    current = cache.get(key) or {"count": 0, "sum": 0.0, "last": 0.0}
    cache.set(
        key,
        {"count": current["count"] + 1, "sum": current["sum"] + seconds, "last": seconds},
        timeout=None,
    )
    names = set(cache.get(TASKS_KEY) or ())
    if name not in names:
        cache.set(TASKS_KEY, sorted(names | {name}), timeout=None)


class PlatformCollector(Collector):
    """Figures read from the database and the cache at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        job = apps.get_model("optimization", "OptimizationJob")
        step = apps.get_model("optimization", "JobStep")
        action = apps.get_model("agentapi", "AgentAction")
        entry = apps.get_model("savings", "LedgerEntry")

        jobs = GaugeMetricFamily("spotopt_optimization_jobs", "Optimization jobs by state.", labels=["state"])
        for row in job.objects.values("state").annotate(n=Count("id")).order_by("state"):
            jobs.add_metric([row["state"]], row["n"])
        yield jobs

        steps = GaugeMetricFamily(
            "spotopt_optimization_job_steps", "Job steps by kind and state.", labels=["kind", "state"]
        )
        for row in step.objects.values("kind", "state").annotate(n=Count("id")).order_by("kind", "state"):
            steps.add_metric([row["kind"], row["state"]], row["n"])
        yield steps

        queue = GaugeMetricFamily(
            "spotopt_agent_actions", "Agent actions by state (the queue depth).", labels=["state"]
        )
        for row in action.objects.values("state").annotate(n=Count("id")).order_by("state"):
            queue.add_metric([row["state"]], row["n"])
        yield queue

        since = timezone.now() - timedelta(hours=1)
        wait = ExpressionWrapper(F("leased_at") - F("created_at"), output_field=DurationField())
        lease = action.objects.filter(created_at__gte=since, leased_at__isnull=False).aggregate(
            avg=Avg(wait), max=Max(wait), n=Count("id")
        )
        latency = GaugeMetricFamily(
            "spotopt_agent_lease_latency_seconds",
            "From queued to first leased, agent actions queued in the last hour.",
            labels=["stat"],
        )
        latency.add_metric(["avg"], lease["avg"].total_seconds() if lease["avg"] else 0.0)
        latency.add_metric(["max"], lease["max"].total_seconds() if lease["max"] else 0.0)
        latency.add_metric(["count"], lease["n"])
        yield latency

        ledger = GaugeMetricFamily(
            "spotopt_savings_ledger_hourly_usd",
            "Realized saving per hour of the ledger's entries in force, by source.",
            labels=["source"],
        )
        entries = GaugeMetricFamily("spotopt_savings_ledger_entries", "Ledger entries by source.", labels=["source"])
        in_force = {
            r["source"]: r
            for r in entry.objects.filter(ended_at__isnull=True)
            .values("source")
            .annotate(spot=Sum("spot_hourly"), cf=Sum("counterfactual_hourly"))
            .order_by("source")
        }
        for row in entry.objects.values("source").annotate(n=Count("id")).order_by("source"):
            entries.add_metric([row["source"]], row["n"])
            hourly = in_force.get(row["source"])
            ledger.add_metric([row["source"]], float((hourly["spot"] + hourly["cf"]) if hourly else 0))
        yield entries
        yield ledger

        depth = _broker_depth()
        if depth is not None:
            yield GaugeMetricFamily("spotopt_celery_queue_depth", "Messages waiting in the Celery queue.", value=depth)
        planning = settings.CELERY_PLANNING_QUEUE
        if planning != "celery" and (depth := _broker_depth(planning)) is not None:
            yield GaugeMetricFamily(
                "spotopt_celery_planning_queue_depth", "Plans waiting in the planning queue.", value=depth
            )

        names = cache.get(TASKS_KEY) or []
        last = GaugeMetricFamily("spotopt_task_last_duration_seconds", "Last runtime of each task.", labels=["task"])
        total = GaugeMetricFamily("spotopt_task_duration_seconds_sum", "Total runtime of each task.", labels=["task"])
        count = GaugeMetricFamily("spotopt_task_runs", "Runs of each task.", labels=["task"])
        for name, figures in sorted(cache.get_many([TASK_KEY.format(n) for n in names]).items()):
            task = name.split(":", 2)[2]
            last.add_metric([task], figures["last"])
            total.add_metric([task], figures["sum"])
            count.add_metric([task], figures["count"])
        yield last
        yield total
        yield count


def _broker_depth(queue: str = "celery") -> int | None:
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        return None
    try:
        return int(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).llen(queue))
    except (redis.RedisError, OSError):  # a broker outage must not break the scrape: the series is left out
        return None


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(PlatformCollector())
    return registry


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if settings.PRODUCTION or token:
        given = request.headers.get("Authorization", "")
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Http404
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
