"""The seed's template endpoints: CRUD, the default, deletion in use, tenancy, audit, query counts."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from clusters.policy_services import policy_update
from templates_app.models import NodeTemplate
from tests.factories import ClusterFactory, NodeTemplateFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/templates"

FULL = {
    "name": "general",
    "description": "Most workloads",
    "architectures": ["x86_64", "arm64"],
    "instance_families": {"include": ["m*", "c7*"], "exclude": ["t*"]},
    "min_vcpu": 2,
    "max_vcpu": 16,
    "min_memory_gib": 4,
    "max_memory_gib": "64.5",
    "gpu": "exclude",
    "exclude_burstable": True,
    "exclude_bare_metal": True,
    "current_generation_only": True,
    "capacity_types": ["spot", "on-demand"],
    "spot_fallback": True,
    "fallback_restore_minutes": 45,
    "spot_diversity": True,
    "max_price_increase_pct": 15,
    "zones": ["us-east-1a", "us-east-1b"],
    "strategy": "lowest-price",
    "labels": {"team": "web", "example.com/tier": "frontend"},
    "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}],
    "max_hourly_budget": "12.50",
}


def test_create_returns_every_field_in_the_issues_shapes(auth_client, user):
    response = auth_client.post(URL, FULL, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    for key, value in FULL.items():
        if key in ("min_memory_gib", "max_memory_gib"):
            assert body[key] == float(value)
        else:
            assert body[key] == value, key
    assert body["is_default"] is True  # the organization's first template
    assert body["clusters_count"] == 0
    template = NodeTemplate.objects.get(pk=body["id"])
    assert template.organization == user.organization
    assert template.created_by == user


def test_create_with_defaults(auth_client):
    body = auth_client.post(URL, {"name": "minimal"}, format="json").json()
    assert body["architectures"] == ["x86_64"]
    assert body["capacity_types"] == ["spot", "on-demand"]
    assert body["instance_families"] == {"include": [], "exclude": []}
    assert body["max_hourly_budget"] is None
    assert body["strategy"] == "price-capacity-optimized"


def test_family_patterns_are_normalized(auth_client):
    body = auth_client.post(URL, {"name": "x", "instance_families": {"include": [" M* "]}}, format="json").json()
    assert body["instance_families"] == {"include": ["m*"], "exclude": []}


def test_get_patch_delete(auth_client, user):
    template = NodeTemplateFactory(organization=user.organization, is_default=True)
    assert auth_client.get(f"{URL}/{template.pk}").json()["name"] == template.name
    response = auth_client.patch(f"{URL}/{template.pk}", {"max_hourly_budget": "3.25", "zones": []}, format="json")
    assert response.status_code == 200
    assert response.json()["max_hourly_budget"] == "3.25"
    assert auth_client.delete(f"{URL}/{template.pk}").status_code == 204
    assert not NodeTemplate.objects.filter(pk=template.pk).exists()


def test_put_is_not_an_endpoint(auth_client, user):
    template = NodeTemplateFactory(organization=user.organization)
    assert auth_client.put(f"{URL}/{template.pk}", FULL, format="json").status_code == 405


def test_second_template_is_not_default_unless_asked(auth_client):
    first = auth_client.post(URL, {"name": "a"}, format="json").json()
    second = auth_client.post(URL, {"name": "b"}, format="json").json()
    assert (first["is_default"], second["is_default"]) == (True, False)
    third = auth_client.post(URL, {"name": "c", "is_default": True}, format="json").json()
    assert third["is_default"] is True
    assert list(NodeTemplate.objects.filter(is_default=True).values_list("name", flat=True)) == ["c"]


def test_set_default_moves_the_flag(auth_client, user):
    old = NodeTemplateFactory(organization=user.organization, is_default=True)
    new = NodeTemplateFactory(organization=user.organization)
    response = auth_client.post(f"{URL}/{new.pk}/set-default")
    assert response.status_code == 200
    assert response.json()["is_default"] is True
    old.refresh_from_db()
    assert old.is_default is False
    entry = AuditLog.objects.filter(action="node_template.set_default").get()
    assert entry.before["default_template_id"] == old.pk
    assert entry.after["default_template_id"] == new.pk
    # Idempotent: again is a no-op, without a second audit entry.
    assert auth_client.post(f"{URL}/{new.pk}/set-default").status_code == 200
    assert AuditLog.objects.filter(action="node_template.set_default").count() == 1


def test_patch_is_default_true_sets_default(auth_client, user):
    old = NodeTemplateFactory(organization=user.organization, is_default=True)
    new = NodeTemplateFactory(organization=user.organization)
    assert auth_client.patch(f"{URL}/{new.pk}", {"is_default": True}, format="json").json()["is_default"] is True
    old.refresh_from_db()
    assert not old.is_default


def test_default_cannot_be_unset_directly(auth_client, user):
    template = NodeTemplateFactory(organization=user.organization, is_default=True)
    response = auth_client.patch(f"{URL}/{template.pk}", {"is_default": False}, format="json")
    assert response.status_code == 400
    assert "is_default" in response.json()["error"]["fields"]


def test_database_refuses_two_defaults(user):
    from django.db import IntegrityError, transaction

    NodeTemplateFactory(organization=user.organization, is_default=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        NodeTemplateFactory(organization=user.organization, is_default=True)


def test_defaults_are_per_organization(user, other_user):
    NodeTemplateFactory(organization=user.organization, is_default=True)
    NodeTemplateFactory(organization=other_user.organization, is_default=True)
    assert NodeTemplate.objects.filter(is_default=True).count() == 2


def test_delete_in_use_is_409_naming_the_clusters(auth_client, user):
    template = NodeTemplateFactory(organization=user.organization)
    for name in ("prod-eu", "prod-us"):
        cluster = ClusterFactory(organization=user.organization, name=name)
        policy_update(cluster=cluster, data={"node_template": template.pk})
    response = auth_client.delete(f"{URL}/{template.pk}")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "template_in_use"
    assert "prod-eu" in error["message"] and "prod-us" in error["message"]
    assert error["fields"] == {"clusters": ["prod-eu", "prod-us"]}
    assert NodeTemplate.objects.filter(pk=template.pk).exists()
    assert auth_client.get(f"{URL}/{template.pk}").json()["clusters_count"] == 2


def test_deleting_the_default_promotes_the_oldest_remaining(auth_client, user):
    default = NodeTemplateFactory(organization=user.organization, is_default=True)
    older = NodeTemplateFactory(organization=user.organization)
    NodeTemplateFactory(organization=user.organization)
    assert auth_client.delete(f"{URL}/{default.pk}").status_code == 204
    older.refresh_from_db()
    assert older.is_default
    assert NodeTemplate.objects.filter(organization=user.organization, is_default=True).count() == 1


def test_every_change_is_audited_with_before_and_after(auth_client, user):
    template_id = auth_client.post(URL, {"name": "a", "max_hourly_budget": "1.00"}, format="json").json()["id"]
    auth_client.patch(f"{URL}/{template_id}", {"max_hourly_budget": "2.00"}, format="json")
    auth_client.patch(f"{URL}/{template_id}", {"max_hourly_budget": "2.00"}, format="json")  # no change: no entry
    auth_client.delete(f"{URL}/{template_id}")
    entries = list(AuditLog.objects.filter(resource_type="nodetemplate").order_by("seq"))
    assert [e.action for e in entries] == ["node_template.created", "node_template.updated", "node_template.deleted"]
    created, updated, deleted = entries
    assert created.before is None and created.after["max_hourly_budget"] == "1.00"
    assert (updated.before["max_hourly_budget"], updated.after["max_hourly_budget"]) == ("1.00", "2.00")
    assert deleted.before["name"] == "a" and deleted.after is None
    assert all(e.actor_id == str(user.pk) and e.organization_id == user.organization_id for e in entries)


def test_failed_change_writes_nothing(auth_client, user):
    template = NodeTemplateFactory(organization=user.organization, name="keep")
    auth_client.patch(f"{URL}/{template.pk}", {"name": "renamed", "capacity_types": []}, format="json")
    template.refresh_from_db()
    assert template.name == "keep"
    assert not AuditLog.objects.exists()


# --- Tenancy ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "payload"),
    [
        ("get", "", None),
        ("patch", "", {"name": "mine now"}),
        ("delete", "", None),
        ("post", "/set-default", None),
        ("get", "/instance-types?region=us-east-1", None),
    ],
)
def test_another_orgs_template_is_404_on_every_verb(auth_client, method, suffix, payload):
    foreign = NodeTemplateFactory(name="theirs", is_default=False)
    response = getattr(auth_client, method)(f"{URL}/{foreign.pk}{suffix}", payload, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    foreign.refresh_from_db()
    assert (foreign.name, foreign.is_default) == ("theirs", False)


def test_list_shows_only_own_templates(auth_client, user):
    mine = NodeTemplateFactory(organization=user.organization)
    NodeTemplateFactory()
    assert [t["id"] for t in auth_client.get(URL).json()["results"]] == [mine.pk]


def test_super_admin_sees_all_but_cannot_create_without_an_organization(admin_client_api):
    NodeTemplateFactory()
    NodeTemplateFactory()
    assert admin_client_api.get(URL).json()["count"] == 2
    assert admin_client_api.post(URL, {"name": "x"}, format="json").status_code == 403


def test_anonymous_is_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_list_filters(auth_client, user):
    NodeTemplateFactory(organization=user.organization, name="web-spot", is_default=True)
    NodeTemplateFactory(organization=user.organization, name="batch")
    assert [t["name"] for t in auth_client.get(URL, {"q": "web"}).json()["results"]] == ["web-spot"]
    assert [t["name"] for t in auth_client.get(URL, {"is_default": "false"}).json()["results"]] == ["batch"]


def test_list_query_count_is_constant(auth_client, user, django_assert_num_queries):
    for _ in range(5):
        template = NodeTemplateFactory(organization=user.organization)
        policy_update(cluster=ClusterFactory(organization=user.organization), data={"node_template": template.pk})
    # 1. the JWT's user, 2. COUNT for pagination, 3. the page with clusters_count (COUNT ... GROUP BY)
    with django_assert_num_queries(3):
        response = auth_client.get(URL)
    assert response.json()["count"] == 5
    assert all(t["clusters_count"] == 1 for t in response.json()["results"])


# --- Preview --------------------------------------------------------------------------------------------------


def test_preview_from_the_loaded_snapshot(auth_client, user, snapshot_catalog):
    from pricing.selectors import latest_spot_prices, on_demand_prices

    template = NodeTemplateFactory(
        organization=user.organization, instance_families={"include": ["m5"]}, current_generation_only=False
    )
    response = auth_client.get(f"{URL}/{template.pk}/instance-types", {"region": "us-east-1"})
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == "us-east-1" and body["template_id"] == template.pk
    assert body["count"] == len(body["instance_types"]) > 0
    rows = {row["instance_type"]: row for row in body["instance_types"]}
    large = rows["m5.large"]
    assert (large["vcpu"], large["memory_gib"], large["arch"]) == (2, 8.0, "x86_64")
    od = on_demand_prices("us-east-1", instance_types=["m5.large"])["m5.large"]
    spot = latest_spot_prices("us-east-1", instance_types=["m5.large"])
    assert large["on_demand_price"] == str(od)
    assert {s["zone"]: s["price"] for s in large["spot"]} == {zone: str(p) for (_, zone), p in spot.items()}
    for s in large["spot"]:
        expected = round(float((od - spot[("m5.large", s["zone"])]) / od * 100), 1)
        assert s["savings_pct"] == pytest.approx(expected, abs=0.05)
    assert large["max_savings_pct"] == max(s["savings_pct"] for s in large["spot"])
    assert all(row["instance_type"].startswith("m5") for row in body["instance_types"])


def test_preview_query_count_is_constant(auth_client, user, snapshot_catalog, django_assert_num_queries):
    wide = NodeTemplateFactory(organization=user.organization, architectures=["x86_64", "arm64"], gpu="allow")
    # 1. the JWT's user, 2. the template (tenancy-scoped, with clusters_count), 3. matching instance types,
    # 4. on-demand prices, 5. latest spot price per (type, zone)
    with django_assert_num_queries(5):
        response = auth_client.get(f"{URL}/{wide.pk}/instance-types", {"region": "us-east-1"})
    assert response.json()["count"] > 100


def test_preview_needs_a_valid_region(auth_client, user):
    template = NodeTemplateFactory(organization=user.organization)
    for params in ({}, {"region": "mars"}):
        response = auth_client.get(f"{URL}/{template.pk}/instance-types", params)
        assert response.status_code == 400
        assert "region" in response.json()["error"]["fields"]
