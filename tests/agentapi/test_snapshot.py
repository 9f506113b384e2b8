"""Snapshot intake: bulk upsert in a constant number of queries, instance linking, all-or-nothing validation."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from agentapi.models import AgentStatus, KubeNode, KubePod
from agentapi.services import api_key_create
from audit.models import AuditLog
from tests.agentapi.conftest import make_snapshot
from tests.factories import ClusterFactory, InstanceFactory

pytestmark = pytest.mark.django_db


def _post(client, body):
    return client.post("/api/v1/agent/snapshot", data=json.dumps(body), content_type="application/json")


def _queries_for_snapshot(org, n_pods: int) -> int:
    cluster = ClusterFactory(organization=org)
    _, raw = api_key_create(cluster=cluster, name="k")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    # A first snapshot (connection, audit), then the steady state we measure.
    assert _post(client, make_snapshot(10, n_pods)).status_code == 200
    with CaptureQueriesContext(connection) as ctx:
        response = _post(client, make_snapshot(10, n_pods))
    assert response.status_code == 200, response.content
    assert KubePod.objects.filter(cluster=cluster).count() == n_pods
    return len(ctx.captured_queries)


def test_snapshot_is_a_constant_number_of_queries_at_5000_pods(org):
    # key lookup; savepoint; status row SELECT … FOR UPDATE; node upsert; delete of nodes gone; pod upsert; delete of
    # pods gone; status update; release — the same at 50 pods and at 5,000.
    assert _queries_for_snapshot(org, 50) == 9
    assert _queries_for_snapshot(org, 5_000) == 9


def test_snapshot_upserts_links_instances_and_deletes_what_is_gone(agent_client, key_pair, cluster):
    instance = InstanceFactory(cluster=cluster, instance_id="i-0abc0000000000001")
    other = InstanceFactory(instance_id="i-0abc0000000000002")  # another cluster's instance never links
    snap = make_snapshot(3, 30, instance_ids=["i-0abc0000000000001", "i-0abc0000000000002"])
    response = _post(agent_client, snap)
    assert response.status_code == 200
    assert response.json()["next_poll_seconds"] == 30
    nodes = {n.name: n for n in KubeNode.objects.filter(cluster=cluster)}
    assert nodes["ip-10-0-0-0.ec2.internal"].instance_id == instance.pk
    assert nodes["ip-10-0-0-0.ec2.internal"].ec2_instance_id == "i-0abc0000000000001"
    assert nodes["ip-10-0-0-1.ec2.internal"].instance_id is None
    assert other.kube_nodes.count() == 0
    assert nodes["ip-10-0-0-0.ec2.internal"].labels == {"kubernetes.io/os": "linux", "node": "0"}

    # Next snapshot: a node and most pods are gone, one pod moved.
    snap2 = make_snapshot(2, 5)
    snap2["pods"][0]["node"] = "ip-10-0-0-1.ec2.internal"
    snap2["nodes"][0]["unschedulable"] = True
    assert _post(agent_client, snap2).status_code == 200
    assert sorted(KubeNode.objects.filter(cluster=cluster).values_list("name", flat=True)) == [
        "ip-10-0-0-0.ec2.internal", "ip-10-0-0-1.ec2.internal",
    ]
    assert KubeNode.objects.get(cluster=cluster, name="ip-10-0-0-0.ec2.internal").unschedulable is True
    assert KubePod.objects.filter(cluster=cluster).count() == 5
    assert KubePod.objects.get(cluster=cluster, name="web-0").node_name == "ip-10-0-0-1.ec2.internal"


def test_snapshot_marks_agent_connected_and_audits_the_connection_once(agent_client, cluster):
    assert _post(agent_client, make_snapshot(1, 1)).status_code == 200
    assert _post(agent_client, make_snapshot(1, 1)).status_code == 200
    status = AgentStatus.objects.get(cluster=cluster)
    assert status.agent_version == "0.1.0"
    assert status.kubernetes_version == "v1.31.2"
    assert status.connection() == "connected"
    assert (status.node_count, status.pod_count) == (1, 1)
    entries = AuditLog.objects.filter(action="agent.connected")
    assert entries.count() == 1
    assert entries.get().actor_type == "api_key"


def test_snapshots_of_two_clusters_do_not_touch_each_other(agent_client, cluster, org):
    other = ClusterFactory(organization=org)
    _, raw = api_key_create(cluster=other, name="k")
    other_client = APIClient()
    other_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {raw}")
    assert _post(agent_client, make_snapshot(2, 4)).status_code == 200
    assert _post(other_client, make_snapshot(1, 0)).status_code == 200
    assert KubePod.objects.filter(cluster=cluster).count() == 4
    assert KubeNode.objects.filter(cluster=cluster).count() == 2


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda s: s["pods"][3].pop("name"), "pods[3].name"),
        (lambda s: s["pods"][1]["requests"].update(cpu_m="lots"), "pods[1].requests.cpu_m"),
        (lambda s: s["nodes"][0].update(capacity_type="reserved"), "nodes[0].capacity_type"),
        (lambda s: s["nodes"][1]["taints"].append({"key": "x", "effect": "Sometimes"}), "nodes[1].taints[0].effect"),
        (lambda s: s.update(pods="nope"), "pods"),
        (lambda s: s["pods"].append(dict(s["pods"][0])), "pods[4].name"),
        (lambda s: s["nodes"][0].update(ready="yes"), "nodes[0].ready"),
    ],
)
def test_malformed_snapshot_is_400_with_field_errors_and_saves_nothing(agent_client, cluster, mutate, field):
    assert _post(agent_client, make_snapshot(2, 4)).status_code == 200
    before = list(KubePod.objects.filter(cluster=cluster).values_list("name", "node_name"))
    generation = AgentStatus.objects.get(cluster=cluster).snapshot_generation
    bad = make_snapshot(3, 4, prefix="new")
    mutate(bad)
    response = _post(agent_client, bad)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["fields"]
    assert list(KubePod.objects.filter(cluster=cluster).values_list("name", "node_name")) == before
    assert not KubeNode.objects.filter(cluster=cluster, name__startswith="new").exists()
    assert AgentStatus.objects.get(cluster=cluster).snapshot_generation == generation


def test_snapshot_that_is_not_json_is_400(agent_client):
    response = agent_client.post("/api/v1/agent/snapshot", data="{nodes: [", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@override_settings(AGENT_MAX_BODY_BYTES=1000)
def test_oversized_snapshot_is_413_in_the_error_shape(agent_client, cluster):
    response = _post(agent_client, make_snapshot(5, 50))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert not KubePod.objects.filter(cluster=cluster).exists()


def test_unchanged_rows_are_not_rewritten_and_an_empty_snapshot_clears_the_cluster(agent_client, cluster):
    import time_machine
    from django.utils import timezone

    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        assert _post(agent_client, make_snapshot(2, 4)).status_code == 200
        traveller.shift(60)
        snap = make_snapshot(2, 4)
        snap["pods"][0]["phase"] = "Pending"
        assert _post(agent_client, snap).status_code == 200
    stamps = dict(KubePod.objects.filter(cluster=cluster).values_list("name", "updated_at"))
    assert stamps["web-0"] > start  # changed: rewritten
    assert stamps["web-1"] == start  # unchanged: left alone (no write, no dead tuple)
    assert _post(agent_client, {"nodes": [], "pods": []}).status_code == 200
    assert not KubePod.objects.filter(cluster=cluster).exists()
    assert not KubeNode.objects.filter(cluster=cluster).exists()
