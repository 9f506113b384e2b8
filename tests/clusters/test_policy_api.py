"""``GET|PUT|PATCH /api/v1/clusters/{id}/policy``: defaults, validation, templates, tenancy, audit."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from clusters.models import ClusterPolicy
from clusters.policy_services import policy_for
from tests.factories import ClusterFactory, NodeTemplateFactory

pytestmark = pytest.mark.django_db


def url(cluster) -> str:
    return f"/api/v1/clusters/{cluster.pk}/policy"


@pytest.fixture
def cluster(user):
    return ClusterFactory(organization=user.organization, name="prod")


def test_get_creates_the_policy_with_defaults(auth_client, cluster, user):
    default = NodeTemplateFactory(organization=user.organization, is_default=True)
    response = auth_client.get(url(cluster))
    assert response.status_code == 200
    body = response.json()
    assert body | {"created_at": None, "updated_at": None} == {
        "cluster_id": cluster.pk,
        "optimization_enabled": False,
        "mode": "recommend",
        "node_template": None,
        "effective_node_template": {"id": default.pk, "name": default.name, "is_default": True},
        "on_demand_base": 0.0,
        "max_pool_share": 0.5,
        "max_interruption_rate": None,
        "headroom_pct": 10,
        "consolidation_policy": "when-underutilized",
        "consolidate_after": "5m",
        "disruption_budgets": [{"nodes": "10%"}],
        "maintenance_windows": [],
        "on_rebalance": "cordon",
        "uncordon_after_minutes": 60,
        "validation_delay_seconds": 15,
        "ready_timeout_minutes": 10,
        "drain_timeout_minutes": 15,
        "min_saving_pct": "5.00",
        "created_at": None,
        "updated_at": None,
    }
    assert ClusterPolicy.objects.filter(cluster=cluster).count() == 1
    auth_client.get(url(cluster))
    assert ClusterPolicy.objects.filter(cluster=cluster).count() == 1
    assert AuditLog.objects.filter(action="cluster_policy.created").count() == 1


def test_policy_for_is_get_or_create(cluster):
    assert policy_for(cluster).pk == policy_for(cluster).pk


FULL = {
    "optimization_enabled": True,
    "mode": "automatic",
    "on_demand_base": 0.25,
    "max_pool_share": 0.3,
    "max_interruption_rate": 0.1,
    "headroom_pct": 15,
    "consolidation_policy": "when-empty",
    "consolidate_after": "30s",
    "disruption_budgets": [
        {"nodes": "0", "schedule": "0 9 * * mon-fri", "duration": "8h", "reasons": ["Drifted"]},
        {"nodes": "20%"},
    ],
    "maintenance_windows": [{"schedule": "0 2 * * sun", "duration": "4h"}],
    "on_rebalance": "replace",
    "uncordon_after_minutes": None,
}


def test_put_replaces_and_patch_changes_given_fields(auth_client, cluster, user):
    template = NodeTemplateFactory(organization=user.organization)
    response = auth_client.put(url(cluster), FULL | {"node_template": template.pk}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    for key, value in FULL.items():
        assert body[key] == value, key
    assert body["node_template"] == template.pk
    assert body["effective_node_template"]["id"] == template.pk

    body = auth_client.patch(url(cluster), {"headroom_pct": 5}, format="json").json()
    assert body["headroom_pct"] == 5 and body["mode"] == "automatic"

    # PUT without a field resets it to its default.
    body = auth_client.put(url(cluster), {"mode": "automatic"}, format="json").json()
    assert body["mode"] == "automatic"
    assert body["headroom_pct"] == 10 and body["node_template"] is None
    assert body["disruption_budgets"] == [{"nodes": "10%"}]


def test_changes_are_audited_with_before_and_after(auth_client, cluster, user):
    auth_client.get(url(cluster))
    auth_client.patch(url(cluster), {"mode": "automatic"}, format="json")
    auth_client.patch(url(cluster), {"mode": "automatic"}, format="json")  # no change: no entry
    entry = AuditLog.objects.get(action="cluster_policy.updated")
    assert (entry.before["mode"], entry.after["mode"]) == ("recommend", "automatic")
    assert entry.actor_id == str(user.pk) and entry.organization_id == cluster.organization_id


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"on_demand_base": 1.5}, "on_demand_base"),
        ({"on_demand_base": -0.1}, "on_demand_base"),
        ({"max_pool_share": 0}, "max_pool_share"),
        ({"max_pool_share": 2}, "max_pool_share"),
        ({"max_interruption_rate": 1.2}, "max_interruption_rate"),
        ({"headroom_pct": 101}, "headroom_pct"),
        ({"mode": "yolo"}, "mode"),
        ({"consolidation_policy": "always"}, "consolidation_policy"),
        ({"consolidate_after": "soon"}, "consolidate_after"),
        ({"consolidate_after": "5 minutes"}, "consolidate_after"),
        ({"on_rebalance": "panic"}, "on_rebalance"),
        ({"uncordon_after_minutes": 0}, "uncordon_after_minutes"),
        ({"disruption_budgets": [{"nodes": "10%", "schedule": "not cron", "duration": "1h"}]}, "disruption_budgets"),
        ({"disruption_budgets": [{"nodes": "101%"}]}, "disruption_budgets"),
        ({"disruption_budgets": {"nodes": "1"}}, "disruption_budgets"),
        ({"maintenance_windows": [{"schedule": "0 2 * * sun"}]}, "maintenance_windows"),
        ({"maintenance_windows": [{"duration": "2h"}]}, "maintenance_windows"),
        ({"maintenance_windows": [{"schedule": "0 25 * * *", "duration": "2h"}]}, "maintenance_windows"),
        ({"node_template": 999999}, "node_template"),
    ],
)
def test_invalid_policy_is_400_with_field_errors(auth_client, cluster, payload, field):
    before = auth_client.get(url(cluster)).json()
    response = auth_client.patch(url(cluster), payload, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert auth_client.get(url(cluster)).json() == before


def test_cron_error_is_reported_per_budget(auth_client, cluster):
    budgets = [{"nodes": "10%"}, {"nodes": "0", "schedule": "0 9 * *", "duration": "8h"}]
    fields = auth_client.patch(url(cluster), {"disruption_budgets": budgets}, format="json").json()["error"]["fields"]
    assert fields["disruption_budgets"][0] == {}
    assert "5-field cron" in fields["disruption_budgets"][1]["schedule"][0]


def test_another_orgs_template_cannot_be_used(auth_client, cluster):
    foreign = NodeTemplateFactory()
    response = auth_client.patch(url(cluster), {"node_template": foreign.pk}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"node_template": ["No such template in this organization."]}


@pytest.mark.parametrize("method", ["get", "put", "patch"])
def test_another_orgs_cluster_policy_is_404(auth_client, method):
    foreign = ClusterFactory()
    response = getattr(auth_client, method)(url(foreign), {"mode": "automatic"}, format="json")
    assert response.status_code == 404
    assert not ClusterPolicy.objects.filter(cluster=foreign, mode="automatic").exists()


def test_deleting_a_cluster_deletes_its_policy_but_not_the_template(auth_client, cluster, user):
    template = NodeTemplateFactory(organization=user.organization)
    auth_client.patch(url(cluster), {"node_template": template.pk}, format="json")
    cluster.delete()
    assert not ClusterPolicy.objects.exists()
    assert auth_client.delete(f"/api/v1/templates/{template.pk}").status_code == 204


def test_optimizer_constraints_from_the_policy(cluster):
    from clusters.policy_services import optimizer_constraints, policy_update

    policy = policy_update(cluster=cluster, data={"on_demand_base": 0.3, "max_pool_share": 0.4})
    assert optimizer_constraints(policy) == {"on_demand_base": 0.3, "max_pool_share": 0.4}
    policy = policy_update(cluster=cluster, data={"max_interruption_rate": 0.1})
    assert optimizer_constraints(policy)["max_interruption_rate"] == 0.1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("validation_delay_seconds", -1),
        ("ready_timeout_minutes", 0),
        ("drain_timeout_minutes", 100000),
        ("min_saving_pct", "101"),
        ("min_saving_pct", "NaN"),
    ],
)
def test_job_settings_are_validated(auth_client, cluster, field, value):
    response = auth_client.patch(url(cluster), {field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]


def test_job_settings_are_saved(auth_client, cluster):
    response = auth_client.patch(
        url(cluster),
        {
            "validation_delay_seconds": 0,
            "ready_timeout_minutes": 5,
            "drain_timeout_minutes": 20,
            "min_saving_pct": "12.5",
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    policy = ClusterPolicy.objects.get(cluster=cluster)
    assert (policy.validation_delay_seconds, policy.ready_timeout_minutes, policy.drain_timeout_minutes) == (0, 5, 20)
    assert str(policy.min_saving_pct) == "12.50"
