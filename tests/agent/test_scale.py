"""The ``scale`` action: listing workloads (dry run), scaling Deployments and StatefulSets through the scale
subresource, suspending and resuming CronJobs; against the official client (a local API server) and the simulated
cluster."""

from __future__ import annotations

import pytest
from kubernetes import client

from agent.backend import Workload
from agent.executor import Executor
from agent.kube import KubernetesBackend
from agent.simulated import add_demo_workloads, demo_cluster

from .test_kubernetes_backend import FakeKubernetes


class FakeWorkloads(FakeKubernetes):
    """Adds the apps/v1 and batch/v1 paths of Deployments, StatefulSets and CronJobs (with their scale
    subresources)."""

    PLURAL = {"deployments": "Deployment", "statefulsets": "StatefulSet", "cronjobs": "CronJob"}

    def __init__(self) -> None:
        super().__init__()
        self.workloads = {
            ("deployments", "default", "web"): {
                "metadata": {"namespace": "default", "name": "web"},
                "spec": {"replicas": 3},
            },
            ("statefulsets", "data", "db"): {"metadata": {"namespace": "data", "name": "db"}, "spec": {"replicas": 2}},
            ("cronjobs", "default", "report"): {
                "metadata": {"namespace": "default", "name": "report"},
                "spec": {"suspend": False},
            },
            ("deployments", "kube-system", "coredns"): {
                "metadata": {"namespace": "kube-system", "name": "coredns"},
                "spec": {"replicas": 2},
            },
        }

    def route(self, method, path, query, body):
        parts = path.strip("/").split("/")
        if parts[:1] == ["apis"] and len(parts) == 4 and method == "GET":  # /apis/apps/v1/deployments
            items = [w for (plural, _, _), w in self.workloads.items() if plural == parts[3]]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
        if parts[:1] == ["apis"] and len(parts) >= 7 and parts[3] == "namespaces":
            key = (parts[5], parts[4], parts[6])
            workload = self.workloads.get(key)
            if workload is None:
                return self._status(404, "NotFound", "not found")
            if method == "PATCH":
                workload["spec"].update(body["spec"])
            if len(parts) == 8 and parts[7] == "scale":
                return 200, {"kind": "Scale", "spec": {"replicas": workload["spec"]["replicas"]}}
            return 200, workload
        return super().route(method, path, query, body)


@pytest.fixture
def kube():
    fake = FakeWorkloads()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def backend(kube) -> KubernetesBackend:
    configuration = client.Configuration()
    configuration.host = kube.url
    return KubernetesBackend(client.ApiClient(configuration))


def test_dry_run_lists_workloads_outside_excluded_namespaces_and_changes_nothing(kube, backend, clock):
    result = Executor(backend, clock=clock, sleep=clock.sleep).execute(
        {
            "id": 1,
            "type": "scale",
            "target": "workloads",
            "params": {"select": "all", "dry_run": True, "exclude_namespaces": ["kube-system"]},
        }
    )
    assert result.status == "succeeded", result.message
    assert sorted(result.output["workloads"], key=lambda w: w["name"]) == [
        {"kind": "StatefulSet", "namespace": "data", "name": "db", "replicas": 2},
        {"kind": "CronJob", "namespace": "default", "name": "report", "suspend": False},
        {"kind": "Deployment", "namespace": "default", "name": "web", "replicas": 3},
    ]
    assert {r["path"] for r in kube.requests} == {
        "/apis/apps/v1/deployments",
        "/apis/apps/v1/statefulsets",
        "/apis/batch/v1/cronjobs",
    }
    assert all(r["method"] == "GET" for r in kube.requests)


def test_scale_down_patches_the_scale_subresource_and_suspends_cronjobs(kube, backend, clock):
    executor = Executor(backend, clock=clock, sleep=clock.sleep)
    action = {
        "id": 2,
        "type": "scale",
        "target": "workloads",
        "params": {
            "workloads": [
                {"kind": "Deployment", "namespace": "default", "name": "web", "replicas": 0},
                {"kind": "StatefulSet", "namespace": "data", "name": "db", "replicas": 0},
                {"kind": "CronJob", "namespace": "default", "name": "report", "suspend": True},
                {"kind": "Deployment", "namespace": "default", "name": "gone", "replicas": 0},
            ]
        },
    }
    result = executor.execute(action)
    assert result.status == "succeeded", result.message
    assert result.output["workloads"][0] == {
        "kind": "Deployment",
        "namespace": "default",
        "name": "web",
        "replicas": 3,
        "found": True,
    }
    assert result.output["workloads"][3]["found"] is False
    patches = [(r["path"], r["body"]) for r in kube.requests if r["method"] == "PATCH"]
    assert patches == [
        ("/apis/apps/v1/namespaces/default/deployments/web/scale", {"spec": {"replicas": 0}}),
        ("/apis/apps/v1/namespaces/data/statefulsets/db/scale", {"spec": {"replicas": 0}}),
        ("/apis/batch/v1/namespaces/default/cronjobs/report", {"spec": {"suspend": True}}),
    ]
    # Again: nothing left to change, nothing patched (a lease handed out twice is harmless).
    kube.requests.clear()
    again = executor.execute(action)
    assert again.status == "succeeded"
    assert [r for r in kube.requests if r["method"] == "PATCH"] == []
    assert again.output["workloads"][0]["replicas"] == 0


def test_simulated_cluster_scales_pods_down_and_back_onto_ready_nodes(clock):
    sim = demo_cluster(nodes=3, pods_per_node=4, clock=clock, reschedule_seconds=5)
    sim.set_replicas("StatefulSet", "default", "db", 2)
    executor = Executor(sim, clock=clock, sleep=clock.sleep)
    listed = executor.execute(
        {"id": 1, "type": "scale", "target": "workloads", "params": {"select": "all", "dry_run": True}}
    )
    by_name = {w["name"]: w for w in listed.output["workloads"]}
    assert by_name["web"]["replicas"] == 6 and by_name["db"]["replicas"] == 2
    assert by_name["nightly-report"]["suspend"] is False

    down = [
        {"kind": "Deployment", "namespace": "default", "name": "web", "replicas": 0},
        {"kind": "StatefulSet", "namespace": "default", "name": "db", "replicas": 0},
        {"kind": "CronJob", "namespace": "default", "name": "nightly-report", "suspend": True},
    ]
    executor.execute({"id": 2, "type": "scale", "target": "workloads", "params": {"workloads": down}})
    assert [p for p in sim.list_pods() if p.labels.get("app") in ("web", "db")] == []
    assert sim.get_workload("CronJob", "default", "nightly-report").suspend is True

    up = [
        {"kind": "StatefulSet", "namespace": "default", "name": "db", "replicas": 2},
        {"kind": "Deployment", "namespace": "default", "name": "web", "replicas": 6},
    ]
    executor.execute({"id": 3, "type": "scale", "target": "workloads", "params": {"workloads": up}})
    pods = [p for p in sim.list_pods() if p.labels.get("app") in ("web", "db")]
    assert sorted(p.name for p in pods if p.owner_kind == "StatefulSet") == ["db-0", "db-1"]
    assert len([p for p in pods if p.owner_kind == "ReplicaSet"]) == 6
    assert all(p.node for p in pods)


def test_simulated_scale_up_without_nodes_leaves_pods_pending(clock):
    sim = demo_cluster(nodes=1, pods_per_node=2, clock=clock)
    add_demo_workloads(sim)
    sim.patch_node(sim.list_nodes()[0].name, {"spec": {"unschedulable": True}})
    sim.add_workload(Workload("Deployment", "default", "api", replicas=0))
    sim.set_replicas("Deployment", "default", "api", 2)
    pending = [p for p in sim.list_pods() if p.owner_name == "api"]
    assert [p.phase for p in pending] == ["Pending", "Pending"]
