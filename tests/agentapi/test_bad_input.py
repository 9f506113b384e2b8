"""Agent input that no column or datetime can hold is a 400 naming the field, and nothing is saved: integers past
their column, impossible or out-of-range times."""

from __future__ import annotations

import pytest

from agentapi.models import AgentAction, AgentEvent, KubeNode, KubePod
from tests.agentapi.conftest import make_snapshot

pytestmark = pytest.mark.django_db

SNAPSHOT = "/api/v1/agent/snapshot"
EVENTS = "/api/v1/agent/events"


@pytest.mark.parametrize(
    ("where", "key", "value", "field"),
    [
        ("node", "allocatable.pods", 2**40, "nodes[0].allocatable.pods"),
        ("node", "allocatable.pods", 2**31, "nodes[0].allocatable.pods"),
        ("node", "allocatable.cpu_m", 2**63, "nodes[0].allocatable.cpu_m"),
        ("pod", "priority", 2**31, "pods[0].priority"),
        ("pod", "priority", -(2**31) - 1, "pods[0].priority"),
        ("pod", "requests.memory_mib", 2**64, "pods[0].requests.memory_mib"),
    ],
)
def test_integers_past_their_column_are_400(agent_client, where, key, value, field):
    body = make_snapshot(1, 1)
    item = body["nodes"][0] if where == "node" else body["pods"][0]
    *parents, last = key.split(".")
    for parent in parents:
        item = item[parent]
    item[last] = value
    response = agent_client.post(SNAPSHOT, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["error"]["fields"]
    assert KubeNode.objects.count() == KubePod.objects.count() == 0


def test_integers_at_their_column_limits_are_stored(agent_client):
    body = make_snapshot(1, 2)
    body["nodes"][0]["allocatable"]["pods"] = 2**31 - 1
    body["pods"][0]["priority"] = 2**31 - 1
    body["pods"][1]["priority"] = -(2**31)
    response = agent_client.post(SNAPSHOT, body, format="json")
    assert response.status_code == 200, response.content
    assert KubeNode.objects.get().max_pods == 2**31 - 1
    assert sorted(KubePod.objects.values_list("priority", flat=True)) == [-(2**31), 2**31 - 1]


@pytest.mark.parametrize(
    "value",
    [
        "2024-02-30T00:00:00Z",  # no such day
        "2024-13-01T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "0000-01-01T00:00:00Z",  # no year 0
        "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
        "9999-12-31T23:59:59-23:59",  # past year 9999 in UTC
        "9999-12-31T23:59:59Z",
        "1000-01-01T00:00:00Z",
        "2024-01-01T00:00:00+25:00",
        "yesterday",
    ],
)
@pytest.mark.parametrize("key", ["occurred_at", "action_deadline"])
def test_impossible_or_out_of_range_event_times_are_400(agent_client, key, value):
    event = {"type": "spot-interruption", "node": "ip-10-0-0-1", "instance_id": "i-0123456789abcdef0", key: value}
    response = agent_client.post(EVENTS, {"events": [event]}, format="json")
    assert response.status_code == 400, response.content
    assert f"events[0].{key}" in response.json()["error"]["fields"]
    assert AgentEvent.objects.count() == AgentAction.objects.count() == 0


def test_event_times_with_offsets_are_stored_in_utc(agent_client):
    event = {"type": "node-not-ready", "node": "n1", "occurred_at": "2026-03-01T10:00:00+05:30"}
    response = agent_client.post(EVENTS, event, format="json")
    assert response.status_code == 201, response.content
    assert AgentEvent.objects.get().occurred_at.isoformat() == "2026-03-01T04:30:00+00:00"
