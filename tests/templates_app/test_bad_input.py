"""Template sizes past what the columns hold are a 400 naming the field (API) or a form error (console), and
nothing is saved."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from templates_app.models import NodeTemplate
from tests.templates_app.test_console import FORM

pytestmark = pytest.mark.django_db

URL = "/api/v1/templates"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_vcpu", 2**31),
        ("min_vcpu", 2**31),
        ("max_vcpu", 2**63),
        ("max_vcpu", 4097),
        ("fallback_restore_minutes", 2**31),
        ("max_price_increase_pct", 2**40),
    ],
)
def test_integers_past_their_column_are_400(auth_client, field, value):
    response = auth_client.post(URL, {"name": "big", field: value}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert not NodeTemplate.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="node_template").exists()


def test_largest_sizes_are_accepted(auth_client):
    response = auth_client.post(URL, {"name": "big", "min_vcpu": 1, "max_vcpu": 4096}, format="json")
    assert response.status_code == 201, response.content


def test_update_past_the_column_is_400_and_changes_nothing(auth_client):
    template_id = auth_client.post(URL, {"name": "t"}, format="json").json()["id"]
    response = auth_client.patch(f"{URL}/{template_id}", {"max_vcpu": 2**31}, format="json")
    assert response.status_code == 400
    assert NodeTemplate.objects.get().max_vcpu is None


def test_console_form_rejects_vcpu_past_the_column(client, user):
    client.force_login(user)
    response = client.post("/templates/new/", FORM | {"max_vcpu": str(2**31)})
    assert response.status_code == 400
    assert "max_vcpu" in response.context["form"].errors
    assert not NodeTemplate.objects.exists()
