"""Console pages of node templates: list, form, live preview partial, default toggle, delete."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from clusters.policy_services import policy_update
from templates_app.models import NodeTemplate
from tests.factories import ClusterFactory, NodeTemplateFactory

pytestmark = pytest.mark.django_db

FORM = {
    "name": "web",
    "architectures": ["x86_64"],
    "include_families": "m*, c7*",
    "exclude_families": "",
    "gpu": "exclude",
    "exclude_bare_metal": "on",
    "current_generation_only": "on",
    "capacity_types": ["spot", "on-demand"],
    "spot_fallback": "on",
    "fallback_restore_minutes": "30",
    "max_price_increase_pct": "10",
    "zones": "us-east-1a, us-east-1b",
    "strategy": "lowest-price",
    "labels": "team=web\nexample.com/tier=frontend",
    "taints": "dedicated=web:NoSchedule",
    "max_hourly_budget": "7.50",
}


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def test_list_page_query_count(console, user, django_assert_num_queries):
    for i in range(6):
        template = NodeTemplateFactory(organization=user.organization, is_default=(i == 0))
        policy_update(cluster=ClusterFactory(organization=user.organization), data={"node_template": template.pk})
    NodeTemplateFactory(name="someone-elses")
    # 1. session, 2. user, 3. the templates with clusters_count, 4. the organization (header's user box)
    with django_assert_num_queries(4):
        response = console.get("/templates/")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("data-template=") == 6
    assert "someone-elses" not in body
    assert body.count('data-testid="default-badge"') == 1


def test_create_through_the_form(console, user):
    response = console.post("/templates/new/", FORM)
    assert response.status_code == 302
    template = NodeTemplate.objects.get(organization=user.organization)
    assert template.instance_families == {"include": ["m*", "c7*"], "exclude": []}
    assert template.zones == ["us-east-1a", "us-east-1b"]
    assert template.labels == {"team": "web", "example.com/tier": "frontend"}
    assert template.taints == [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]
    assert str(template.max_hourly_budget) == "7.50"
    assert template.is_default
    assert AuditLog.objects.filter(action="node_template.created", actor_id=str(user.pk)).exists()


def test_form_shows_service_errors_on_the_fields(console):
    response = console.post("/templates/new/", FORM | {"include_families": "zz*", "capacity_types": []})
    assert response.status_code == 400
    form = response.context["form"]
    assert "matches no known instance family" in form.errors["include_families"][0]
    assert "capacity_types" in form.errors
    assert not NodeTemplate.objects.exists()


def test_form_rejects_malformed_taint_lines(console):
    response = console.post("/templates/new/", FORM | {"taints": "dedicated=web"})
    assert response.status_code == 400
    assert "taints" in response.context["form"].errors


def test_edit_page_round_trips_the_template(console, user):
    console.post("/templates/new/", FORM)
    template = NodeTemplate.objects.get()
    response = console.get(f"/templates/{template.pk}/")
    assert response.status_code == 200
    initial = response.context["form"].initial
    assert initial["include_families"] == "m*, c7*"
    assert initial["taints"] == "dedicated=web:NoSchedule"
    response = console.post(f"/templates/{template.pk}/", FORM | {"is_default": "on", "max_hourly_budget": "9.00"})
    assert response.status_code == 302
    template.refresh_from_db()
    assert str(template.max_hourly_budget) == "9.00"


def test_live_preview_partial_reflects_unsaved_form_values(console, catalog):
    response = console.get("/templates/preview/", FORM | {"include_families": "m5", "zones": "", "region": "us-east-1"})
    assert response.status_code == 200
    assert [t.name for t in response.templates] == ["templates_app/_preview.html"]
    preview = response.context["preview"]
    assert {row["instance_type"] for row in preview["instance_types"]} == {"m5.large", "m5.xlarge"}
    assert "0.040000" in response.content.decode()


def test_live_preview_lists_problems_instead_of_results(console, catalog):
    response = console.get("/templates/preview/", FORM | {"min_vcpu": "8", "max_vcpu": "2"})
    assert response.status_code == 200
    assert response.context["preview"] is None
    assert response.context["problems"]


def test_default_toggle(console, user):
    old = NodeTemplateFactory(organization=user.organization, is_default=True)
    new = NodeTemplateFactory(organization=user.organization)
    assert console.post(f"/templates/{new.pk}/default/").status_code == 302
    old.refresh_from_db()
    new.refresh_from_db()
    assert new.is_default and not old.is_default


def test_delete_in_use_shows_the_clusters(console, user):
    template = NodeTemplateFactory(organization=user.organization)
    policy_update(
        cluster=ClusterFactory(organization=user.organization, name="payments"), data={"node_template": template.pk}
    )
    response = console.post(f"/templates/{template.pk}/delete/", follow=True)
    assert "payments" in response.content.decode()
    assert NodeTemplate.objects.filter(pk=template.pk).exists()


@pytest.mark.parametrize("path", ["/templates/{pk}/", "/templates/{pk}/default/", "/templates/{pk}/delete/"])
def test_another_orgs_template_is_404_in_the_console(console, path):
    foreign = NodeTemplateFactory()
    method = console.get if path.endswith("}/") else console.post
    assert method(path.format(pk=foreign.pk)).status_code == 404


def test_console_requires_login(client):
    assert client.get("/templates/").status_code == 302


def test_form_rejects_a_malformed_budget_without_crashing(console):
    response = console.post("/templates/new/", FORM | {"max_hourly_budget": "abc"})
    assert response.status_code == 400
    assert "max_hourly_budget" in response.context["form"].errors
