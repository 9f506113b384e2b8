from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agentapi.services import api_key_create
from tests.factories import ClusterFactory


@pytest.fixture
def cluster(org):
    return ClusterFactory(organization=org)


@pytest.fixture
def other_cluster(db):
    """A cluster of another organization."""
    return ClusterFactory()


@pytest.fixture
def key_pair(cluster):
    """(ApiKey, raw key) for ``cluster``."""
    return api_key_create(cluster=cluster, name="agent")


@pytest.fixture
def agent_client(key_pair) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key_pair[1]}")
    return client


def make_snapshot(n_nodes: int, n_pods: int, *, prefix: str = "ip-10-0-0", instance_ids: list[str] | None = None):
    nodes = []
    for i in range(n_nodes):
        iid = instance_ids[i] if instance_ids and i < len(instance_ids) else f"i-{i:017x}"
        nodes.append(
            {
                "name": f"{prefix}-{i}.ec2.internal",
                "provider_id": f"aws:///us-east-1a/{iid}",
                "instance_type": "m5.large",
                "zone": "us-east-1a",
                "capacity_type": "spot" if i % 2 else "on-demand",
                "labels": {"kubernetes.io/os": "linux", "node": str(i)},
                "taints": [],
                "unschedulable": False,
                "ready": True,
                "allocatable": {"cpu_m": 1930, "memory_mib": 7000, "pods": 29},
            }
        )
    pods = [
        {
            "namespace": "default",
            "name": f"web-{j}",
            "node": nodes[j % n_nodes]["name"] if n_nodes else "",
            "phase": "Running",
            "requests": {"cpu_m": 100, "memory_mib": 128},
            "owner_kind": "ReplicaSet",
            "owner_name": "web-7d9f",
            "daemonset": False,
            "do_not_disrupt": False,
            "priority": 0,
        }
        for j in range(n_pods)
    ]
    return {"agent_version": "0.1.0", "kubernetes_version": "v1.31.2", "nodes": nodes, "pods": pods}
