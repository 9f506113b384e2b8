"""The savings ledger: an entry for each source, written through the one service, audited, idempotent; pauses while
the cluster sleeps; a restore supersedes the fallback it undoes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from audit.models import AuditLog
from clusters.models import Cluster
from savings import selectors
from savings.models import LedgerEntry
from savings.services import (
    hibernation_entry,
    ledger_close,
    ledger_open,
    ledger_pause_cluster,
    ledger_resume_cluster,
)
from spotopt.errors import ValidationFailed

from .conftest import add_nodes
from .helpers import finish_job, running

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
H = timedelta(hours=1)


def test_a_job_entry_splits_its_saving_into_spot_and_counterfactual_parts(cluster):
    old = add_nodes(cluster, "m5.large", 5)
    job, entry = finish_job(cluster, remove=old, launch=("m5.xlarge", "spot", 2), at=T0, projected=Decimal("0.33"))
    assert (entry.source, entry.action_type, entry.action_id) == ("job", "optimization_job", str(job.pk))
    # before: 5 × 0.096 on-demand; after: 2 × 0.080 spot (on-demand equivalent 2 × 0.192)
    assert entry.spot_hourly == Decimal("0.224000")  # (0.384 - 0.160) - (0.480 - 0.480)
    assert entry.counterfactual_hourly == Decimal("0.096000")  # 0.480 - 0.384
    assert entry.realized_hourly == Decimal("0.48") - Decimal("0.16")
    assert entry.projected_hourly == Decimal("0.33") and entry.baseline_hourly == Decimal("0.48")
    # the job's own figure is the ledger's
    assert job.realized_hourly_saving == entry.realized_hourly
    assert selectors.realized(entry, until=T0 + 10 * H) == Decimal("3.2")
    audit = AuditLog.objects.get(action="savings_ledger.opened", resource_id=str(entry.pk))
    assert audit.after["source"] == "job" and audit.organization_id == cluster.organization_id


def test_fallback_is_negative_while_it_lasts_and_the_restore_supersedes_it(cluster):
    spot = add_nodes(cluster, "m5.xlarge", 1, spot=True)
    fallback_job, fallback = finish_job(
        cluster, remove=spot, launch=("m5.xlarge", "on-demand", 1), at=T0, trigger="schedule", fallback=True
    )
    assert fallback.source == "fallback" and fallback.spot_hourly == Decimal("-0.112")
    assert selectors.realized(fallback, until=T0 + 5 * H) == Decimal("-0.56")
    restore_job, restore = finish_job(
        cluster,
        remove=running(cluster),
        launch=("m5.xlarge", "spot", 1),
        at=T0 + 5 * H,
        trigger="fallback-restore",
        restores=fallback_job,
    )
    fallback.refresh_from_db()
    assert fallback.ended_at == T0 + 5 * H and fallback.superseded_by_id == restore.pk
    assert restore.source == "restore"
    # measured from the fallback's baseline: spot is back, the cluster's saving is counted once
    assert restore.spot_hourly == Decimal("0") and restore.baseline_hourly == fallback.baseline_hourly
    assert selectors.realized(fallback, until=T0 + 50 * H) == Decimal("-0.56")
    assert AuditLog.objects.filter(action="savings_ledger.closed", resource_id=str(fallback.pk)).count() == 1


def test_an_interruption_replacement_is_recorded_through_the_public_service(cluster):
    entry = ledger_open(
        cluster=cluster,
        source="interruption",
        action_type="interruption",
        action_id="i-0abc",
        projected_hourly="-0.05",
        spot_hourly="-0.05",
        baseline_hourly="0.192",
        at=T0,
    )
    again = ledger_open(
        cluster=cluster,
        source="interruption",
        action_type="interruption",
        action_id="i-0abc",
        projected_hourly=1,
        at=T0,
    )
    assert again.pk == entry.pk and LedgerEntry.objects.count() == 1
    ledger_close(entry=entry, at=T0 + 2 * H)
    assert selectors.realized(entry) == Decimal("-0.1")


@pytest.mark.parametrize(
    "bad",
    [
        {"source": "magic"},
        {"projected_hourly": "lots"},
        {"projected_hourly": "NaN"},
        {"spot_hourly": True},
        {"ended_at": T0 - H},
        {"action_id": ""},
    ],
)
def test_bad_entries_are_refused_and_nothing_is_written(cluster, bad):
    values = {
        "cluster": cluster,
        "source": "interruption",
        "action_type": "interruption",
        "action_id": "x",
        "projected_hourly": "0.1",
        "at": T0,
    } | bad
    with pytest.raises(ValidationFailed):
        ledger_open(**values)
    assert not LedgerEntry.objects.exists()


def test_a_night_asleep_pauses_the_other_entries_and_is_its_own_entry(cluster):
    old = add_nodes(cluster, "m5.large", 2)
    _, job_entry = finish_job(cluster, remove=old, launch=("m5.large", "spot", 2), at=T0)
    assert job_entry.spot_hourly == Decimal("0.112")
    asleep, waking = T0 + 20 * H, T0 + 31 * H
    Cluster.objects.filter(pk=cluster.pk).update(hibernation_state="asleep")
    assert ledger_pause_cluster(cluster=cluster, at=asleep) == [job_entry.pk]
    assert ledger_pause_cluster(cluster=cluster, at=asleep) == []  # already paused
    cluster.refresh_from_db()
    late = ledger_open(
        cluster=cluster,
        source="interruption",
        action_type="interruption",
        action_id="late",
        projected_hourly=1,
        spot_hourly=1,
        at=T0 + 25 * H,
    )
    assert late.paused  # opened while asleep: counts from the wake
    night = hibernation_entry(
        cluster=cluster, period_id=7, asleep_at=asleep, waking_at=waking, hourly_cost=Decimal("0.08"), node_count=2
    )
    assert ledger_resume_cluster(cluster=cluster, at=waking) == [job_entry.pk, late.pk]
    job_entry.refresh_from_db()
    late.refresh_from_db()
    day = T0 + 48 * H
    # 48 hours less the 11 asleep
    assert selectors.realized(job_entry, until=day) == Decimal("0.112") * 37
    assert selectors.realized(late, until=day) == Decimal(17)
    assert selectors.realized(night) == Decimal("0.88")
    assert (night.source, night.spot_hourly, night.counterfactual_hourly) == ("hibernation", 0, Decimal("0.08"))
    assert AuditLog.objects.filter(action="savings_ledger.paused").count() == 1
    assert AuditLog.objects.filter(action="savings_ledger.resumed").count() == 1
