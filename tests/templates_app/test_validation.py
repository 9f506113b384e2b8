"""Every validation rule of node templates is a 400 with field errors, and nothing is written."""

from __future__ import annotations

import pytest

from templates_app.models import NodeTemplate
from tests.factories import NodeTemplateFactory

pytestmark = pytest.mark.django_db
URL = "/api/v1/templates"


def _create(client, **fields):
    return client.post(URL, {"name": "general"} | fields, format="json")


def _fields(response) -> dict:
    assert response.status_code == 400, response.content
    body = response.json()["error"]
    assert body["code"] == "validation_error"
    return body["fields"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"instance_families": {"include": ["zz*"], "exclude": []}}, "instance_families"),  # unknown family
        ({"instance_families": {"include": ["m5.large"]}}, "instance_families"),  # a type, not a family
        ({"instance_families": {"include": ["m*"], "exclude": ["q9*"]}}, "instance_families"),
        ({"instance_families": {"include": "m*"}}, "instance_families"),
        ({"instance_families": {"only": ["m*"]}}, "instance_families"),
        ({"min_vcpu": 8, "max_vcpu": 2}, "min_vcpu"),  # min > max
        ({"min_memory_gib": "64", "max_memory_gib": "8"}, "min_memory_gib"),
        ({"min_vcpu": 0}, "min_vcpu"),
        ({"max_memory_gib": "-1"}, "max_memory_gib"),
        ({"capacity_types": []}, "capacity_types"),  # empty capacity types
        ({"capacity_types": ["spot", "reserved"]}, "capacity_types"),
        ({"capacity_types": ["spot", "spot"]}, "capacity_types"),
        ({"architectures": []}, "architectures"),
        ({"architectures": ["amd64"]}, "architectures"),
        ({"gpu": "maybe"}, "gpu"),
        ({"strategy": "cheapest"}, "strategy"),
        ({"zones": ["us-east-1a", "moon"]}, "zones"),
        ({"zones": ["us-east-1a", "us-east-1a"]}, "zones"),
        ({"labels": {"bad key!": "v"}}, "labels"),
        ({"labels": {"team": "a value with spaces"}}, "labels"),
        ({"labels": {"kubernetes.io/arch": "amd64"}}, "labels"),  # reserved domain
        ({"labels": ["team=web"]}, "labels"),
        ({"taints": [{"key": "dedicated", "value": "gpu", "effect": "Sometimes"}]}, "taints"),
        ({"taints": [{"key": "", "effect": "NoSchedule"}]}, "taints"),
        ({"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "a", "effect": "NoSchedule"}]}, "taints"),
        ({"taints": {"key": "a"}}, "taints"),
        ({"max_hourly_budget": "0"}, "max_hourly_budget"),
        ({"max_hourly_budget": "-5.00"}, "max_hourly_budget"),
        ({"max_hourly_budget": "12.505"}, "max_hourly_budget"),
        ({"max_hourly_budget": "twelve"}, "max_hourly_budget"),
        ({"max_hourly_budget": 12.5}, "max_hourly_budget"),  # money is a string, never a float
        ({"fallback_restore_minutes": 0}, "fallback_restore_minutes"),
        ({"max_price_increase_pct": 500}, "max_price_increase_pct"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
    ],
)
def test_invalid_template_is_400_with_field_errors(auth_client, payload, field):
    fields = _fields(_create(auth_client, **payload))
    assert field in fields
    assert NodeTemplate.objects.count() == 0


def test_unknown_family_message_names_the_pattern(auth_client):
    fields = _fields(_create(auth_client, instance_families={"include": ["m*", "zz*"], "exclude": []}))
    assert fields["instance_families"] == {"include": ['"zz*" matches no known instance family.']}


def test_min_greater_than_max_message(auth_client):
    fields = _fields(_create(auth_client, min_vcpu=16, max_vcpu=4))
    assert fields == {"min_vcpu": ["min_vcpu (16) must not exceed max_vcpu (4)."]}


def test_duplicate_name_is_rejected_case_insensitively(auth_client, user):
    NodeTemplateFactory(organization=user.organization, name="General")
    fields = _fields(_create(auth_client, name="general"))
    assert fields["name"] == ['A template named "general" already exists.']


def test_same_name_in_another_organization_is_fine(auth_client):
    NodeTemplateFactory(name="general")
    assert _create(auth_client).status_code == 201


def test_duplicate_name_on_rename(auth_client, user):
    NodeTemplateFactory(organization=user.organization, name="web")
    other = NodeTemplateFactory(organization=user.organization, name="batch")
    response = auth_client.patch(f"{URL}/{other.pk}", {"name": "WEB"}, format="json")
    assert "name" in _fields(response)
    other.refresh_from_db()
    assert other.name == "batch"


def test_template_matching_no_catalog_instance_type_is_rejected(auth_client, catalog):
    # Every clause is valid on its own; together nothing in the catalog satisfies them.
    fields = _fields(_create(auth_client, architectures=["arm64"], gpu="require"))
    assert fields == {
        "non_field_errors": [
            "This template matches no instance type in the catalog: widen the families, sizes or architectures."
        ]
    }


def test_catalog_check_on_update_too(auth_client, user, catalog):
    template = NodeTemplateFactory(organization=user.organization)
    assert "non_field_errors" in _fields(auth_client.patch(f"{URL}/{template.pk}", {"min_vcpu": 500}, format="json"))


def test_without_a_catalog_templates_can_still_be_saved(auth_client):
    # A fresh install has no prices yet: the family check uses the bundled reference data, the catalog check is off.
    assert _create(auth_client, architectures=["arm64"], gpu="require").status_code == 201


def test_patch_validates_the_merged_template(auth_client, user):
    template = NodeTemplateFactory(organization=user.organization, min_vcpu=4)
    fields = _fields(auth_client.patch(f"{URL}/{template.pk}", {"max_vcpu": 2}, format="json"))
    assert "min_vcpu" in fields


def test_malformed_json_body_is_400_not_500(auth_client):
    response = auth_client.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400
