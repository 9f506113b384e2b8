"""The ``scale`` action kind: validation of its parameters, and the agent's reported output stored with the result."""

from __future__ import annotations

import pytest

from agentapi.models import AgentAction
from agentapi.services import enqueue_action
from spotopt.errors import ValidationFailed


@pytest.mark.parametrize(
    ("target", "params"),
    [
        ("node-a", {"workloads": [{"kind": "Deployment", "namespace": "d", "name": "w", "replicas": 0}]}),
        ("workloads", {}),
        ("workloads", {"workloads": []}),
        ("workloads", {"workloads": [{"kind": "DaemonSet", "namespace": "d", "name": "w", "replicas": 0}]}),
        ("workloads", {"workloads": [{"kind": "Deployment", "namespace": "d", "name": "w", "replicas": -1}]}),
        ("workloads", {"workloads": [{"kind": "Deployment", "namespace": "d", "name": "w", "replicas": True}]}),
        ("workloads", {"workloads": [{"kind": "CronJob", "namespace": "d", "name": "w", "suspend": "yes"}]}),
        ("workloads", {"workloads": [{"kind": "StatefulSet", "name": "w", "replicas": 1}]}),
        ("workloads", {"select": "all"}),
        ("workloads", {"select": "all", "dry_run": True, "exclude_namespaces": "kube-system"}),
    ],
)
def test_invalid_scale_actions_are_refused(cluster, target, params):
    with pytest.raises(ValidationFailed) as exc:
        enqueue_action(cluster=cluster, type="scale", target=target, params=params)
    assert "params" in exc.value.fields or "target" in exc.value.fields
    assert not AgentAction.objects.exists()


def test_scale_result_output_is_stored_and_shown(cluster, agent_client):
    workloads = [{"kind": "Deployment", "namespace": "default", "name": "web", "replicas": 0}]
    action = enqueue_action(cluster=cluster, type="scale", target="workloads", params={"workloads": workloads})
    leased = agent_client.get("/api/v1/agent/actions", {"max": 5}).json()["actions"]
    assert leased[0]["type"] == "scale" and leased[0]["params"] == {"workloads": workloads}
    output = {"workloads": [{"kind": "Deployment", "namespace": "default", "name": "web", "replicas": 4}]}
    response = agent_client.post(
        f"/api/v1/agent/actions/{action.pk}/result",
        {"status": "succeeded", "message": "ok", "output": output},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["result_output"] == output
    action.refresh_from_db()
    assert action.result_output == output


def test_result_output_must_be_an_object(cluster, agent_client):
    action = enqueue_action(
        cluster=cluster, type="scale", target="workloads", params={"select": "all", "dry_run": True}
    )
    agent_client.get("/api/v1/agent/actions")
    response = agent_client.post(
        f"/api/v1/agent/actions/{action.pk}/result", {"status": "succeeded", "output": [1, 2]}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"output": ["Must be an object."]}
    action.refresh_from_db()
    assert action.state == "leased"


def test_install_manifest_grants_what_the_scale_action_needs(auth_client, cluster):
    import yaml

    manifest = auth_client.post(f"/api/v1/clusters/{cluster.pk}/api-keys", {"name": "k"}, format="json").json()[
        "manifest"
    ]
    role = next(d for d in yaml.safe_load_all(manifest) if d and d["kind"] == "ClusterRole")
    grants = {
        (g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert {"get", "patch"} <= grants[("apps", "deployments/scale")]
    assert {"get", "patch"} <= grants[("apps", "statefulsets/scale")]
    assert {"list", "patch"} <= grants[("batch", "cronjobs")]
    assert "list" in grants[("apps", "deployments")]
