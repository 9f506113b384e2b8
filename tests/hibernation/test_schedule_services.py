"""Schedule writes: validation naming the field, the zone default, one enabled schedule per cluster (service and
database), overrides and their audit entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, transaction

from audit.models import AuditLog
from clusters.models import Cluster
from hibernation import services
from hibernation.actions import Audit
from hibernation.models import HibernationSchedule
from spotopt.errors import Conflict, ValidationFailed

from .conftest import schedule_values


def test_create_defaults_the_zone_to_the_clusters_and_normalises_windows(cluster, user):
    schedule = services.schedule_create(cluster=cluster, values=schedule_values(), actor=user)
    assert schedule.time_zone == "Europe/Berlin"
    assert schedule.windows[0] == {
        "days": ["mon", "tue", "wed", "thu"],
        "sleep_at": "20:00",
        "wake_at": "07:00",
        "wake_after_days": 1,
    }
    entry = AuditLog.objects.get(action=Audit.SCHEDULE_CREATED)
    assert entry.resource_id == str(schedule.pk) and entry.actor_id == str(user.pk)
    assert entry.after["windows"][1]["wake_after_days"] == 3


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"time_zone": "Nowhere/Town"}, "time_zone"),
        ({"windows": [{"days": ["mon"], "sleep_at": "8pm", "wake_at": "07:00"}]}, "windows[0].sleep_at"),
        ({"windows": [{"days": [], "sleep_at": "20:00", "wake_at": "07:00"}]}, "windows[0].days"),
        ({"pre_warm_minutes": 500}, "pre_warm_minutes"),
        ({"pre_warm_minutes": "30"}, "pre_warm_minutes"),
        ({"name": ""}, "name"),
        ({"keep": {"node_groups": "system"}}, "keep.node_groups"),
        ({"keep": {"labels": {"role": 1}}}, "keep.labels"),
        ({"colour": "blue"}, "colour"),
        (
            {
                "windows": [
                    {"days": ["mon"], "sleep_at": "20:00", "wake_at": "07:00"},
                    {"days": ["tue"], "sleep_at": "05:00", "wake_at": "06:00"},
                ]
            },
            "windows[1]",
        ),
    ],
)
def test_invalid_values_are_rejected_naming_the_field_and_nothing_is_written(cluster, values, field):
    with pytest.raises(ValidationFailed) as exc:
        services.schedule_create(cluster=cluster, values=schedule_values(**values))
    assert field in exc.value.fields
    assert exc.value.message.startswith(field)
    assert not HibernationSchedule.objects.exists()
    assert not AuditLog.objects.filter(action=Audit.SCHEDULE_CREATED).exists()


def test_second_enabled_schedule_of_a_cluster_is_a_conflict(cluster):
    services.schedule_create(cluster=cluster, values=schedule_values())
    with pytest.raises(Conflict):
        services.schedule_create(cluster=cluster, values=schedule_values(name="second"))
    disabled = services.schedule_create(cluster=cluster, values=schedule_values(name="spare", enabled=False))
    with pytest.raises(Conflict):
        services.schedule_update(schedule=disabled, values={"enabled": True})


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_two_enabled_schedules_of_one_cluster():
    from tests.factories import ClusterFactory

    cluster = ClusterFactory()
    HibernationSchedule.objects.create(cluster=cluster, name="a", time_zone="UTC")
    with pytest.raises(IntegrityError), transaction.atomic():
        HibernationSchedule.objects.create(cluster=cluster, name="b", time_zone="UTC")
    HibernationSchedule.objects.create(cluster=cluster, name="c", time_zone="UTC", enabled=False)
    assert HibernationSchedule.objects.filter(cluster=cluster).count() == 2


def test_update_audits_only_what_changed(cluster, user):
    schedule = services.schedule_create(cluster=cluster, values=schedule_values())
    services.schedule_update(schedule=schedule, values={"pre_warm_minutes": 60, "holidays": ["2026-12-24"]}, actor=user)
    entry = AuditLog.objects.get(action=Audit.SCHEDULE_UPDATED)
    assert entry.before == {"pre_warm_minutes": 30, "holidays": []}
    assert entry.after == {"pre_warm_minutes": 60, "holidays": ["2026-12-24"]}


def test_delete_is_refused_while_the_cluster_is_not_awake(cluster):
    schedule = services.schedule_create(cluster=cluster, values=schedule_values())
    Cluster.objects.filter(pk=cluster.pk).update(hibernation_state="asleep")
    schedule.cluster.refresh_from_db()
    with pytest.raises(Conflict):
        services.schedule_delete(schedule=schedule)
    Cluster.objects.filter(pk=cluster.pk).update(hibernation_state="awake")
    services.schedule_delete(schedule=schedule)
    assert not HibernationSchedule.objects.exists()
    assert AuditLog.objects.filter(action=Audit.SCHEDULE_DELETED).count() == 1


def test_override_set_clear_and_expire_are_each_audited(cluster, user):
    schedule = services.schedule_create(cluster=cluster, values=schedule_values())
    now = datetime(2026, 6, 1, 18, tzinfo=UTC)
    services.schedule_set_override(
        schedule=schedule, state="awake", until=now + timedelta(hours=2), reason="release", actor=user, now=now
    )
    schedule.refresh_from_db()
    assert (schedule.override_state, schedule.override_reason, schedule.override_by) == ("awake", "release", user.email)
    assert schedule.active_override(now).until == now + timedelta(hours=2)
    assert schedule.active_override(now + timedelta(hours=2)) is None
    assert services.schedule_clear_override(schedule=schedule, actor=user) is True
    assert services.schedule_clear_override(schedule=schedule, actor=user) is False
    services.schedule_set_override(schedule=schedule, state="asleep", until=now + timedelta(hours=1), now=now)
    schedule.refresh_from_db()
    assert services.override_expire(schedule=schedule, now=now + timedelta(minutes=59)) is False
    assert services.override_expire(schedule=schedule, now=now + timedelta(hours=1)) is True
    actions = list(
        AuditLog.objects.filter(action__startswith="hibernation_schedule.override")
        .values_list("action", flat=True)
        .order_by("seq")
    )
    assert actions == [Audit.OVERRIDE_SET, Audit.OVERRIDE_CLEARED, Audit.OVERRIDE_SET, Audit.OVERRIDE_EXPIRED]


@pytest.mark.parametrize(
    ("state", "until", "field"),
    [
        ("snooze", timedelta(hours=1), "state"),
        ("awake", timedelta(hours=-1), "until"),
        ("awake", timedelta(days=30), "until"),
        ("awake", "naive", "until"),
    ],
)
def test_invalid_overrides_name_the_field(cluster, state, until, field):
    schedule = services.schedule_create(cluster=cluster, values=schedule_values())
    now = datetime(2026, 6, 1, 18, tzinfo=UTC)
    value = datetime(2026, 6, 1, 19) if until == "naive" else now + until
    with pytest.raises(ValidationFailed) as exc:
        services.schedule_set_override(schedule=schedule, state=state, until=value, now=now)
    assert field in exc.value.fields
