"""Django admin shows audit entries read-only."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from tests.audit.helpers import append

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_web(client, super_admin):
    client.force_login(super_admin)
    return client


def test_admin_lists_and_shows_entries(admin_web, org):
    entry = append(1, organization=org)[0]
    assert admin_web.get("/admin/audit/auditlog/").status_code == 200
    page = admin_web.get(f"/admin/audit/auditlog/{entry.pk}/change/")
    assert page.status_code == 200
    html = page.content.decode()
    assert entry.hash in html and 'name="action"' not in html  # shown, not editable


def test_admin_cannot_add_change_or_delete(admin_web, org):
    entry = append(1, organization=org)[0]
    assert admin_web.get("/admin/audit/auditlog/add/").status_code == 403
    assert admin_web.post(f"/admin/audit/auditlog/{entry.pk}/change/", {"action": "forged"}).status_code == 403
    assert admin_web.get(f"/admin/audit/auditlog/{entry.pk}/delete/").status_code == 403
    response = admin_web.post("/admin/audit/auditlog/", {"action": "delete_selected", "_selected_action": [entry.pk]})
    assert response.status_code in (200, 302)
    assert AuditLog.objects.get(pk=entry.pk).action == "thing.update"
    assert admin_web.get("/admin/audit/auditchainhead/").status_code == 200
