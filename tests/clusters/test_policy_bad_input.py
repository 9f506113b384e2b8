"""Policy input that would overflow is a 400 (API) or a form error (console), never a 500, and nothing is saved:
durations past what a timedelta holds, JSON nested past the interpreter's recursion limit."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditLog
from clusters import disruption
from clusters.models import ClusterPolicy
from clusters.policy_services import policy_for
from tests.clusters.test_policy_console import _form
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(user):
    cluster = ClusterFactory(organization=user.organization, name="prod")
    policy_for(cluster)
    return cluster


def _unchanged(cluster) -> None:
    policy = ClusterPolicy.objects.get(cluster=cluster)
    assert policy.consolidate_after == "5m"
    assert policy.disruption_budgets == [{"nodes": "10%"}]
    assert policy.maintenance_windows == []
    assert not AuditLog.objects.filter(action="cluster_policy.updated").exists()


@pytest.mark.parametrize("value", ["99999999999h", "99999999999999999999m", "9" * 5000 + "s", "8785h"])
def test_consolidate_after_that_overflows_is_400(auth_client, cluster, value):
    response = auth_client.patch(f"/api/v1/clusters/{cluster.pk}/policy", {"consolidate_after": value}, format="json")
    assert response.status_code == 400, response.content
    assert "consolidate_after" in response.json()["error"]["fields"]
    _unchanged(cluster)


@pytest.mark.parametrize("duration", ["99999999999h", "99999999999h30m", "1" * 400 + "m", "8785h"])
@pytest.mark.parametrize("field", ["disruption_budgets", "maintenance_windows"])
def test_window_duration_that_overflows_is_400(auth_client, cluster, field, duration):
    item = {"schedule": "0 2 * * sun", "duration": duration} | ({"nodes": "1"} if field == "disruption_budgets" else {})
    response = auth_client.patch(f"/api/v1/clusters/{cluster.pk}/policy", {field: [item]}, format="json")
    assert response.status_code == 400, response.content
    assert "duration" in response.json()["error"]["fields"][field][0]
    _unchanged(cluster)


def test_a_year_is_the_longest_duration():
    assert disruption.parse_duration("8784h") is not None
    assert disruption.parse_duration("8784h1s") is None
    assert disruption.parse_window_duration("8784h") is not None
    assert disruption.parse_window_duration("8783h61m") is None


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("consolidate_after", "99999999999h"),
        ("disruption_budgets", json.dumps([{"nodes": "1", "schedule": "@daily", "duration": "99999999999h"}])),
        ("maintenance_windows", json.dumps([{"schedule": "@daily", "duration": "99999999999h"}])),
        ("disruption_budgets", "[" * 1000 + "]" * 1000),
        ("disruption_budgets", r'[{"nodes": "1\u0000"}]'),
        ("maintenance_windows", r'[{"schedule": "@daily\ud800", "duration": "1h"}]'),
        ("disruption_budgets", '[{"nodes": 1e999}]'),
    ],
)
def test_console_form_shows_overflowing_input_as_an_error(console, cluster, field, value):
    response = console.post(f"/clusters/{cluster.pk}/policy/", _form(**{field: value}))
    assert response.status_code == 400
    assert response.context["form"].errors
    _unchanged(cluster)
