"""Hibernation schedules in Django admin go through the schedule services: validated, audited with the admin as
actor, one enabled schedule per cluster; sleep periods are read-only."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditLog
from hibernation.actions import Audit
from hibernation.models import HibernationSchedule
from tests.admin_helpers import admin_entry, form_errors, post_form
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/hibernation/hibernationschedule/add/"
WEEKNIGHTS = [{"days": ["mon", "tue", "wed", "thu"], "sleep_at": "20:00", "wake_at": "07:00"}]


def test_schedule_added_in_admin_is_validated_saved_and_audited(admin_web, super_admin, org):
    cluster = ClusterFactory(organization=org)
    response = post_form(
        admin_web,
        ADD,
        {"cluster": cluster.pk, "name": "nights", "time_zone": "Europe/Berlin", "windows": json.dumps(WEEKNIGHTS)},
    )
    assert response.status_code == 302, form_errors(response)
    schedule = HibernationSchedule.objects.get(cluster=cluster)
    assert schedule.time_zone == "Europe/Berlin" and schedule.windows[0]["sleep_at"] == "20:00"
    entry = admin_entry(Audit.SCHEDULE_CREATED, super_admin)
    assert entry.organization_id == org.pk and entry.resource_id == str(schedule.pk)


def test_overlapping_windows_are_a_form_error_and_nothing_is_written(admin_web, org):
    cluster = ClusterFactory(organization=org)
    overlapping = [*WEEKNIGHTS, {"days": ["mon"], "sleep_at": "22:00", "wake_at": "06:00"}]
    response = post_form(
        admin_web, ADD, {"cluster": cluster.pk, "name": "bad", "time_zone": "UTC", "windows": json.dumps(overlapping)}
    )
    assert response.status_code == 200
    assert form_errors(response)
    assert not HibernationSchedule.objects.exists()
    assert not AuditLog.objects.filter(action=Audit.SCHEDULE_CREATED).exists()
