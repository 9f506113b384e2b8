"""API keys: shown once, stored hashed, revocable, scoped to one cluster, looked up in one query."""

from __future__ import annotations

import hashlib

import pytest
from rest_framework.test import APIClient

from agentapi.models import ApiKey
from agentapi.services import api_key_create, enqueue_action
from audit.models import AuditLog
from tests.agentapi.conftest import make_snapshot

pytestmark = pytest.mark.django_db


def _agent(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    return client


def test_create_key_shows_it_once_and_stores_only_prefix_and_sha256(auth_client, cluster):
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/api-keys", {"name": "prod agent"}, format="json")
    assert response.status_code == 201
    body = response.json()
    raw = body["key"]
    assert raw.startswith(body["prefix"] + ".")
    key = ApiKey.objects.get(pk=body["id"])
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    # The install manifest carries the key, the platform URL and every object the agent needs.
    manifest = body["manifest"]
    for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Secret", "Deployment"):
        assert f"kind: {kind}\n" in manifest
    assert raw in manifest
    assert "pods/eviction" in manifest
    assert '"delete"' not in manifest

    listing = auth_client.get(f"/api/v1/clusters/{cluster.pk}/api-keys").json()["results"]
    assert [k["prefix"] for k in listing] == [body["prefix"]]
    assert "key" not in listing[0]
    assert {"name", "created_at", "last_used_at"} <= set(listing[0])
    entry = AuditLog.objects.get(action="api_key.created")
    assert raw not in str(entry.after)


def test_key_lookup_is_one_query(key_pair, django_assert_num_queries):
    key, raw = key_pair
    # SELECT api_keys JOIN clusters WHERE prefix = … AND revoked_at IS NULL
    with django_assert_num_queries(1):
        found = ApiKey.objects.for_key(raw)
    assert found == key
    assert found.cluster.pk == key.cluster_id


@pytest.mark.parametrize("header", ["Api-Key spk_00000000.nope", "Api-Key garbage", "Api-Key ", "Bearer x"])
def test_unknown_or_malformed_key_is_401(api_client, header):
    api_client.credentials(HTTP_AUTHORIZATION=header)
    response = api_client.get("/api/v1/agent/actions")
    assert response.status_code == 401
    assert "error" in response.json()


def test_right_prefix_wrong_secret_is_401(key_pair):
    key, _ = key_pair
    assert _agent(f"{key.prefix}.not-the-secret").get("/api/v1/agent/actions").status_code == 401


def test_revoked_key_is_401_and_revocation_is_audited(auth_client, agent_client, key_pair, cluster):
    key, _ = key_pair
    assert agent_client.get("/api/v1/agent/actions").status_code == 200
    response = auth_client.delete(f"/api/v1/clusters/{cluster.pk}/api-keys/{key.pk}")
    assert response.status_code == 204
    assert agent_client.get("/api/v1/agent/actions").status_code == 401
    # Revoking again is harmless and not audited twice.
    assert auth_client.delete(f"/api/v1/clusters/{cluster.pk}/api-keys/{key.pk}").status_code == 204
    assert AuditLog.objects.filter(action="api_key.revoked").count() == 1


def test_last_used_is_recorded(agent_client, key_pair):
    key, _ = key_pair
    assert key.last_used_at is None
    agent_client.get("/api/v1/agent/actions")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_key_of_cluster_a_never_touches_cluster_b(org, cluster, key_pair):
    from tests.factories import ClusterFactory

    cluster_b = ClusterFactory(organization=org)
    _, raw_b = api_key_create(cluster=cluster_b, name="b")
    action_b = enqueue_action(cluster=cluster_b, type="cordon", target="node-b")
    client_a = _agent(key_pair[1])
    # A's polls never see B's actions, and A cannot report B's.
    assert client_a.get("/api/v1/agent/actions").json()["actions"] == []
    leased = _agent(raw_b).get("/api/v1/agent/actions").json()["actions"]
    assert [a["id"] for a in leased] == [action_b.pk]
    response = client_a.post(f"/api/v1/agent/actions/{action_b.pk}/result", {"status": "succeeded"}, format="json")
    assert response.status_code == 404
    action_b.refresh_from_db()
    assert action_b.state == "leased"
    # A's snapshot lands in A's cluster only.
    client_a.post("/api/v1/agent/snapshot", make_snapshot(1, 1), format="json")
    assert cluster_b.kube_nodes.count() == 0
    assert cluster.kube_nodes.count() == 1


def test_operators_of_another_org_get_404(other_client, cluster, key_pair):
    key, _ = key_pair
    assert other_client.get(f"/api/v1/clusters/{cluster.pk}/api-keys").status_code == 404
    assert other_client.post(f"/api/v1/clusters/{cluster.pk}/api-keys", {"name": "x"}, format="json").status_code == 404
    assert other_client.delete(f"/api/v1/clusters/{cluster.pk}/api-keys/{key.pk}").status_code == 404
    assert other_client.get(f"/api/v1/clusters/{cluster.pk}/nodes").status_code == 404
    assert other_client.get(f"/api/v1/clusters/{cluster.pk}/agent").status_code == 404
    key.refresh_from_db()
    assert key.revoked_at is None


def test_api_key_cannot_call_operator_endpoints(agent_client, cluster):
    assert agent_client.get(f"/api/v1/clusters/{cluster.pk}/api-keys").status_code == 401


def test_key_needs_a_name(auth_client, cluster):
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/api-keys", {"name": ""}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()["error"]["fields"]
    assert not ApiKey.objects.exists()


def test_agents_have_their_own_rate_limit_per_key(agent_client, settings):
    settings.AGENT_RATE_LIMIT = "3/min"
    settings.API_RATE_LIMIT = "1/min"  # the operators' limit does not apply to agents
    statuses = [agent_client.get("/api/v1/agent/actions").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert agent_client.get("/api/v1/agent/actions").json()["error"]["code"] == "throttled"
