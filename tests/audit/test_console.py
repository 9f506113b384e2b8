"""The console's Audit page, entry detail and CSV export."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.http import StreamingHttpResponse

from audit.models import AuditLog
from audit.services import record
from audit.views import PAGE_SIZE
from tests.audit.helpers import append
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def admin_console(client, super_admin):
    client.force_login(super_admin)
    return client


def _row_ids(html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-entry="(\d+)"', html)]


def test_login_required(client):
    response = client.get("/audit/")
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert client.get("/audit/export.csv").status_code == 302


def test_page_shows_own_org_entries_with_filters(console, org, other_user):
    mine = append(2, organization=org, action="cluster.update")
    append(1, organization=other_user.organization)
    response = console.get("/audit/")
    html = response.content.decode()
    assert response.status_code == 200
    assert _row_ids(html) == [e.pk for e in reversed(mine)]
    assert 'id="audit-filters"' in html and 'name="action"' in html and 'name="since"' in html
    assert 'name="org"' not in html  # the organization filter is for super admins only
    assert "<html" in html


def test_htmx_request_gets_the_rows_partial_alone(console, org):
    cluster = record(action="cluster.update", organization=org, resource_type="cluster", resource_id=1)
    record(action="template.update", organization=org, resource_type="template", resource_id=1)
    response = console.get("/audit/", {"action": "cluster."}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert "<html" not in html and 'id="audit-filters"' not in html
    assert _row_ids(html) == [cluster.pk]
    assert response.templates[0].name == "audit/_rows.html"


def test_invalid_filter_is_shown_not_a_500(console, org):
    append(1, organization=org)
    response = console.get("/audit/", {"since": "not a date"})
    assert response.status_code == 200
    assert "That filter was ignored." in response.content.decode()


def test_older_entries_page_through_everything_once(console, org):
    entries = append(PAGE_SIZE + 5, organization=org)
    first = console.get("/audit/", HTTP_HX_REQUEST="true").content.decode()
    assert len(_row_ids(first)) == PAGE_SIZE
    next_url = re.search(r'hx-get="([^"]+cursor=[^"]+)"', first).group(1).replace("&amp;", "&")
    second = console.get(next_url, HTTP_HX_REQUEST="true").content.decode()
    assert _row_ids(first) + _row_ids(second) == [e.pk for e in reversed(entries)]
    assert "cursor=" not in second  # the last page has no "Older entries"
    assert console.get("/audit/", {"cursor": "garbage"}).status_code == 200


def test_super_admin_sees_every_org_and_the_org_filter(admin_console, org, other_user):
    a = append(1, organization=org)[0]
    b = append(1, organization=other_user.organization)[0]
    html = admin_console.get("/audit/").content.decode()
    assert {a.pk, b.pk} <= set(_row_ids(html))
    assert org.name in html and 'name="org"' in html
    assert _row_ids(admin_console.get("/audit/", {"org": org.pk}).content.decode()) == [a.pk]


@pytest.mark.parametrize("rows", [5, 50])
def test_page_query_count_is_constant(console, org, django_assert_num_queries, rows):
    append(rows, organization=org)
    # 1. the session, 2. its user, 3. the page of entries, 4. the user's organization (the page header)
    with django_assert_num_queries(4):
        response = console.get("/audit/")
    assert len(_row_ids(response.content.decode())) == rows


@pytest.mark.parametrize("rows", [5, 50])
def test_admin_page_query_count_is_constant(admin_console, org, django_assert_num_queries, rows):
    for _ in range(rows):
        record(action="thing.update", organization=UserFactory().organization)
    # 1. the session, 2. its user, 3. the page of entries joined to their organizations
    with django_assert_num_queries(3):
        response = admin_console.get("/audit/")
    assert len(_row_ids(response.content.decode())) == rows


def test_detail_shows_the_diff(console, org):
    entry = record(
        action="template.update",
        organization=org,
        resource_type="template",
        resource_id=3,
        before={"name": "general", "spot": True, "types": ["m5.large"]},
        after={"name": "general", "spot": False, "zones": ["us-east-1a"]},
    )
    html = console.get(f"/audit/{entry.pk}/").content.decode()
    assert 'class="diff-changed"' in html and "<code>spot</code>" in html
    assert 'class="diff-added"' in html and "<code>zones</code>" in html
    assert 'class="diff-removed"' in html and "<code>types</code>" in html
    assert 'class="diff-unchanged"' in html
    assert entry.hash in html


def test_detail_of_another_orgs_entry_is_404(client, other_user, org):
    entry = append(1, organization=org)[0]
    client.force_login(other_user)
    assert client.get(f"/audit/{entry.pk}/").status_code == 404


def test_csv_export_streams_the_filtered_entries(console, org, other_user):
    wanted = append(3, organization=org, action="cluster.update")
    append(2, organization=org, action="template.update")
    append(2, organization=other_user.organization, action="cluster.update")
    record(action="cluster.update", organization=org, after={"label": '=HYPERLINK("http://evil")'})

    response = console.get("/audit/export.csv", {"action": "cluster.", "resource_type": "thing"})
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [int(r["id"]) for r in rows] == [e.pk for e in reversed(wanted)]
    first = rows[0]
    assert first["hash"] == wanted[-1].hash and first["after"] == '{"n": 3}' and first["chain"] == f"org:{org.pk}"
    # The export itself is audited, with its filters.
    export = AuditLog.objects.filter(action="audit.export").get()
    assert export.after["filters"] == {"action": "cluster.", "resource_type": "thing"}


def test_csv_cells_cannot_become_spreadsheet_formulas(console, org):
    record(action="thing.update", organization=org, actor="=cmd|' /C calc'!A0")
    body = b"".join(console.get("/audit/export.csv").streaming_content).decode()
    assert "'=cmd" in body and ",=cmd" not in body


def test_csv_export_rejects_an_invalid_filter(console):
    assert console.get("/audit/export.csv", {"since": "nope"}).status_code == 400


def test_csv_export_reads_in_chunks(console, org, monkeypatch):
    """The rows come from QuerySet.iterator(chunk_size=...), never from a list of the whole result."""
    from django.db.models.query import QuerySet

    calls = []
    original = QuerySet.iterator

    def spy(self, chunk_size=None):
        calls.append(chunk_size)
        return original(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    append(3, organization=org)
    response = console.get("/audit/export.csv")
    assert calls == []  # nothing is read before the response starts streaming
    lines = b"".join(response.streaming_content).decode().strip().splitlines()
    assert len(lines) == 1 + 3 + 1  # header, the entries, and the audit.export entry recorded before streaming
    assert calls == [2000]
