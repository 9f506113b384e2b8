"""The cluster policy page: ``/clusters/<id>/policy/``."""

from __future__ import annotations

import json

import pytest

from clusters.models import ClusterPolicy
from tests.factories import ClusterFactory, InstanceFactory, NodeTemplateFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def _form(**overrides):
    data = {
        "optimization_enabled": "on",
        "mode": "automatic",
        "node_template": "",
        "on_demand_base": "0.2",
        "max_pool_share": "0.5",
        "max_interruption_rate": "",
        "headroom_pct": "10",
        "consolidation_policy": "when-empty",
        "consolidate_after": "5m",
        "disruption_budgets": json.dumps([{"nodes": "20%"}]),
        "maintenance_windows": "",
        "on_rebalance": "replace",
        "uncordon_after_minutes": "30",
        "validation_delay_seconds": "15",
        "ready_timeout_minutes": "10",
        "drain_timeout_minutes": "15",
        "min_saving_pct": "7.5",
    }
    return data | overrides


def test_policy_page_shows_defaults_and_allowance(console, user):
    cluster = ClusterFactory(organization=user.organization)
    for _ in range(25):
        InstanceFactory(cluster=cluster)
    response = console.get(f"/clusters/{cluster.pk}/policy/")
    assert response.status_code == 200
    assert response.context["allowance"].allowed == 3  # default budget 10% of 25 nodes, rounded up
    assert ClusterPolicy.objects.filter(cluster=cluster).exists()


def test_policy_form_saves(console, user):
    cluster = ClusterFactory(organization=user.organization)
    template = NodeTemplateFactory(organization=user.organization)
    response = console.post(f"/clusters/{cluster.pk}/policy/", _form(node_template=str(template.pk)))
    assert response.status_code == 302
    policy = ClusterPolicy.objects.get(cluster=cluster)
    assert (policy.mode, policy.on_demand_base, policy.node_template_id) == ("automatic", 0.2, template.pk)
    assert policy.disruption_budgets == [{"nodes": "20%"}]
    assert policy.uncordon_after_minutes == 30
    assert str(policy.min_saving_pct) == "7.50"


def test_policy_form_shows_errors(console, user):
    cluster = ClusterFactory(organization=user.organization)
    response = console.post(f"/clusters/{cluster.pk}/policy/", _form(disruption_budgets='[{"nodes": "lots"}]'))
    assert response.status_code == 400
    assert "disruption_budgets" in response.context["form"].errors
    response = console.post(f"/clusters/{cluster.pk}/policy/", _form(disruption_budgets="{oops"))
    assert response.status_code == 400
    assert ClusterPolicy.objects.get(cluster=cluster).mode == "recommend"


def test_another_orgs_cluster_policy_page_is_404(console):
    assert console.get(f"/clusters/{ClusterFactory().pk}/policy/").status_code == 404


def test_cluster_page_links_to_the_policy(console, user):
    cluster = ClusterFactory(organization=user.organization)
    body = console.get(f"/clusters/{cluster.pk}/").content.decode()
    assert f"/clusters/{cluster.pk}/policy/" in body
