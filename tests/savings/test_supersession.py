"""A later job that removes nodes an earlier job launched supersedes the earlier entry: it closes at that moment, the
removed nodes' part is carried into the later entry (measured from the earlier baseline), the part still in force
continues in a carry-forward entry. No node-hour is credited twice, and the ledger still reconciles with the cost
history (time-machine, hour by hour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditLog
from savings.models import CostRecord, LedgerEntry
from savings.selectors import reconciliation, savings_summary
from savings.services import record_costs

from .conftest import add_nodes
from .helpers import finish_job, running

pytestmark = pytest.mark.django_db

MONDAY = datetime(2026, 3, 2, tzinfo=UTC)
H = timedelta(hours=1)


def _run(cluster, hours: int, actions: dict) -> dict:
    """Record the cost history hour by hour; ``actions[hour](now)`` runs at the hour's start."""
    out = {}
    for hour in range(hours):
        with time_machine.travel(MONDAY + hour * H, tick=False):
            now = timezone.now()
            if hour in actions:
                out[hour] = actions[hour](now)
            record_costs(at=now + timedelta(minutes=1))
    return out


def _check_reconciles(user, until):
    with time_machine.travel(until, tick=False):
        report = reconciliation(user, since=MONDAY, until=until)
        summary = savings_summary(user, group_by="source", since=MONDAY, until=until)
    gap = Decimal(report["history"]["spot_gap"])
    assert Decimal(report["ledger_spot"]) == gap
    assert report["unexplained"] == "0.000000" and report["reconciled"] is True
    assert Decimal(summary["totals"]["realized"]) == gap + Decimal(report["counterfactual"])
    return report, summary


def _credited_twice(cluster) -> set[str]:
    """Instance ids that two open entries both credit."""
    seen: set[str] = set()
    twice: set[str] = set()
    for entry in LedgerEntry.objects.filter(cluster=cluster, ended_at__isnull=True):
        for iid in entry.detail.get("launched_nodes", {}):
            (twice if iid in seen else seen).add(iid)
    return twice


def test_a_consolidation_of_an_earlier_jobs_nodes_supersedes_its_entry(cluster, user):
    add_nodes(cluster, "m5.large", 4)  # 0.384/h on-demand

    def job_a(now):  # on-demand -> spot: 4 × (0.096 - 0.040) = 0.224/h
        return finish_job(cluster, remove=running(cluster), launch=("m5.large", "spot", 4), at=now)

    def job_b(now):  # a day later: A's four spot m5.large -> one spot m5.xlarge
        return finish_job(cluster, remove=running(cluster), launch=("m5.xlarge", "spot", 1), at=now)

    done = _run(cluster, 72, {1: job_a, 25: job_b})
    (_, a), (job, b) = done[1], done[25]
    a.refresh_from_db()
    assert a.ended_at == MONDAY + 25 * H and a.superseded_by_id == b.pk
    assert a.spot_hourly == Decimal("0.224")
    # B is measured from A's baseline: against the four on-demand nodes, the cluster now saves
    # (0.192 - 0.080) on spot and 0.384 - 0.192 of on-demand equivalent
    assert b.spot_hourly == Decimal("0.112") and b.counterfactual_hourly == Decimal("0.192")
    assert b.baseline_hourly == Decimal("0.384")
    assert job.realized_hourly_saving == Decimal("0.304")  # 0.384 on-demand before A - 0.080 now
    # one entry in force, nothing carried forward (A's nodes all went), no node credited twice
    assert list(LedgerEntry.objects.filter(cluster=cluster, ended_at__isnull=True)) == [b]
    assert LedgerEntry.objects.count() == 2
    assert AuditLog.objects.filter(action="savings_ledger.closed", resource_id=str(a.pk)).count() == 1
    report, _ = _check_reconciles(user, MONDAY + 72 * H)
    # A for 24 hours, then B for 47
    assert Decimal(report["by_source"]["job"]["spot"]) == Decimal("0.224") * 24 + Decimal("0.112") * 47
    assert Decimal(report["counterfactual"]) == Decimal("0.192") * 47


def test_a_partial_consolidation_carries_forward_the_part_still_in_force(cluster, user):
    add_nodes(cluster, "m5.large", 4)

    def job_a(now):
        return finish_job(cluster, remove=running(cluster), launch=("m5.large", "spot", 4), at=now)

    def job_b(now):  # two of A's four nodes -> one spot m5.xlarge
        return finish_job(cluster, remove=running(cluster)[:2], launch=("m5.xlarge", "spot", 1), at=now)

    def job_c(now):  # one of A's two remaining nodes is removed (its pods fit elsewhere)
        a_nodes = [i for i in running(cluster) if i.instance_type == "m5.large"]
        return finish_job(cluster, remove=a_nodes[:1], launch=("m5.large", "spot", 0), at=now)

    done = _run(cluster, 72, {1: job_a, 25: job_b, 49: job_c})
    (_, a), (job_b_row, b), (job_c_row, c) = done[1], done[25], done[49]
    a.refresh_from_db()
    assert a.ended_at == MONDAY + 25 * H and a.superseded_by_id == b.pk
    rest = LedgerEntry.objects.get(action_id=f"{a.action_id}~{job_b_row.pk}")
    # half of A (its two remaining nodes) stays in force from B on
    assert (rest.source, rest.started_at) == ("job", MONDAY + 25 * H)
    assert rest.spot_hourly == Decimal("0.112") and rest.baseline_hourly == Decimal("0.192")
    assert b.spot_hourly == Decimal("0.112")  # A's half (0.112) + its own 0 (spot for spot, same capacity)
    assert b.counterfactual_hourly == 0
    # C removes one of the carried nodes: the carry-forward splits again, keeping A's id as its root
    rest.refresh_from_db()
    assert rest.ended_at == MONDAY + 49 * H and rest.superseded_by_id == c.pk
    rest2 = LedgerEntry.objects.get(action_id=f"{a.action_id}~{job_c_row.pk}")
    assert rest2.spot_hourly == Decimal("0.056") and len(rest2.detail["launched_nodes"]) == 1
    assert c.spot_hourly == Decimal("0") and c.counterfactual_hourly == Decimal("0.096")
    assert not _credited_twice(cluster)
    # the entries in force explain the cluster as it runs: one spot m5.xlarge and one spot m5.large
    in_force = LedgerEntry.objects.filter(ended_at__isnull=True)
    assert sum((e.spot_hourly for e in in_force), Decimal(0)) == Decimal("0.112") + Decimal("0.056")
    _check_reconciles(user, MONDAY + 72 * H)


def test_an_interruption_replacement_supersedes_the_entry_that_credited_the_node(cluster, user):
    add_nodes(cluster, "m5.large", 2)

    def job_a(now):
        return finish_job(cluster, remove=running(cluster), launch=("m5.large", "spot", 2), at=now)

    def replace(now):  # one of A's spot nodes is interrupted and replaced by a spot m5.xlarge
        return finish_job(
            cluster, remove=running(cluster)[:1], launch=("m5.xlarge", "spot", 1), at=now, trigger="interruption"
        )

    done = _run(cluster, 48, {1: job_a, 20: replace})
    (_, a), (_, r) = done[1], done[20]
    a.refresh_from_db()
    assert r.source == "interruption" and a.superseded_by_id == r.pk
    # the replacement: A's half (0.056) + its own (0.112 - 0.056) spot, and a bigger node (-0.096 of baseline)
    assert r.spot_hourly == Decimal("0.112") and r.counterfactual_hourly == Decimal("-0.096")
    assert not _credited_twice(cluster)
    _check_reconciles(user, MONDAY + 48 * H)


def test_a_spot_warning_replacement_supersedes_the_entry_of_the_node_aws_took_back(cluster, user):
    add_nodes(cluster, "m5.large", 2)

    def job_a(now):
        return finish_job(cluster, remove=running(cluster), launch=("m5.large", "spot", 2), at=now)

    def replace(now):  # AWS takes one spot node back; the replacement job launches another, removes nothing
        taken = running(cluster)[0]
        taken.terminated_at, taken.state = now, "terminated"
        taken.save()
        return finish_job(
            cluster,
            remove=[],
            launch=("m5.large", "spot", 1),
            at=now,
            trigger="interruption",
            plan={"interrupted_instance_id": taken.instance_id},
        )

    done = _run(cluster, 30, {1: job_a, 12: replace})
    (_, a), (job_r, r) = done[1], done[12]
    a.refresh_from_db()
    assert a.superseded_by_id == r.pk and a.ended_at == MONDAY + 12 * H
    # spot for spot in the node's place: the replacement carries A's half and adds nothing of its own
    assert r.spot_hourly == Decimal("0.056") and r.counterfactual_hourly == 0
    rest = LedgerEntry.objects.get(action_id=f"{a.action_id}~{job_r.pk}")
    assert rest.spot_hourly == Decimal("0.056")
    assert not _credited_twice(cluster)
    _check_reconciles(user, MONDAY + 30 * H)


def test_entries_written_before_supersession_are_found_through_their_jobs_steps(cluster, user):
    add_nodes(cluster, "m5.large", 2)

    def job_a(now):
        job, entry = finish_job(cluster, remove=running(cluster), launch=("m5.large", "spot", 2), at=now)
        LedgerEntry.objects.filter(pk=entry.pk).update(detail={"removed": 2, "launched": 2})  # as backfilled
        return job, entry

    def job_b(now):
        return finish_job(cluster, remove=running(cluster), launch=("m5.xlarge", "spot", 1), at=now)

    done = _run(cluster, 30, {1: job_a, 10: job_b})
    (_, a), (_, b) = done[1], done[10]
    a.refresh_from_db()
    assert a.superseded_by_id == b.pk and a.ended_at == MONDAY + 10 * H
    assert b.spot_hourly == Decimal("0.112")
    _check_reconciles(user, MONDAY + 30 * H)


def test_a_fallback_does_not_supersede_the_job_whose_node_it_replaced(cluster):
    add_nodes(cluster, "m5.large", 2)
    at = MONDAY
    _, a = finish_job(cluster, remove=running(cluster), launch=("m5.large", "spot", 2), at=at)
    _, fallback = finish_job(
        cluster, remove=running(cluster)[:1], launch=("m5.large", "on-demand", 1), at=at + H, fallback=True
    )
    a.refresh_from_db()
    assert a.ended_at is None  # negative while it lasts; the restore closes it
    assert fallback.spot_hourly == Decimal("-0.056")


def test_the_summary_sums_whole_days_from_their_roll_ups_and_the_hours_around_them(cluster, user):
    add_nodes(cluster, "m5.large", 2)  # 0.192/h on-demand
    for hour in range(3 * 24):
        record_costs(at=MONDAY + hour * H + timedelta(minutes=1))
    since, until = MONDAY + 5 * H, MONDAY + 2 * 24 * H + 7 * H  # 19 h, a whole day, 7 h
    with time_machine.travel(until, tick=False):
        before = savings_summary(user, group_by="day", since=since, until=until)["totals"]
    assert Decimal(before["cost"]) == Decimal("0.192") * (19 + 24 + 7)
    # the whole day's hours gone (as pruned): its roll-up still counts it, the edges still come from the hours
    CostRecord.objects.filter(step="hour", t__gte=MONDAY + 24 * H, t__lt=MONDAY + 48 * H).delete()
    with time_machine.travel(until, tick=False):
        after = savings_summary(user, group_by="day", since=since, until=until)["totals"]
    assert after == before
    # a window inside one day reads the hours alone
    with time_machine.travel(until, tick=False):
        inside = savings_summary(user, group_by="day", since=MONDAY + 2 * H, until=MONDAY + 5 * H)["totals"]
    assert Decimal(inside["cost"]) == Decimal("0.192") * 3
