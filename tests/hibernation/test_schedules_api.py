"""``/api/v1/hibernation/schedules``: create, list with ?cluster=, detail, change, delete, override, preview; error
shape, tenancy 404s, audit entries and constant-query lists."""

from __future__ import annotations

import pytest
import time_machine

from audit.models import AuditLog
from hibernation.actions import Audit
from hibernation.models import HibernationSchedule
from tests.conftest import client_for
from tests.factories import ClusterFactory

from .conftest import schedule_values

URL = "/api/v1/hibernation/schedules"


@pytest.fixture
def schedule(auth_client, cluster):
    response = auth_client.post(URL, {"cluster": cluster.pk, **schedule_values()}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_returns_the_schedule_with_the_clusters_zone_and_state(auth_client, cluster, user):
    response = auth_client.post(URL, {"cluster": cluster.pk, **schedule_values()}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["time_zone"] == "Europe/Berlin"
    assert body["hibernation_state"] == "awake"
    assert body["cluster_name"] == cluster.name
    assert body["next_transition"]["action"] in ("sleep", "pre-warm", "wake")
    entry = AuditLog.objects.get(action=Audit.SCHEDULE_CREATED)
    assert entry.actor_id == str(user.pk) and entry.resource_id == str(body["id"])


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"time_zone": "Europe/Atlantis"}, "time_zone"),
        ({"windows": [{"days": ["mon"], "sleep_at": "20:00", "wake_at": "24:00"}]}, "windows[0].wake_at"),
        ({"windows": [{"days": [], "sleep_at": "20:00", "wake_at": "07:00"}]}, "windows[0].days"),
        ({"pre_warm_minutes": 300}, "pre_warm_minutes"),
        (
            {
                "windows": [
                    {"days": ["fri"], "sleep_at": "20:00", "wake_at": "07:00", "wake_after_days": 3},
                    {"days": ["sat"], "sleep_at": "22:00", "wake_at": "23:00"},
                ]
            },
            "windows[1]",
        ),
    ],
)
def test_invalid_schedule_is_a_400_naming_the_field(auth_client, cluster, values, field):
    response = auth_client.post(URL, {"cluster": cluster.pk, **schedule_values(**values)}, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert field in error["message"]
    assert not HibernationSchedule.objects.exists()


def test_second_enabled_schedule_is_a_409(auth_client, cluster, schedule):
    response = auth_client.post(URL, {"cluster": cluster.pk, **schedule_values(name="again")}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"enabled": ["Another schedule of this cluster is enabled."]}


def test_another_orgs_cluster_cannot_get_a_schedule(auth_client, other_cluster):
    response = auth_client.post(URL, {"cluster": other_cluster.pk, **schedule_values()}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"cluster": ["No such cluster."]}


def test_another_orgs_schedule_is_a_404_everywhere(other_client, schedule):
    pk = schedule["id"]
    for method, path, body in [
        ("get", f"{URL}/{pk}", None),
        ("patch", f"{URL}/{pk}", {"name": "x"}),
        ("delete", f"{URL}/{pk}", None),
        ("post", f"{URL}/{pk}/override", {"state": "awake", "until": "2099-01-01T00:00:00Z"}),
        ("delete", f"{URL}/{pk}/override", None),
        ("get", f"{URL}/{pk}/preview", None),
    ]:
        response = getattr(other_client, method)(path, body, format="json")
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"
    assert other_client.get(URL).json()["count"] == 0
    assert HibernationSchedule.objects.get(pk=pk).name == "nights and weekends"


def test_list_filters_by_cluster(auth_client, user, schedule):
    other = ClusterFactory(organization=user.organization)
    auth_client.post(URL, {"cluster": other.pk, **schedule_values(name="other")}, format="json")
    assert auth_client.get(URL).json()["count"] == 2
    names = [s["name"] for s in auth_client.get(URL, {"cluster": other.pk}).json()["results"]]
    assert names == ["other"]


def test_list_query_count_is_constant(auth_client, user, django_assert_num_queries):
    for i in range(6):
        cluster = ClusterFactory(organization=user.organization, time_zone="America/New_York")
        auth_client.post(URL, {"cluster": cluster.pk, **schedule_values(name=f"s{i}")}, format="json")
    # 1: the user (JWT authentication); 2: COUNT for pagination; 3: the page of schedules joined to their clusters.
    # State, override and next transition are computed from those rows without further queries.
    with django_assert_num_queries(3):
        response = auth_client.get(URL)
    assert response.json()["count"] == 6


def test_patch_changes_and_audits(auth_client, schedule):
    response = auth_client.patch(f"{URL}/{schedule['id']}", {"pre_warm_minutes": 90}, format="json")
    assert response.status_code == 200
    assert response.json()["pre_warm_minutes"] == 90
    entry = AuditLog.objects.get(action=Audit.SCHEDULE_UPDATED)
    assert entry.before == {"pre_warm_minutes": 30} and entry.after == {"pre_warm_minutes": 90}
    bad = auth_client.patch(f"{URL}/{schedule['id']}", {"pre_warm_minutes": 241}, format="json")
    assert bad.status_code == 400 and "pre_warm_minutes" in bad.json()["error"]["fields"]
    assert HibernationSchedule.objects.get(pk=schedule["id"]).pre_warm_minutes == 90


def test_delete(auth_client, schedule):
    assert auth_client.delete(f"{URL}/{schedule['id']}").status_code == 204
    assert auth_client.get(f"{URL}/{schedule['id']}").status_code == 404
    assert AuditLog.objects.filter(action=Audit.SCHEDULE_DELETED).count() == 1


@time_machine.travel("2026-06-01T10:00:00Z", tick=False)
def test_override_set_and_cleared(user, schedule):
    auth_client = client_for(user)  # a token issued at the travelled-to time
    url = f"{URL}/{schedule['id']}/override"
    response = auth_client.post(
        url, {"state": "awake", "until": "2026-06-01T22:00:00+02:00", "reason": "demo"}, format="json"
    )
    assert response.status_code == 200
    override = response.json()["override"]
    assert override["state"] == "awake" and override["until"] == "2026-06-01T20:00:00Z"
    # Monday 20:00 Berlin is 18:00 UTC; kept awake until 20:00 UTC, the sleep happens then.
    assert response.json()["next_transition"] == {
        "at": "2026-06-01T20:00:00Z",
        "local": "2026-06-01T22:00:00+02:00",
        "action": "sleep",
    }
    assert auth_client.delete(url).status_code == 204
    assert auth_client.get(f"{URL}/{schedule['id']}").json()["override"] is None
    actions = list(
        AuditLog.objects.filter(resource_type="hibernationschedule").order_by("seq").values_list("action", flat=True)
    )
    assert actions == [Audit.SCHEDULE_CREATED, Audit.OVERRIDE_SET, Audit.OVERRIDE_CLEARED]


@time_machine.travel("2026-06-01T10:00:00Z", tick=False)
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "awake", "until": "2026-06-01T22:00:00"}, "until"),  # naive
        ({"state": "awake", "until": "tonight"}, "until"),
        ({"state": "awake"}, "until"),
        ({"state": "dozing", "until": "2026-06-01T22:00:00Z"}, "state"),
        ({"state": "asleep", "until": "2026-06-01T09:00:00Z"}, "until"),  # past
    ],
)
def test_bad_override_is_a_400_naming_the_field(user, schedule, body, field):
    auth_client = client_for(user)  # a token issued at the travelled-to time
    response = auth_client.post(f"{URL}/{schedule['id']}/override", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert HibernationSchedule.objects.get(pk=schedule["id"]).override_state == ""


def test_preview_lists_transitions_with_utc_and_local_times(auth_client, schedule):
    response = auth_client.get(f"{URL}/{schedule['id']}/preview", {"from": "2026-10-23T00:00:00Z", "days": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["time_zone"] == "Europe/Berlin"
    # Friday 20:00 CEST sleep; Monday pre-warm and wake fall after the three days; the clocks go back on Sunday.
    assert body["transitions"] == [
        {"at": "2026-10-23T04:30:00Z", "local": "2026-10-23T06:30:00+02:00", "action": "pre-warm"},
        {"at": "2026-10-23T05:00:00Z", "local": "2026-10-23T07:00:00+02:00", "action": "wake"},
        {"at": "2026-10-23T18:00:00Z", "local": "2026-10-23T20:00:00+02:00", "action": "sleep"},
    ]
    later = auth_client.get(f"{URL}/{schedule['id']}/preview", {"from": "2026-10-25T00:00:00Z", "days": 2}).json()
    assert later["transitions"][0] == {
        "at": "2026-10-26T05:30:00Z",
        "local": "2026-10-26T06:30:00+01:00",
        "action": "pre-warm",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-10-23T00:00:00"}, "from"),
        ({"from": "soon"}, "from"),
        ({"days": "0"}, "days"),
        ({"days": "99"}, "days"),
        ({"days": "x"}, "days"),
    ],
)
def test_preview_rejects_naive_times_and_bad_days(auth_client, schedule, params, field):
    response = auth_client.get(f"{URL}/{schedule['id']}/preview", params)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


@time_machine.travel("2026-06-03T12:00:00Z", tick=False)
def test_preview_starts_now_by_default(user, schedule):
    auth_client = client_for(user)  # a token issued at the travelled-to time
    body = auth_client.get(f"{URL}/{schedule['id']}/preview").json()
    assert body["from"] == "2026-06-03T12:00:00Z"
    assert body["transitions"][0]["at"] == "2026-06-03T18:00:00Z"
    # Wednesday noon to Wednesday noon: Wed, Thu, Fri (the weekend), Mon, Tue nights, each sleep, pre-warm, wake.
    assert len(body["transitions"]) == 5 * 3


def test_cluster_api_shows_the_hibernation_state(auth_client, cluster):
    body = auth_client.get(f"/api/v1/clusters/{cluster.pk}").json()
    assert body["hibernation_state"] == "awake"
