"""Node templates in Django admin go through the template services: validated, audited with the admin as actor,
and the organization keeps exactly one default template."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from clusters.policy_services import policy_for, policy_update
from spotopt.errors import Conflict
from templates_app import services
from templates_app.models import NodeTemplate
from tests.admin_helpers import admin_entry, form_errors, messages_of, post_form
from tests.factories import ClusterFactory, NodeTemplateFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/templates_app/nodetemplate/add/"


def change_url(template: NodeTemplate) -> str:
    return f"/admin/templates_app/nodetemplate/{template.pk}/change/"


def defaults(org) -> list[str]:
    return list(NodeTemplate.objects.filter(organization=org, is_default=True).values_list("name", flat=True))


def test_first_template_added_in_admin_becomes_the_default(admin_web, super_admin, org):
    response = post_form(admin_web, ADD, {"organization": org.pk, "name": "general"})
    assert response.status_code == 302, form_errors(response)
    template = NodeTemplate.objects.get(organization=org)
    assert template.is_default  # the service's rule, not the form's unchecked box
    assert template.created_by == super_admin
    entry = admin_entry("node_template.created", super_admin)
    assert entry.organization_id == org.pk and entry.resource_id == str(template.pk)
    assert entry.after["name"] == "general"


def test_service_validation_is_shown_on_the_admin_form(admin_web, super_admin, org):
    response = post_form(
        admin_web,
        ADD,
        {"organization": org.pk, "name": "bad", "architectures": '["sparc"]', "labels": '{"kubernetes.io/x": "y"}'},
    )
    assert response.status_code == 200
    errors = form_errors(response)
    assert "architectures" in errors and "labels" in errors
    assert not NodeTemplate.objects.exists()
    assert not AuditLog.objects.filter(action="node_template.created").exists()


def test_duplicate_name_is_a_form_error(admin_web, org):
    NodeTemplateFactory(organization=org, name="general", is_default=True)
    response = post_form(admin_web, ADD, {"organization": org.pk, "name": "GENERAL"})
    assert response.status_code == 200
    assert "name" in form_errors(response)
    assert NodeTemplate.objects.filter(organization=org).count() == 1


def test_making_a_template_default_moves_the_flag(admin_web, super_admin, org):
    first = NodeTemplateFactory(organization=org, name="first", is_default=True)
    second = NodeTemplateFactory(organization=org, name="second")
    response = post_form(admin_web, change_url(second), {"is_default": "on", "description": "now the default"})
    assert response.status_code == 302, form_errors(response)
    assert defaults(org) == ["second"]
    first.refresh_from_db()
    assert not first.is_default
    entry = admin_entry("node_template.updated", super_admin)
    assert entry.before["is_default"] is False and entry.after["is_default"] is True


def test_unchecking_the_default_is_refused(admin_web, super_admin, org):
    template = NodeTemplateFactory(organization=org, name="only", is_default=True)
    response = post_form(admin_web, change_url(template), {"is_default": None})
    assert response.status_code == 200
    assert "is_default" in form_errors(response)
    assert defaults(org) == ["only"]
    assert not AuditLog.objects.filter(action="node_template.updated").exists()


def test_deleting_the_default_in_admin_makes_another_the_default(admin_web, super_admin, org):
    default = NodeTemplateFactory(organization=org, name="default", is_default=True)
    NodeTemplateFactory(organization=org, name="other")
    url = f"/admin/templates_app/nodetemplate/{default.pk}/delete/"
    response = admin_web.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert defaults(org) == ["other"]
    assert admin_entry("node_template.deleted", super_admin).before["name"] == "default"
    admin_entry("node_template.set_default", super_admin)


def test_bulk_delete_runs_the_service_per_template(admin_web, super_admin, org):
    default = NodeTemplateFactory(organization=org, name="a", is_default=True)
    other = NodeTemplateFactory(organization=org, name="b")
    keep = NodeTemplateFactory(organization=org, name="c")
    response = admin_web.post(
        "/admin/templates_app/nodetemplate/",
        {"action": "delete_selected", "_selected_action": [default.pk, other.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert list(NodeTemplate.objects.filter(organization=org)) == [keep]
    assert defaults(org) == ["c"]
    assert AuditLog.objects.filter(action="node_template.deleted", actor_id=str(super_admin.pk)).count() == 2


def test_a_template_in_use_is_not_deleted(admin_web, org):
    default = NodeTemplateFactory(organization=org, name="a", is_default=True)
    used = NodeTemplateFactory(organization=org, name="used")
    cluster = ClusterFactory(organization=org)
    policy_for(cluster)
    policy_update(cluster=cluster, data={"node_template": used.pk})
    response = admin_web.post(
        "/admin/templates_app/nodetemplate/",
        {"action": "delete_selected", "_selected_action": [default.pk, used.pk], "post": "yes"},
    )
    assert response.status_code == 200  # "Cannot delete": the policy protects it
    assert NodeTemplate.objects.filter(organization=org).count() == 2
    assert not AuditLog.objects.filter(action="node_template.deleted").exists()


def test_make_default_action(admin_web, super_admin, org):
    NodeTemplateFactory(organization=org, name="a", is_default=True)
    b = NodeTemplateFactory(organization=org, name="b")
    response = admin_web.post(
        "/admin/templates_app/nodetemplate/", {"action": "make_default", "_selected_action": [b.pk]}, follow=True
    )
    assert response.status_code == 200
    assert defaults(org) == ["b"]
    assert any("made default" in m for m in messages_of(response))
    admin_entry("node_template.set_default", super_admin)


def test_make_default_refuses_two_templates_of_one_organization(admin_web, org):
    NodeTemplateFactory(organization=org, name="a", is_default=True)
    b = NodeTemplateFactory(organization=org, name="b")
    c = NodeTemplateFactory(organization=org, name="c")
    response = admin_web.post(
        "/admin/templates_app/nodetemplate/",
        {"action": "make_default", "_selected_action": [b.pk, c.pk]},
        follow=True,
    )
    assert any("at most one template per organization" in m for m in messages_of(response))
    assert defaults(org) == ["a"]
    assert not AuditLog.objects.filter(action="node_template.set_default").exists()


def test_a_service_refusal_on_delete_is_a_message_not_a_500(admin_web, org, monkeypatch):
    template = NodeTemplateFactory(organization=org, name="a", is_default=True)

    def refuse(*, template, actor=None):
        raise Conflict("The template is in use by a cluster.", code="template_in_use")

    monkeypatch.setattr(services, "template_delete", refuse)
    response = admin_web.post(f"/admin/templates_app/nodetemplate/{template.pk}/delete/", {"post": "yes"}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == change_url(template)
    assert "The template is in use by a cluster." in messages_of(response)
    assert NodeTemplate.objects.filter(pk=template.pk).exists()


def test_out_of_range_numbers_are_form_errors_not_500s(admin_web, org):
    response = post_form(admin_web, ADD, {"organization": org.pk, "name": "big", "max_vcpu": str(2**31)})
    assert response.status_code == 200
    assert "max_vcpu" in form_errors(response)
    assert not NodeTemplate.objects.exists()
