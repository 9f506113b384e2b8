"""Periodic sync: tasks take ids, skip missing/disabled accounts, and one failing account never stops the others."""

from __future__ import annotations

from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command

from accounts.models import CloudAccount
from clusters import services, tasks
from clusters.models import Cluster
from clusters.services import SyncReport
from tests.aws_fixtures import ROLE_ARN, create_eks_cluster, launch
from tests.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db


def test_beat_schedule_runs_discovery_inventory_and_prices() -> None:
    schedule = {entry["task"]: entry for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["clusters.tasks.discover_all_accounts"]["schedule"].total_seconds() == 3600
    assert schedule["clusters.tasks.sync_all_inventories"]["schedule"].total_seconds() <= 600
    assert schedule["pricing.tasks.sync_all_spot_prices"]["schedule"].total_seconds() == 600
    for entry in schedule.values():
        assert entry["options"]["expires"] < entry["schedule"].total_seconds()


def test_one_failing_account_does_not_stop_the_others(monkeypatch) -> None:
    broken, healthy = CloudAccountFactory(), CloudAccountFactory()
    CloudAccountFactory(status=CloudAccount.Status.DISABLED)
    synced: list[int] = []

    def fake_sync(*, account, **kwargs):
        if account.pk == broken.pk:
            raise RuntimeError("boom")
        synced.append(account.pk)
        return SyncReport(discovery=None, inventory=None)

    monkeypatch.setattr(services, "account_sync", fake_sync)
    assert tasks.discover_all_accounts() == 2
    assert synced == [healthy.pk]


def test_sync_task_ignores_missing_and_disabled_accounts() -> None:
    disabled = CloudAccountFactory(status=CloudAccount.Status.DISABLED)
    assert tasks.sync_account(999999) is None
    assert tasks.sync_account(disabled.pk) is None


def test_sync_accounts_command_runs_discovery_and_inventory(aws) -> None:
    account = CloudAccountFactory(role_arn=ROLE_ARN, regions=["us-east-1"])
    create_eks_cluster("us-east-1", "alpha")
    launch("us-east-1", cluster="alpha", count=2, spot=True)
    out = StringIO()
    call_command("sync_accounts", "--account", str(account.pk), stdout=out)
    assert "1 clusters (1 new" in out.getvalue()
    cluster = Cluster.objects.get(cloud_account=account, name="alpha")
    assert cluster.instances.filter(lifecycle="spot").count() == 2
    account.refresh_from_db()
    assert account.last_synced_at is not None and account.last_error == ""
