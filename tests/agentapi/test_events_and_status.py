"""Events intake, agent status, the nodes list and the console page."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from agentapi.models import AgentAction, AgentEvent
from agentapi.services import enqueue_action
from audit.models import AuditLog
from tests.agentapi.conftest import make_snapshot
from tests.factories import InstanceFactory

pytestmark = pytest.mark.django_db


def _events(client, body):
    return client.post("/api/v1/agent/events", data=json.dumps(body), content_type="application/json")


def test_spot_interruption_is_stored_audited_and_queues_cordon_and_drain(agent_client, cluster):
    response = _events(
        agent_client,
        {"events": [{"type": "spot-interruption", "node": "ip-10-0-0-1.ec2.internal", "instance_id": "i-0abc"}]},
    )
    assert response.status_code == 201
    event = AgentEvent.objects.get()
    assert (event.type, event.node_name, event.cluster_id) == (
        "spot-interruption",
        "ip-10-0-0-1.ec2.internal",
        cluster.pk,
    )
    assert AuditLog.objects.filter(action="agent_event.spot-interruption", actor_type="api_key").count() == 1
    actions = list(AgentAction.objects.order_by("id").values_list("type", "target", "state"))
    assert actions == [
        ("cordon", "ip-10-0-0-1.ec2.internal", "pending"),
        ("drain", "ip-10-0-0-1.ec2.internal", "pending"),
    ]
    # The same notice again does not queue a second drain.
    _events(agent_client, {"type": "spot-interruption", "node": "ip-10-0-0-1.ec2.internal"})
    assert AgentAction.objects.count() == 2
    assert AgentEvent.objects.count() == 2


def test_event_naming_only_the_instance_finds_its_node_from_the_snapshot(agent_client, cluster):
    agent_client.post(
        "/api/v1/agent/snapshot", make_snapshot(2, 0, instance_ids=["i-0aaa0000000000001"]), format="json"
    )
    _events(agent_client, {"type": "spot-interruption", "instance_id": "i-0aaa0000000000001"})
    assert set(AgentAction.objects.values_list("target", flat=True)) == {"ip-10-0-0-0.ec2.internal"}


def test_other_events_follow_the_rebalance_policy_or_are_only_stored(agent_client):
    body = {
        "events": [
            {"type": "rebalance-recommendation", "node": "n1"},
            {"type": "node-not-ready", "node": "n2", "occurred_at": "2026-01-01T00:00:00Z"},
        ]
    }
    assert _events(agent_client, body).status_code == 201
    assert AgentEvent.objects.count() == 2
    # The default policy's on_rebalance is "cordon"; a node that is not Ready is only recorded.
    assert list(AgentAction.objects.values_list("type", "target")) == [("cordon", "n1")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": [{"type": "spot-interruption", "node": "n1"}, {"type": "meteor", "node": "n2"}]}, "events[1].type"),
        ({"events": [{"type": "spot-interruption", "node": "n1"}, {"type": "node-not-ready"}]}, "events[1].node"),
        ({"events": [{"type": "node-not-ready", "node": "n1", "occurred_at": "yesterday"}]}, "events[0].occurred_at"),
        ({"events": []}, "events"),
        ({"events": ["x"]}, "events[0]"),
    ],
)
def test_malformed_events_are_400_and_nothing_is_saved(agent_client, body, field):
    response = _events(agent_client, body)
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not AgentEvent.objects.exists()
    assert not AgentAction.objects.exists()
    assert not AuditLog.objects.filter(action__startswith="agent_event").exists()


def test_agent_status_never_connected_stale(auth_client, agent_client, cluster):
    url = f"/api/v1/clusters/{cluster.pk}/agent"
    assert auth_client.get(url).json()["connection"] == "never"
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        agent_client.post("/api/v1/agent/snapshot", make_snapshot(1, 2), format="json")
        body = auth_client.get(url).json()
        assert body["connection"] == "connected"
        assert (body["agent_version"], body["node_count"], body["pod_count"]) == ("0.1.0", 1, 2)
        traveller.shift(timedelta(seconds=91))
        assert auth_client.get(url).json()["connection"] == "stale"


def test_agent_status_lists_pending_and_recent_actions(auth_client, agent_client, cluster, django_assert_num_queries):
    done = enqueue_action(cluster=cluster, type="cordon", target="n1")
    agent_client.get("/api/v1/agent/actions")
    agent_client.post(f"/api/v1/agent/actions/{done.pk}/result", {"status": "failed", "message": "boom"}, format="json")
    waiting = enqueue_action(cluster=cluster, type="uncordon", target="n2")
    # JWT user; cluster; agent status; pending actions; recent actions
    with django_assert_num_queries(5):
        body = auth_client.get(f"/api/v1/clusters/{cluster.pk}/agent").json()
    assert [a["id"] for a in body["pending_actions"]] == [waiting.pk]
    assert [(a["id"], a["state"], a["result_message"]) for a in body["recent_actions"]] == [(done.pk, "failed", "boom")]


def test_nodes_list_joins_instances_and_includes_agent_only_nodes(
    auth_client, agent_client, cluster, django_assert_num_queries
):
    InstanceFactory(cluster=cluster, instance_id="i-0bbb0000000000001", lifecycle="spot")
    snap = make_snapshot(30, 90, instance_ids=["i-0bbb0000000000001"])
    agent_client.post("/api/v1/agent/snapshot", snap, format="json")
    # JWT user; cluster; count; page of nodes with instance and pod count; on-demand and spot prices of the page's
    # instances (the one cost rule)
    with django_assert_num_queries(6):
        body = auth_client.get(f"/api/v1/clusters/{cluster.pk}/nodes?page_size=20").json()
    assert body["count"] == 30
    assert len(body["results"]) == 20
    first = body["results"][0]
    assert first["name"] == "ip-10-0-0-0.ec2.internal"
    assert first["instance"]["instance_id"] == "i-0bbb0000000000001"
    assert first["instance"]["lifecycle"] == "spot"
    assert first["pod_count"] == 3
    assert first["allocatable"] == {"cpu_m": 1930, "memory_mib": 7000, "pods": 29}
    assert body["results"][1]["instance"] is None  # a node only the agent knows
