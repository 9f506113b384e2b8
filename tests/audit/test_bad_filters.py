"""Audit filters that no query can use are a 400 (API, CSV export) or a shown, ignored filter (console list), never
a 500; the CSV export checks them before it streams a row or records its ``audit.export`` entry."""

from __future__ import annotations

import pytest

from audit.models import AuditLog
from tests.audit.helpers import append

pytestmark = pytest.mark.django_db

BAD_TIMES = [
    "2024-02-30",
    "2024-02-30T10:00:00Z",
    "0000-01-01",
    "0000-01-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+14:00",
    "1000-01-01",
]


@pytest.mark.parametrize("value", BAD_TIMES)
@pytest.mark.parametrize("param", ["since", "until"])
def test_api_filter_with_impossible_or_out_of_range_time_is_400(auth_client, org, param, value):
    append(2, organization=org)
    response = auth_client.get("/api/v1/audit", {param: value})
    assert response.status_code == 400, response.content
    assert param in response.json()["error"]["fields"]


def test_api_filter_with_an_offset_is_applied_in_utc(auth_client, org):
    entries = append(2, organization=org)
    cut = entries[1].created_at.isoformat()
    ids = [row["id"] for row in auth_client.get("/api/v1/audit", {"since": cut}).json()["results"]]
    assert ids == [entries[1].pk]


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def _exports() -> int:
    return AuditLog.objects.filter(action="audit.export").count()


@pytest.mark.parametrize("value", BAD_TIMES)
@pytest.mark.parametrize("param", ["since", "until"])
def test_csv_export_rejects_the_filter_before_streaming_or_recording(console, org, param, value):
    append(2, organization=org)
    response = console.get("/audit/export.csv", {param: value})
    assert response.status_code == 400
    assert not response.streaming
    assert param in response.content.decode()
    assert _exports() == 0


@pytest.mark.parametrize("value", BAD_TIMES)
def test_console_list_shows_the_bad_filter_and_ignores_it(console, org, value):
    append(1, organization=org)
    response = console.get("/audit/", {"since": value})
    assert response.status_code == 200
    assert "That filter was ignored." in response.content.decode()
    assert len(response.context["entries"]) == 1
