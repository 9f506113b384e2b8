"""``/metrics``: Prometheus text with requests, job and step states, the agent queue and its lease latency, task
(tick) durations and the savings ledger; open in development, token-protected in production."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from agentapi.models import AgentAction
from agentapi.services import enqueue_action
from optimization.models import OptimizationJob
from savings.services import ledger_open
from spotopt.metrics import record_task_runtime
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


def test_metrics_show_the_platform(client, org):
    cluster = ClusterFactory(organization=org)
    OptimizationJob.objects.create(cluster=cluster, trigger="manual", state="succeeded")
    action = enqueue_action(cluster=cluster, type="cordon", target="node-1", actor="system:test")
    AgentAction.objects.filter(pk=action.pk).update(leased_at=action.created_at + timedelta(seconds=4))
    ledger_open(
        cluster=cluster,
        source="job",
        action_type="t",
        action_id="1",
        projected_hourly="0.5",
        spot_hourly="0.25",
        counterfactual_hourly="0.125",
        at=timezone.now(),
    )
    record_task_runtime("hibernation.tasks.tick", 0.5)
    record_task_runtime("hibernation.tasks.tick", 0.25)
    client.get("/health")
    response = client.get("/metrics")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert 'spotopt_optimization_jobs{state="succeeded"} 1.0' in text
    assert 'spotopt_agent_actions{state="pending"} 1.0' in text
    assert 'spotopt_agent_lease_latency_seconds{stat="max"} 4.0' in text
    assert 'spotopt_savings_ledger_hourly_usd{source="job"} 0.375' in text
    assert 'spotopt_savings_ledger_entries{source="job"} 1.0' in text
    assert 'spotopt_task_last_duration_seconds{task="hibernation.tasks.tick"} 0.25' in text
    assert 'spotopt_task_runs{task="hibernation.tasks.tick"} 2.0' in text
    assert 'spotopt_http_requests_total{method="GET",status="200"}' in text


def test_in_production_metrics_need_the_token(client, settings):
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404  # no token configured: closed
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics-token").status_code == 200


def test_the_planning_queue_has_its_depth_when_it_is_its_own(client, settings):
    import redis

    url = "redis://127.0.0.1:6379/11"
    broker = redis.Redis.from_url(url)
    broker.delete("celery", "planning")
    broker.rpush("planning", "a", "b", "c")
    broker.rpush("celery", "x")
    settings.CELERY_BROKER_URL = url
    settings.CELERY_PLANNING_QUEUE = "planning"
    try:
        body = client.get("/metrics").content.decode()
        assert "spotopt_celery_queue_depth 1.0" in body
        assert "spotopt_celery_planning_queue_depth 3.0" in body
        settings.CELERY_PLANNING_QUEUE = "celery"  # one queue for all: no second series
        assert "spotopt_celery_planning_queue_depth" not in client.get("/metrics").content.decode()
    finally:
        broker.delete("celery", "planning")
