"""Console pages: the list with each cluster's state and next transition (constant queries), the schedule page with
its week grid and override buttons, the form with its live preview, tenancy."""

from __future__ import annotations

import pytest
import time_machine

from audit.models import AuditLog
from hibernation import services
from hibernation.actions import Audit
from hibernation.models import HibernationSchedule
from tests.factories import ClusterFactory

from .conftest import schedule_values


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def schedule(cluster):
    return services.schedule_create(cluster=cluster, values=schedule_values(holidays=["2026-06-04"]))


@time_machine.travel("2026-06-01T10:00:00Z", tick=False)
def test_list_shows_state_and_next_transition_in_constant_queries(client, user, org, django_assert_num_queries):
    client.force_login(user)
    for i in range(5):
        cluster = ClusterFactory(organization=org, time_zone="Europe/Berlin", name=f"c{i}")
        services.schedule_create(cluster=cluster, values=schedule_values(name=f"s{i}"))
    # 1: the session; 2: the user; 3: the schedules joined to their clusters (state, zone, next transition computed
    # from those rows); 4: the top bar's organization.
    with django_assert_num_queries(4):
        response = client.get("/hibernation/")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('data-testid="next"') == 5
    assert "sleep Mon 20:00" in body  # 20:00 in Berlin, the schedule's zone


@time_machine.travel("2026-06-01T10:00:00Z", tick=False)
def test_schedule_page_shows_the_week_grid_transitions_and_holidays(client, user, schedule):
    client.force_login(user)
    response = client.get(f"/hibernation/{schedule.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('<tr data-day="') == 7
    # Thursday 2026-06-04 is a holiday: all 24 hours asleep (merged with Wednesday night and Thursday night).
    thursday = html.split('data-day="2026-06-04"')[1].split("</tr>")[0]
    assert thursday.count('class="asleep"') == 24
    monday = html.split('data-day="2026-06-01"')[1].split("</tr>")[0]
    # The weekend ends Monday: asleep 00:00-06:00, pre-warm from 06:30, and asleep again from 20:00.
    assert monday.count('class="asleep"') == 6 + 4
    assert monday.count('class="pre-warm"') == 1
    assert 'class="pre-warm"' in html
    assert "2026-06-04" in html and "Keep awake for 2 h" in html and "Sleep now" in html


@time_machine.travel("2026-06-01T10:00:00Z", tick=False)
def test_override_buttons_set_and_clear_an_audited_override(client, user, schedule):
    client.force_login(user)
    response = client.post(f"/hibernation/{schedule.pk}/override/", {"state": "awake"})
    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.override_state == "awake"
    assert schedule.override_until.isoformat() == "2026-06-01T12:00:00+00:00"
    client.post(f"/hibernation/{schedule.pk}/override/clear/")
    schedule.refresh_from_db()
    assert schedule.override_state == ""
    assert AuditLog.objects.filter(action__in=[Audit.OVERRIDE_SET, Audit.OVERRIDE_CLEARED]).count() == 2


def test_create_through_the_form(console, cluster):
    response = console.post(
        "/hibernation/new/",
        {
            "cluster": cluster.pk,
            "name": "nights",
            "windows": "mon,tue,wed,thu 20:00-07:00\nfri 20:00-07:00 +3",
            "pre_warm_minutes": 45,
            "holidays": "2026-12-24, 2026-12-25",
            "keep_node_groups": "system",
            "keep_labels": "role=agent",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = HibernationSchedule.objects.get()
    assert schedule.time_zone == "Europe/Berlin"
    assert schedule.windows[1] == {"days": ["fri"], "sleep_at": "20:00", "wake_at": "07:00", "wake_after_days": 3}
    assert schedule.keep == {"node_groups": ["system"], "labels": {"role": "agent"}}
    assert schedule.holidays == ["2026-12-24", "2026-12-25"]


def test_form_errors_name_the_field_and_save_nothing(console, cluster):
    response = console.post(
        "/hibernation/new/",
        {"cluster": cluster.pk, "name": "bad", "windows": "mon 20:00-07:00\ntue 05:00-06:00", "pre_warm_minutes": 0},
    )
    assert response.status_code == 400
    assert "windows[1]" in response.content.decode()
    assert not HibernationSchedule.objects.exists()


def test_live_preview_renders_the_grid_of_the_form_values(console, cluster):
    response = console.get(
        "/hibernation/preview/",
        {"cluster": cluster.pk, "name": "x", "windows": "sat 00:00-00:00 +1", "pre_warm_minutes": 60},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert response.status_code == 200 and html.startswith('<div id="week"')
    assert "<html" not in html
    assert html.count('class="asleep"') == 23 and html.count('class="pre-warm"') == 1
    bad = console.get("/hibernation/preview/", {"cluster": cluster.pk, "name": "x", "windows": "sat 25:00-01:00"})
    assert "windows[0].sleep_at" in bad.content.decode()


def test_another_orgs_schedule_is_a_404(client, other_user, schedule):
    client.force_login(other_user)
    assert client.get(f"/hibernation/{schedule.pk}/").status_code == 404
    assert client.get(f"/hibernation/{schedule.pk}/edit/").status_code == 404
    assert client.post(f"/hibernation/{schedule.pk}/override/", {"state": "asleep"}).status_code == 404
    assert client.post(f"/hibernation/{schedule.pk}/delete/").status_code == 404
    assert HibernationSchedule.objects.filter(pk=schedule.pk, override_state="").exists()


def test_cluster_page_shows_the_hibernation_state(console, cluster):
    html = console.get(f"/clusters/{cluster.pk}/").content.decode()
    assert 'data-testid="hibernation-state"' in html and "Awake" in html
