"""Clusters and cluster policies in Django admin go through the clusters services; instances are the inventory's
and read-only."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from clusters.models import Cluster, ClusterPolicy
from clusters.policy_services import policy_for
from tests.admin_helpers import admin_entry, form_errors, messages_of, post_form
from tests.factories import ClusterFactory, InstanceFactory, NodeTemplateFactory

pytestmark = pytest.mark.django_db


def test_register_a_cluster_in_admin(admin_web, super_admin, org):
    data = {"organization": org.pk, "name": "edge-1", "region": "eu-west-1", "kind": "self-managed"}
    response = post_form(admin_web, "/admin/clusters/cluster/add/", data | {"time_zone": "Europe/Paris"})
    assert response.status_code == 302, form_errors(response)
    cluster = Cluster.objects.get(organization=org, name="edge-1")
    assert cluster.source == Cluster.Source.MANUAL and cluster.time_zone == "Europe/Paris"
    assert admin_entry("cluster.registered", super_admin).after["region"] == "eu-west-1"
    assert admin_entry("cluster.updated", super_admin).after["time_zone"] == "Europe/Paris"


def test_cluster_validation_is_a_form_error(admin_web, org):
    data = {"organization": org.pk, "name": "-bad name", "region": "mars", "kind": "eks", "time_zone": "UTC"}
    response = post_form(admin_web, "/admin/clusters/cluster/add/", data)
    assert response.status_code == 200
    errors = form_errors(response)
    assert "name" in errors and "region" in errors
    assert not Cluster.objects.exists()


def test_a_discovered_clusters_identity_is_not_editable_but_its_time_zone_is(admin_web, super_admin, org):
    cluster = ClusterFactory(organization=org, source=Cluster.Source.DISCOVERED, name="prod")
    url = f"/admin/clusters/cluster/{cluster.pk}/change/"
    page = admin_web.get(url)
    assert "name" not in page.context["adminform"].form.fields
    response = post_form(admin_web, url, {"time_zone": "Mars/Olympus"})
    assert response.status_code == 200 and "time_zone" in form_errors(response)
    response = post_form(admin_web, url, {"time_zone": "America/New_York", "name": "renamed"})
    assert response.status_code == 302, form_errors(response)
    cluster.refresh_from_db()
    assert (cluster.name, cluster.time_zone) == ("prod", "America/New_York")
    entry = admin_entry("cluster.updated", super_admin)
    assert (entry.before["time_zone"], entry.after["time_zone"]) == ("UTC", "America/New_York")


def test_clusters_are_not_deleted_from_admin(admin_web, org):
    cluster = ClusterFactory(organization=org)
    assert admin_web.get(f"/admin/clusters/cluster/{cluster.pk}/delete/").status_code == 403


def test_instances_are_read_only(admin_web, org):
    instance = InstanceFactory(cluster=ClusterFactory(organization=org))
    url = f"/admin/clusters/instance/{instance.pk}/change/"
    assert admin_web.get(url).status_code == 200  # view only
    assert admin_web.post(url, {"state": "terminated"}).status_code == 403
    assert admin_web.get("/admin/clusters/instance/add/").status_code == 403
    assert admin_web.get(f"/admin/clusters/instance/{instance.pk}/delete/").status_code == 403
    instance.refresh_from_db()
    assert instance.state == "running"


@pytest.fixture
def policy(org) -> ClusterPolicy:
    return policy_for(ClusterFactory(organization=org))


def policy_url(policy: ClusterPolicy) -> str:
    return f"/admin/clusters/clusterpolicy/{policy.pk}/change/"


def test_policy_change_goes_through_the_policy_service(admin_web, super_admin, org, policy):
    template = NodeTemplateFactory(organization=org, is_default=True)
    changes = {
        "optimization_enabled": "on",
        "on_demand_base": "0.25",
        "node_template": template.pk,
        "disruption_budgets": '[{"nodes": "20%"}]',
    }
    response = post_form(admin_web, policy_url(policy), changes)
    assert response.status_code == 302, form_errors(response)
    policy.refresh_from_db()
    assert policy.optimization_enabled and policy.on_demand_base == 0.25 and policy.node_template == template
    entry = admin_entry("cluster_policy.updated", super_admin)
    assert entry.before["on_demand_base"] == 0.0 and entry.after["on_demand_base"] == 0.25
    assert entry.after["disruption_budgets"] == [{"nodes": "20%"}]


def test_policy_rules_of_the_service_are_form_errors(admin_web, policy):
    response = post_form(
        admin_web,
        policy_url(policy),
        {"consolidate_after": "soon", "disruption_budgets": '[{"nodes": "lots"}]', "max_pool_share": "0"},
    )
    assert response.status_code == 200
    errors = form_errors(response)
    assert {"consolidate_after", "disruption_budgets", "max_pool_share"} <= set(errors), errors
    policy.refresh_from_db()
    assert policy.consolidate_after == "5m"
    assert not AuditLog.objects.filter(action="cluster_policy.updated").exists()


def test_another_organizations_template_is_not_offered(admin_web, policy):
    foreign = NodeTemplateFactory(is_default=True)
    response = post_form(admin_web, policy_url(policy), {"node_template": foreign.pk})
    assert response.status_code == 200 and "node_template" in form_errors(response)


def test_reset_policies_to_defaults(admin_web, super_admin, org, policy):
    ClusterPolicy.objects.filter(pk=policy.pk).update(optimization_enabled=True, headroom_pct=50)
    response = admin_web.post(
        "/admin/clusters/clusterpolicy/",
        {"action": "reset_to_defaults", "_selected_action": [policy.pk]},
        follow=True,
    )
    assert any("Reset 1" in m for m in messages_of(response))
    policy.refresh_from_db()
    assert not policy.optimization_enabled and policy.headroom_pct == 10
    assert admin_entry("cluster_policy.updated", super_admin).after["headroom_pct"] == 10


def test_policies_have_no_add_or_delete(admin_web, policy):
    assert admin_web.get("/admin/clusters/clusterpolicy/add/").status_code == 403
    assert admin_web.get(f"/admin/clusters/clusterpolicy/{policy.pk}/delete/").status_code == 403
