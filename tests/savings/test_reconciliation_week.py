"""A simulated week, hour by hour under time-machine: a job moves the cluster to spot and removes a node, a fallback
puts a node back on on-demand, a restore moves it back to spot, and a night asleep. The ledger's spot part
reconciles with the cost history's on-demand equivalent minus actual; the counterfactual parts (the node the job
removed, the night) are reported beside it; what the platform did not do shows as unexplained."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
import time_machine
from django.utils import timezone

from clusters.models import Cluster
from savings.models import CostRecord, LedgerEntry
from savings.selectors import reconciliation, savings_summary
from savings.services import (
    hibernation_entry,
    ledger_pause_cluster,
    ledger_resume_cluster,
    record_costs,
)

from .conftest import add_nodes
from .helpers import finish_job, running

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)


def _week(cluster) -> dict[str, LedgerEntry]:
    """Run the week; returns the entries by what made them."""
    entries: dict[str, LedgerEntry] = {}
    add_nodes(cluster, "m5.large", 5)  # 0.48/h, all on-demand
    fallback_job = None
    for hour in range(7 * 24):
        at = MONDAY + hour * H
        with time_machine.travel(at, tick=False):
            now = timezone.now()
            if hour == 24:  # Tuesday: five on-demand m5.large -> two spot m5.xlarge
                _, entries["job"] = finish_job(
                    cluster, remove=running(cluster), launch=("m5.xlarge", "spot", 2), at=now, projected=Decimal("0.3")
                )
            if hour == 48:  # Wednesday: one spot node falls back to on-demand
                fallback_job, entries["fallback"] = finish_job(
                    cluster,
                    remove=running(cluster)[:1],
                    launch=("m5.xlarge", "on-demand", 1),
                    at=now,
                    trigger="schedule",
                    fallback=True,
                )
            if hour == 60:  # Wednesday noon: the restore moves it back to spot
                on_demand = [i for i in running(cluster) if i.lifecycle == "on-demand"]
                _, entries["restore"] = finish_job(
                    cluster,
                    remove=on_demand,
                    launch=("m5.xlarge", "spot", 1),
                    at=now,
                    trigger="fallback-restore",
                    restores=fallback_job,
                )
            if hour == 4 * 24 + 20:  # Friday 20:00: capacity reaches zero
                sleeping = running(cluster)
                for i in sleeping:
                    i.terminated_at, i.state = now, "terminated"
                    i.save()
                Cluster.objects.filter(pk=cluster.pk).update(hibernation_state="asleep")
                ledger_pause_cluster(cluster=cluster, at=now)
                asleep_at = now
            if hour == 5 * 24 + 7:  # Saturday 07:00: capacity asked back
                Cluster.objects.filter(pk=cluster.pk).update(hibernation_state="awake")
                ledger_resume_cluster(cluster=cluster, at=now)
                add_nodes(cluster, "m5.xlarge", 2, spot=True)
                entries["hibernation"] = hibernation_entry(
                    cluster=cluster,
                    period_id=1,
                    asleep_at=asleep_at,
                    waking_at=now,
                    hourly_cost=Decimal("0.160"),
                    node_count=2,
                )
            record_costs(at=now + timedelta(minutes=1))
    return entries


def test_the_ledger_explains_the_week(cluster, user):
    entries = _week(cluster)
    assert CostRecord.objects.filter(step="hour").count() == 7 * 24
    assert CostRecord.objects.filter(step="day").count() == 7
    week_end = MONDAY + 7 * 24 * H
    with time_machine.travel(week_end, tick=False):
        report = reconciliation(user, since=MONDAY, until=week_end)
    # the history: Monday on-demand (gap 0); from Tuesday 2 × (0.192 - 0.080) = 0.224/h, except Wednesday's 12
    # hours with one node on-demand (0.112/h) and the 11 hours asleep (nothing runs)
    awake_spot_hours = 6 * 24 - 12 - 11
    expected_gap = Decimal("0.224") * awake_spot_hours + Decimal("0.112") * 12
    assert Decimal(report["history"]["spot_gap"]) == expected_gap
    assert Decimal(report["ledger_spot"]) == expected_gap
    assert report["unexplained"] == "0.000000" and report["reconciled"] is True
    # beside it: the node the job removed (0.096/h while in force) and the night (11 h × 0.16)
    assert Decimal(report["by_source"]["job"]["counterfactual"]) == Decimal("0.096") * (6 * 24 - 11)
    assert Decimal(report["by_source"]["hibernation"]["counterfactual"]) == Decimal("1.76")
    assert Decimal(report["by_source"]["fallback"]["spot"]) == Decimal("-0.112") * 12
    assert Decimal(report["by_source"]["restore"]["spot"]) == 0
    assert entries["fallback"].source == "fallback"
    # the savings totals are the ledger's: spot + counterfactual
    with time_machine.travel(week_end, tick=False):
        summary = savings_summary(user, group_by="source", since=MONDAY, until=week_end)
    realized = Decimal(summary["totals"]["realized"])
    assert realized == expected_gap + Decimal(report["counterfactual"])
    assert Decimal(summary["totals"]["cost"]) == sum(
        CostRecord.objects.filter(step="hour").values_list("cost", flat=True), Decimal(0)
    )
    assert [r["key"] for r in summary["rows"]] == ["fallback", "hibernation", "job", "restore"]


def test_spot_the_platform_did_not_buy_is_reported_as_unexplained(cluster, user):
    add_nodes(cluster, "m5.large", 1, spot=True)  # bought before the platform: no ledger entry
    for hour in range(3):
        record_costs(at=MONDAY + hour * H)
    viewer = SimpleNamespace(is_authenticated=True, is_super_admin=False, organization_id=user.organization_id)
    report = reconciliation(viewer, since=MONDAY, until=MONDAY + 3 * H)
    assert report["reconciled"] is False
    assert Decimal(report["unexplained"]) == (Decimal("0.096") - Decimal("0.040")) * 3
