"""Two ticks on two workers at once act once (PostgreSQL row locks)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from django.db import connection, connections

from agentapi.models import AgentAction
from audit.models import AuditLog
from clusters.models import Cluster
from hibernation import services
from hibernation.actions import Audit
from hibernation.models import HibernationPeriod
from hibernation.services import engine
from tests.factories import ClusterFactory, OrganizationFactory

from .conftest import WEEKNIGHTS

NIGHT = datetime(2026, 6, 1, 21, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_pg_two_ticks_at_once_start_one_sleep(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    clusters = [ClusterFactory(organization=OrganizationFactory(), time_zone="UTC") for _ in range(4)]
    for cluster in clusters:
        services.schedule_create(cluster=cluster, values={"name": "n", "windows": [WEEKNIGHTS]})
    real = engine._sleeping_capacity

    def slow(schedule):
        time.sleep(0.3)  # hold the row lock long enough for the other tick to arrive
        return real(schedule)

    monkeypatch.setattr(engine, "_sleeping_capacity", slow)
    barrier = threading.Barrier(2)
    reports: list[engine.TickReport] = []
    errors: list[BaseException] = []

    def run():
        try:
            barrier.wait()
            reports.append(engine.hibernation_tick(now=NIGHT))
        except BaseException as exc:  # noqa: BLE001 - surfaced in the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(not r.errors for r in reports), (errors, [r.errors for r in reports])
    assert AuditLog.objects.filter(action=Audit.SLEEP_STARTED).count() == 4
    assert HibernationPeriod.objects.count() == 4
    assert AgentAction.objects.filter(type="scale").count() == 4
    assert set(Cluster.objects.values_list("hibernation_state", flat=True)) == {"sleeping"}
    assert sum(r.skipped_locked for r in reports) >= 1  # they really met
