"""The hourly cost history: each running instance priced by the one cost rule at the hour, its on-demand
equivalent, capacity by type, hours asleep; idempotent within the hour; daily and monthly roll-ups; retention;
constant queries whatever the number of clusters."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clusters.models import Cluster
from savings.models import CostRecord
from savings.services import record_costs
from tests.factories import ClusterFactory

from .conftest import add_nodes

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def test_an_hour_prices_each_running_instance_by_the_one_cost_rule(cluster):
    add_nodes(cluster, "m5.large", 2)
    add_nodes(cluster, "m5.xlarge", 1, spot=True)
    gone = add_nodes(cluster, "m5.xlarge", 1)[0]
    gone.terminated_at, gone.state = T0 - timedelta(days=1), "terminated"
    gone.save()
    report = record_costs(at=T0 + timedelta(minutes=7))
    assert report.hour == T0 and report.clusters == 1
    row = CostRecord.objects.get(cluster=cluster, step="hour")
    assert row.t == T0
    assert row.cost == Decimal("0.096") * 2 + Decimal("0.080")
    assert row.on_demand_equivalent == Decimal("0.096") * 2 + Decimal("0.192")
    assert (row.spot_node_hours, row.on_demand_node_hours) == (1, 2)
    assert (row.spot_vcpu_hours, row.on_demand_vcpu_hours) == (4, 4)
    assert (row.spot_memory_mib_hours, row.on_demand_memory_mib_hours) == (16384, 16384)
    assert row.hibernated_hours == 0 and row.nodes == 3


def test_a_sleeping_cluster_records_its_hours_asleep(cluster):
    Cluster.objects.filter(pk=cluster.pk).update(hibernation_state="asleep")
    record_costs(at=T0)
    row = CostRecord.objects.get(cluster=cluster, step="hour")
    assert (row.hibernated_hours, row.cost, row.nodes) == (1, 0, 0)


def test_recording_twice_within_the_hour_rewrites_the_same_rows(cluster):
    add_nodes(cluster, "m5.large", 1)
    record_costs(at=T0 + timedelta(minutes=1))
    add_nodes(cluster, "m5.large", 1)
    record_costs(at=T0 + timedelta(minutes=59))
    rows = CostRecord.objects.filter(cluster=cluster)
    assert sorted(rows.values_list("step", flat=True)) == ["day", "hour", "month"]
    assert all(r.cost == Decimal("0.192") for r in rows)


def test_days_and_months_are_the_sums_of_the_hours(cluster):
    add_nodes(cluster, "m5.large", 1, spot=True)
    start = datetime(2026, 2, 27, 22, tzinfo=UTC)
    for h in range(30):  # 2 hours of Feb 27, all of Feb 28, 4 hours of Mar 1
        if h == 12:
            add_nodes(cluster, "m5.large", 1)
        record_costs(at=start + timedelta(hours=h))
    days = {r.t.date().isoformat(): r for r in CostRecord.objects.filter(cluster=cluster, step="day")}
    assert [days[d].hours for d in sorted(days)] == [2, 24, 4]
    feb28 = days["2026-02-28"]
    assert feb28.cost == Decimal("0.040") * 24 + Decimal("0.096") * 14
    assert feb28.on_demand_equivalent == Decimal("0.096") * 24 + Decimal("0.096") * 14
    assert (feb28.spot_node_hours, feb28.on_demand_node_hours) == (24, 14)
    months = {r.t.strftime("%Y-%m"): r for r in CostRecord.objects.filter(cluster=cluster, step="month")}
    assert months["2026-02"].hours == 26 and months["2026-03"].hours == 4
    assert months["2026-02"].cost == days["2026-02-27"].cost + feb28.cost
    assert months["2026-03"].cost == (Decimal("0.040") + Decimal("0.096")) * 4


def test_hourly_rows_are_kept_for_the_retention_and_roll_ups_for_good(cluster, settings):
    settings.SAVINGS_HOURLY_RETENTION_DAYS = 2
    add_nodes(cluster, "m5.large", 1)
    record_costs(at=T0)
    record_costs(at=T0 + timedelta(days=2))
    assert CostRecord.objects.filter(step="hour").count() == 2
    report = record_costs(at=T0 + timedelta(days=2, hours=1))
    assert report.pruned == 1
    assert list(CostRecord.objects.filter(step="hour").values_list("t", flat=True).order_by("t")) == [
        T0 + timedelta(days=2),
        T0 + timedelta(days=2, hours=1),
    ]
    assert CostRecord.objects.filter(step="day", t=T0.replace(hour=0)).get().cost == Decimal("0.096")


def _queries_for(n: int, org) -> int:
    for _ in range(n):
        c = ClusterFactory(organization=org, region="us-east-1")
        add_nodes(c, "m5.large", 2)
        add_nodes(c, "c5.large", 1, spot=True)
    CostRecord.objects.all().delete()
    with CaptureQueriesContext(connection) as ctx:
        record_costs(at=T0)
    return len(ctx)


def test_the_hourly_task_takes_the_same_queries_for_3_or_40_clusters(catalog, org):
    few = _queries_for(3, org)
    many = _queries_for(37, org)
    assert Cluster.objects.count() == 40
    assert CostRecord.objects.filter(step="hour").count() == 40
    assert few == many, (few, many)
    assert few <= 14


def test_record_costs_command_runs_the_hour_once(cluster):
    add_nodes(cluster, "m5.large", 1)
    with time_machine.travel(T0 + timedelta(minutes=30), tick=False):
        out = io.StringIO()
        call_command("record_costs", stdout=out)
        call_command("record_costs", stdout=io.StringIO())
        assert timezone.now().tzinfo is not None
    assert "recorded 1 cluster(s), 1 running instance(s) for 2026-03-02T10:00Z" in out.getvalue()
    assert CostRecord.objects.filter(step="hour").count() == 1
