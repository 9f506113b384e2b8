"""Console pages of the agent: status, keys (created with the install manifest, revoked) and tenancy."""

from __future__ import annotations

import pytest

from agentapi.models import ApiKey
from agentapi.services import enqueue_action
from tests.agentapi.conftest import make_snapshot
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def test_index_lists_each_cluster_with_its_agent_state(console, org, agent_client, cluster, django_assert_num_queries):
    ClusterFactory(organization=org, name="zz-never")
    agent_client.post("/api/v1/agent/snapshot", make_snapshot(2, 3), format="json")
    enqueue_action(cluster=cluster, type="cordon", target="n1")
    # session; user; clusters with agent status and pending-action counts; the top bar's organization
    with django_assert_num_queries(4):
        html = console.get("/agents/").content.decode()
    assert cluster.name in html
    assert "Connected" in html
    assert "Never connected" in html


def test_detail_shows_status_actions_nodes_and_keys(console, agent_client, cluster, key_pair):
    agent_client.post("/api/v1/agent/snapshot", make_snapshot(2, 3), format="json")
    enqueue_action(cluster=cluster, type="drain", target="ip-10-0-0-1.ec2.internal", reason="spot interruption notice")
    response = console.get(f"/agents/{cluster.pk}/")
    html = response.content.decode()
    assert response.status_code == 200
    assert "spot interruption notice" in html
    assert "ip-10-0-0-0.ec2.internal" in html
    assert key_pair[0].prefix in html
    partial = console.get(f"/agents/{cluster.pk}/", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith("{#") is False
    assert 'id="agent-status"' in partial
    assert "<html" not in partial


def test_creating_a_key_redirects_and_shows_it_once_with_the_manifest(console, cluster):
    response = console.post(f"/agents/{cluster.pk}/keys/", {"name": "prod"})
    assert response.status_code == 302 and response["Location"] == f"/agents/{cluster.pk}/"
    key = ApiKey.objects.get(cluster=cluster)
    assert key.prefix not in response.content.decode()
    shown = console.get(response["Location"])
    assert shown.status_code == 200
    assert shown["Cache-Control"] == "no-store"
    html = shown.content.decode()
    raw = shown.context["raw_key"]
    assert raw.startswith(key.prefix)
    assert raw in html
    assert "kind: Deployment" in html
    assert ApiKey.objects.for_key(raw) == key
    # never again: neither on a reload nor in the session
    again = console.get(f"/agents/{cluster.pk}/")
    assert raw not in again.content.decode() and "raw_key" not in again.context
    assert raw not in str(dict(console.session))


def test_reloading_after_creating_a_key_creates_no_second_key(console, cluster):
    response = console.post(f"/agents/{cluster.pk}/keys/", {"name": "prod"}, follow=True)
    assert response.redirect_chain == [(f"/agents/{cluster.pk}/", 302)]
    # A browser's reload repeats the last request, which is now the GET of the redirect.
    console.get(response.request["PATH_INFO"])
    assert ApiKey.objects.filter(cluster=cluster).count() == 1


def test_revoking_a_key_from_the_console(console, cluster, key_pair):
    key, _ = key_pair
    response = console.post(f"/agents/{cluster.pk}/keys/{key.pk}/revoke/")
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_another_orgs_cluster_is_404_in_the_console(client, other_user, cluster, key_pair):
    client.force_login(other_user)
    assert client.get(f"/agents/{cluster.pk}/").status_code == 404
    assert client.post(f"/agents/{cluster.pk}/keys/", {"name": "x"}).status_code == 404
    assert client.post(f"/agents/{cluster.pk}/keys/{key_pair[0].pk}/revoke/").status_code == 404
    assert cluster.name not in client.get("/agents/").content.decode()
    assert ApiKey.objects.filter(cluster=cluster).count() == 1
