"""Console list pages and the audit CSV export with a NUL character in a filter: the filter is refused (shown, or a
400 for the export), never passed to the database, where PostgreSQL would fail on it."""

from __future__ import annotations

import pytest

from audit.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/clusters/", {"name": "a\x00b", "region": "\x00"}),
        ("/templates/", {"q": "web\x00"}),
        ("/accounts/", {"name": "\x00"}),
        ("/audit/", {"actor": "\x00", "action": "a\x00", "resource_id": "\x00", "request_id": "\x00"}),
    ],
)
def test_console_list_with_nul_in_a_filter_is_not_a_500(console, path, params):
    response = console.get(path, params)
    assert response.status_code == 200


def test_audit_export_with_nul_in_a_filter_is_400_and_not_recorded(console):
    response = console.get("/audit/export.csv", {"actor": "x\x00"})
    assert response.status_code == 400
    assert not AuditLog.objects.filter(action="audit.export").exists()


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/clusters", {"name": "a\x00b"}),
        ("/api/v1/templates", {"q": "\x00"}),
        ("/api/v1/audit", {"actor": "\x00"}),
        ("/api/v1/templates/1/instance-types", {"region": "us-east-1\x00"}),
    ],
)
def test_api_query_with_nul_is_4xx(auth_client, path, params):
    response = auth_client.get(path, params)
    assert 400 <= response.status_code < 500
    assert "error" in response.json()
