"""The agent channel in Django admin: API keys and agent actions only through their services (no add forms), the
raw key shown once, everything audited with the admin as actor; the agent's own rows are read-only."""

from __future__ import annotations

import re

import pytest
from django.apps import apps

from agentapi.models import AgentAction, AgentEvent, ApiKey, KubeNode, KubePod, hash_key
from agentapi.services import enqueue_action, snapshot_ingest
from audit.models import AuditLog
from tests.admin_helpers import admin_entry, form_data, messages_of
from tests.agentapi.conftest import make_snapshot

pytestmark = pytest.mark.django_db

RAW_KEY = re.compile(r"spk_[0-9a-f]{8}\.[A-Za-z0-9_-]+")


@pytest.mark.parametrize("model", ["agentapi/apikey", "agentapi/agentaction", "audit/auditlog"])
def test_service_created_objects_have_no_add_form(admin_web, model):
    assert admin_web.get(f"/admin/{model}/add/").status_code == 403
    assert admin_web.post(f"/admin/{model}/add/", {"name": "x"}).status_code == 403


def test_create_an_api_key_from_the_cluster_admin_shows_it_once(admin_web, super_admin, cluster):
    response = admin_web.post(
        "/admin/clusters/cluster/", {"action": "create_api_key", "_selected_action": [cluster.pk]}, follow=True
    )
    assert response.status_code == 200
    shown = [m for m in messages_of(response) if RAW_KEY.search(m)]
    assert len(shown) == 1 and cluster.name in shown[0]
    raw = RAW_KEY.search(shown[0]).group(0)
    key = ApiKey.objects.get(cluster=cluster)
    assert key.key_hash == hash_key(raw) and ApiKey.objects.for_key(raw) == key
    assert key.created_by == super_admin
    entry = admin_entry("api_key.created", super_admin)
    assert entry.after["prefix"] == key.prefix and raw not in str(entry.after)
    # Never again: not on the next page, not on the key's page, not on the cluster's page.
    for url in (
        "/admin/clusters/cluster/",
        f"/admin/agentapi/apikey/{key.pk}/change/",
        f"/admin/clusters/cluster/{cluster.pk}/change/",
    ):
        page = admin_web.get(url)
        assert page.status_code == 200
        assert raw not in page.content.decode() and key.key_hash not in page.content.decode()


def test_the_cluster_page_lists_its_keys_read_only(admin_web, key_pair, cluster):
    page = admin_web.get(f"/admin/clusters/cluster/{cluster.pk}/change/")
    assert key_pair[0].prefix in page.content.decode()


def test_revoke_selected_keys(admin_web, super_admin, key_pair, agent_client):
    key, _raw = key_pair
    response = admin_web.post(
        "/admin/agentapi/apikey/", {"action": "revoke_selected", "_selected_action": [key.pk]}, follow=True
    )
    assert any("Revoked 1" in m for m in messages_of(response))
    key.refresh_from_db()
    assert key.revoked_at is not None
    admin_entry("api_key.revoked", super_admin)
    assert agent_client.get("/api/v1/agent/actions").status_code == 401


def test_api_keys_are_not_edited_or_deleted(admin_web, key_pair):
    key = key_pair[0]
    url = f"/admin/agentapi/apikey/{key.pk}/change/"
    assert admin_web.get(url).status_code == 200
    assert admin_web.post(url, {"name": "renamed"}).status_code == 403
    assert admin_web.get(f"/admin/agentapi/apikey/{key.pk}/delete/").status_code == 403
    key.refresh_from_db()
    assert key.name == "agent"


def test_cordon_nodes_from_admin_queues_agent_actions(admin_web, super_admin, key_pair, cluster):
    snapshot_ingest(api_key=key_pair[0], data=make_snapshot(2, 2))
    nodes = list(KubeNode.objects.filter(cluster=cluster))
    response = admin_web.post(
        "/admin/agentapi/kubenode/",
        {"action": "cordon_selected", "_selected_action": [n.pk for n in nodes]},
        follow=True,
    )
    assert any("Queued cordon of 2" in m for m in messages_of(response))
    actions = AgentAction.objects.filter(cluster=cluster, type="cordon")
    assert sorted(a.target for a in actions) == sorted(n.name for n in nodes)
    assert AuditLog.objects.filter(action="agent_action.enqueued", actor_id=str(super_admin.pk)).count() == 2


def test_queue_a_failed_action_again(admin_web, super_admin, cluster):
    failed = enqueue_action(cluster=cluster, type="drain", target="node-1", params={"grace_period_seconds": 5})
    AgentAction.objects.filter(pk=failed.pk).update(state=AgentAction.State.FAILED)
    pending = enqueue_action(cluster=cluster, type="cordon", target="node-2")
    response = admin_web.post(
        "/admin/agentapi/agentaction/",
        {"action": "queue_again", "_selected_action": [failed.pk, pending.pk]},
        follow=True,
    )
    assert any("Queued 1" in m for m in messages_of(response))
    again = AgentAction.objects.exclude(pk__in=[failed.pk, pending.pk]).get()
    assert (again.type, again.target, again.params, again.state) == ("drain", "node-1", failed.params, "pending")
    entry = admin_entry("agent_action.enqueued", super_admin)
    assert entry.resource_id == str(again.pk)


@pytest.mark.parametrize("model", ["agentaction", "agentevent", "agentstatus", "kubenode", "kubepod"])
def test_agent_owned_rows_are_read_only(admin_web, key_pair, cluster, model):
    snapshot_ingest(api_key=key_pair[0], data=make_snapshot(1, 1))
    enqueue_action(cluster=cluster, type="cordon", target="node-1")
    AgentEvent.objects.create(cluster=cluster, type="node-not-ready", node_name="n", occurred_at="2026-01-01T00:00Z")
    obj = apps.get_model("agentapi", model).objects.first()
    assert obj is not None
    base = f"/admin/agentapi/{model}/"
    assert admin_web.get(f"{base}{obj.pk}/change/").status_code == 200
    assert admin_web.post(f"{base}{obj.pk}/change/", {}).status_code == 403
    assert admin_web.get(f"{base}{obj.pk}/delete/").status_code == 403
    assert admin_web.get(f"{base}add/").status_code == 403
    assert KubePod.objects.filter(cluster=cluster).count() == 1


def test_an_invalid_inline_rolls_the_service_write_back(admin_web, key_pair, cluster):
    """The service writes while the form validates; when the page is shown again because an inline's data is invalid
    (here a tampered management form), nothing stays written."""
    url = f"/admin/clusters/cluster/{cluster.pk}/change/"
    data = form_data(admin_web.get(url)) | {"time_zone": "Asia/Tokyo"}
    data = {k: v for k, v in data.items() if not k.endswith("TOTAL_FORMS")}
    response = admin_web.post(url, data)
    assert response.status_code == 200
    cluster.refresh_from_db()
    assert cluster.time_zone == "UTC"
    assert not AuditLog.objects.filter(action="cluster.updated").exists()
