"""The data migrations that backfill the ledger: finished jobs (a fallback closed where its restore begins) and
finished sleep periods, cut out of the cluster's other entries."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.apps import apps

from hibernation.models import HibernationPeriod
from optimization.models import JobStep, OptimizationJob
from savings.models import LedgerEntry
from savings.selectors import realized

from .conftest import add_nodes

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)
jobs_backfill = importlib.import_module("optimization.migrations.0002_backfill_savings_ledger").backfill
nights_backfill = importlib.import_module("hibernation.migrations.0002_backfill_savings_ledger").backfill


def _job(cluster, removed, launched, *, at, **kw) -> OptimizationJob:
    job = OptimizationJob.objects.create(
        cluster=cluster,
        state="succeeded",
        finished_at=at,
        current_nodes={
            i.instance_id: {"instance_type": i.instance_type, "capacity_type": i.lifecycle} for i in removed
        },
        **kw,
    )
    for i in removed:
        JobStep.objects.create(job=job, kind="terminate", state="succeeded", target=i.instance_id)
    itype, capacity, n = launched
    JobStep.objects.create(
        job=job,
        kind="launch",
        state="succeeded",
        params={"offering": {"instance_type": itype, "capacity_type": capacity}},
        result={"instance_ids": [f"i-new{k}" for k in range(n)]},
    )
    return job


def test_finished_jobs_and_nights_get_their_entries(cluster):
    old = add_nodes(cluster, "m5.large", 5)
    job = _job(
        cluster,
        old,
        ("m5.xlarge", "spot", 2),
        at=T0,
        trigger="manual",
        realized_hourly_saving=Decimal("0.32"),
        projected_hourly_saving=Decimal("0.3"),
    )
    spot = add_nodes(cluster, "m5.xlarge", 1, spot=True)
    fallback = _job(
        cluster,
        spot,
        ("m5.xlarge", "on-demand", 1),
        at=T0 + 24 * H,
        trigger="schedule",
        fallback=True,
        realized_hourly_saving=Decimal("-0.112"),
    )
    od = add_nodes(cluster, "m5.xlarge", 1)
    restore = _job(
        cluster,
        od,
        ("m5.xlarge", "spot", 1),
        at=T0 + 30 * H,
        trigger="fallback-restore",
        realized_hourly_saving=Decimal("0.112"),
    )
    OptimizationJob.objects.filter(pk=fallback.pk).update(restored_by=restore)
    HibernationPeriod.objects.create(
        cluster=cluster,
        started_at=T0 + 40 * H,
        asleep_at=T0 + 41 * H,
        waking_at=T0 + 51 * H,
        awake_at=T0 + 52 * H,
        node_count=2,
        hourly_cost=Decimal("0.16"),
    )
    jobs_backfill(apps, None)
    jobs_backfill(apps, None)  # idempotent
    nights_backfill(apps, None)
    nights_backfill(apps, None)
    entries = {e.source: e for e in LedgerEntry.objects.all()}
    assert sorted(entries) == ["fallback", "hibernation", "job", "restore"]
    j = entries["job"]
    assert (j.action_id, j.started_at, j.projected_hourly) == (str(job.pk), T0, Decimal("0.3"))
    assert j.counterfactual_hourly == Decimal("0.096") and j.realized_hourly == Decimal("0.32")
    f, r = entries["fallback"], entries["restore"]
    assert f.ended_at == T0 + 30 * H and f.superseded_by_id == r.pk
    assert r.realized_hourly == Decimal("0")  # measured from the fallback's baseline
    night = entries["hibernation"]
    assert realized(night) == Decimal("1.6")
    night_pause = [[(T0 + 41 * H).isoformat(), (T0 + 51 * H).isoformat()]]
    assert j.pauses == night_pause and r.pauses == night_pause and f.pauses == []
    assert realized(LedgerEntry.objects.get(pk=j.pk), until=T0 + 60 * H) == Decimal("0.32") * 50
