"""``/api/v1/audit``: filters, cursor pagination, tenancy, read-only verbs, query counts and the verify verdict."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from audit.models import AuditLog, chain_key
from audit.services import record
from tests.audit.helpers import append, tamper
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/audit"


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_client_lists_own_org_entries_newest_first(auth_client, org, other_user):
    mine = append(3, organization=org)
    append(2, organization=other_user.organization)
    append(1)  # platform
    body = auth_client.get(URL).json()
    assert [row["id"] for row in body["results"]] == [e.pk for e in reversed(mine)]
    row = body["results"][0]
    assert row["organization"] == org.pk and row["chain"] == f"org:{org.pk}" and row["hash"] == mine[-1].hash
    assert set(row) >= {"actor_type", "actor_label", "before", "after", "ip", "user_agent", "request_id", "prev_hash"}


def test_super_admin_lists_every_chain(admin_client_api, org, other_user):
    entries = append(1, organization=org) + append(1, organization=other_user.organization) + append(1)
    ids = _ids(admin_client_api.get(URL))
    assert set(ids) >= {e.pk for e in entries}
    assert _ids(admin_client_api.get(URL, {"org": org.pk})) == [entries[0].pk]


def test_client_cannot_widen_scope_with_org_filter(auth_client, org, other_user):
    append(1, organization=other_user.organization)
    assert _ids(auth_client.get(URL, {"org": other_user.organization_id})) == []


def test_client_cannot_read_other_orgs_entry(auth_client, other_client, org):
    entry = append(1, organization=org)[0]
    assert auth_client.get(f"{URL}/{entry.pk}").json()["id"] == entry.pk
    response = other_client.get(f"{URL}/{entry.pk}")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}
    assert other_client.get(f"{URL}/999999").status_code == 404  # the same answer as for a missing id


def test_super_admin_reads_any_entry(admin_client_api, org):
    entry = append(1, organization=org)[0]
    assert admin_client_api.get(f"{URL}/{entry.pk}").json()["hash"] == entry.hash


def test_anonymous_is_401(api_client):
    assert api_client.get(URL).status_code == 401


def test_writing_verbs_are_405(auth_client, org):
    entry = append(1, organization=org)[0]
    assert auth_client.post(URL, {"action": "forged"}, format="json").status_code == 405
    for method in ("put", "patch", "delete"):
        response = getattr(auth_client, method)(f"{URL}/{entry.pk}", {"action": "forged"}, format="json")
        assert response.status_code == 405, method
        assert response.json()["error"]["code"] == "method_not_allowed"
    assert auth_client.post(f"{URL}/verify").status_code == 405
    assert AuditLog.objects.get(pk=entry.pk).action == "thing.update"


def test_filters(auth_client, org, user):
    teammate = UserFactory(organization=org, email="teammate@example.com")
    by_user = record(action="cluster.update", organization=org, actor=user, resource_type="cluster", resource_id=7)
    by_mate = record(action="cluster.delete", organization=org, actor=teammate, resource_type="cluster", resource_id=8)
    by_system = record(
        action="template.update", organization=org, actor="scheduler", resource_type="template", resource_id=7
    )

    def ids(**params):
        return set(_ids(auth_client.get(URL, params)))

    assert ids(actor=str(teammate.pk)) == {by_mate.pk}
    assert ids(actor="TEAMMATE@") == {by_mate.pk}
    assert ids(actor_type="system") == {by_system.pk}
    assert ids(action="cluster.") == {by_user.pk, by_mate.pk}
    assert ids(action="cluster.upd") == {by_user.pk}
    assert ids(resource_type="cluster", resource_id="7") == {by_user.pk}
    assert ids(resource_id="7") == {by_user.pk, by_system.pk}
    assert ids(action="cluster.", actor_type="user", actor=str(user.pk)) == {by_user.pk}


def test_time_range_filter(auth_client, org):
    with time_machine.travel(dt.datetime(2026, 1, 1, 12, tzinfo=dt.UTC), tick=False):
        old = append(1, organization=org)[0]
    with time_machine.travel(dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC), tick=False):
        new = append(1, organization=org)[0]

    assert _ids(auth_client.get(URL, {"since": "2026-02-01T00:00:00Z"})) == [new.pk]
    assert _ids(auth_client.get(URL, {"until": "2026-02-01T00:00:00Z"})) == [old.pk]
    # since is inclusive, until exclusive: adjacent windows never count an entry twice.
    assert _ids(auth_client.get(URL, {"since": "2026-03-01T12:00:00Z", "until": "2026-03-02T00:00:00Z"})) == [new.pk]
    assert _ids(auth_client.get(URL, {"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T12:00:00Z"})) == [old.pk]


def test_invalid_filter_is_400_in_the_error_shape(auth_client):
    response = auth_client.get(URL, {"since": "yesterday", "actor_type": "robot"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error" and {"since", "actor_type"} <= set(error["fields"])


def test_cursor_pagination_walks_every_entry_once(auth_client, org):
    entries = append(7, organization=org)
    seen, url, pages = [], f"{URL}?page_size=3", 0
    while url:
        body = auth_client.get(url).json()
        assert "count" not in body  # a cursor page never counts the table
        seen += [row["id"] for row in body["results"]]
        url, pages = body["next"], pages + 1
    assert pages == 3
    assert seen == [e.pk for e in reversed(entries)]


def test_cursor_pagination_is_stable_while_entries_are_appended(auth_client, org):
    entries = append(4, organization=org)
    first = auth_client.get(URL, {"page_size": 2}).json()
    append(3, organization=org)  # new entries arrive between the pages
    second = auth_client.get(first["next"]).json()
    assert [row["id"] for row in second["results"]] == [entries[1].pk, entries[0].pk]


@pytest.mark.parametrize("rows", [5, 50])
def test_list_query_count_is_constant(auth_client, org, django_assert_num_queries, rows):
    append(rows, organization=org)
    # 1. the JWT's user, 2. the page of entries (cursor pagination: no COUNT; no organization lookups per row)
    with django_assert_num_queries(2):
        response = auth_client.get(URL, {"page_size": 100})
    assert len(response.json()["results"]) == rows


def test_verify_returns_the_callers_verdict(auth_client, org, other_user):
    entries = append(3, organization=org)
    other = append(2, organization=other_user.organization)
    body = auth_client.get(f"{URL}/verify").json()
    assert body["ok"] is True
    assert [(c["chain"], c["entries"], c["ok"]) for c in body["chains"]] == [(f"org:{org.pk}", 3, True)]

    tamper("UPDATE audit_logs SET actor_label = %s WHERE id = %s", ["someone else", entries[1].pk])
    tamper("UPDATE audit_logs SET actor_label = %s WHERE id = %s", ["someone else", other[0].pk])
    body = auth_client.get(f"{URL}/verify", {"org": other_user.organization_id}).json()
    assert body["ok"] is False
    [chain] = body["chains"]  # still only the caller's own chain, whatever ?org says
    assert (chain["chain"], chain["problem"], chain["entry_id"], chain["entry_seq"]) == (
        f"org:{org.pk}",
        "hash_mismatch",
        entries[1].pk,
        2,
    )


def test_verify_for_super_admin_covers_all_chains_or_one(admin_client_api, org, other_user):
    append(2, organization=org)
    append(1, organization=other_user.organization)
    append(1)
    body = admin_client_api.get(f"{URL}/verify").json()
    chains = [c["chain"] for c in body["chains"]]
    assert body["ok"] and chains[0] == "platform"
    assert {f"org:{org.pk}", f"org:{other_user.organization_id}"} <= set(chains)
    one = admin_client_api.get(f"{URL}/verify", {"org": org.pk}).json()
    assert [(c["chain"], c["entries"]) for c in one["chains"]] == [(chain_key(org.pk), 2)]
    assert admin_client_api.get(f"{URL}/verify", {"org": "platform"}).json()["chains"][0]["chain"] == "platform"
    assert admin_client_api.get(f"{URL}/verify", {"org": "x"}).status_code == 400


def test_api_calls_are_recorded_with_actor_ip_user_agent_and_request_id(auth_client, user, org):
    """A change made through the API is attributed to the caller without the service passing the request."""
    response = auth_client.post(
        "/api/v1/auth/change-password",
        {"old_password": "Sp0t-Optimizer-Pass!", "new_password": "An0ther-Secret-Pass!"},
        format="json",
        HTTP_USER_AGENT="spotctl/1.0",
        HTTP_X_REQUEST_ID="req-123",
        REMOTE_ADDR="10.1.2.3",
    )
    assert response.status_code == 200
    entry = AuditLog.objects.get(action="auth.password_change")
    assert (entry.actor_type, entry.actor_id, entry.actor_label) == ("user", str(user.pk), user.email)
    assert (entry.ip, entry.user_agent, entry.request_id) == ("10.1.2.3", "spotctl/1.0", "req-123")
    assert entry.organization_id == org.pk
