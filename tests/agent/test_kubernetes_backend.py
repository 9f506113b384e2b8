"""The agent's Kubernetes calls, through the official client, against a local HTTP server that speaks the API paths
the agent uses. Every request is recorded and asserted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest
from kubernetes import client

from agent.executor import Executor
from agent.kube import KubernetesBackend, cpu_millis, memory_mib
from agent.runner import build_snapshot


def _node(name: str, *, unschedulable: bool = False) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "node.kubernetes.io/instance-type": "m5.large",
                "topology.kubernetes.io/zone": "us-east-1a",
                "eks.amazonaws.com/capacityType": "SPOT",
            },
        },
        "spec": {"providerID": "aws:///us-east-1a/i-0abc123def4567890", "unschedulable": unschedulable,
                 "taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"}]},
        "status": {
            "allocatable": {"cpu": "1930m", "memory": "7244Mi", "pods": "29"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _pod(name: str, *, owner: str = "ReplicaSet", mirror: bool = False, phase: str = "Running") -> dict:
    annotations = {"kubernetes.io/config.mirror": "x"} if mirror else {}
    return {
        "metadata": {
            "namespace": "default" if owner != "DaemonSet" else "kube-system",
            "name": name,
            "annotations": annotations,
            "ownerReferences": [{"kind": owner, "name": f"{name}-owner", "controller": True, "apiVersion": "v1",
                                 "uid": "u"}],
        },
        "spec": {
            "nodeName": "node-a",
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
                           {"name": "d", "resources": {"requests": {"cpu": "0.1", "memory": "1Gi"}}}],
        },
        "status": {"phase": phase},
    }


class FakeKubernetes:
    """The API paths the agent uses. The first eviction of each pod is refused with 429 (a PDB), the second
    accepted (201) and the pod removed."""

    def __init__(self) -> None:
        self.nodes = {"node-a": _node("node-a")}
        self.pods = {
            ("default", "web-1"): _pod("web-1"),
            ("kube-system", "aws-node-1"): _pod("aws-node-1", owner="DaemonSet"),
            ("default", "kube-proxy-node-a"): _pod("kube-proxy-node-a", owner="Node", mirror=True),
        }
        self.requests: list[dict] = []
        self.evictions_refused: set[str] = set()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                fake.requests.append({"method": self.command, "path": url.path, "query": parse_qs(url.query),
                                      "content_type": self.headers.get("Content-Type"), "body": body})
                status, response = fake.route(self.command, url.path, parse_qs(url.query), body)
                self._send(status, response)

            do_GET = do_POST = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @staticmethod
    def _status(code: int, reason: str, message: str) -> tuple[int, dict]:
        return code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
                      "message": message, "code": code}

    def route(self, method: str, path: str, query: dict, body) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if path in ("/version", "/version/"):
            return 200, {"gitVersion": "v1.31.2-eks-1234"}
        if path == "/api/v1/nodes" and method == "GET":
            return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": list(self.nodes.values())}
        if parts[:3] == ["api", "v1", "nodes"] and len(parts) == 4:
            node = self.nodes.get(parts[3])
            if node is None:
                return self._status(404, "NotFound", f'nodes "{parts[3]}" not found')
            if method == "PATCH":
                for key, value in (body.get("spec") or {}).items():
                    node["spec"][key] = value
                node["metadata"]["labels"].update((body.get("metadata") or {}).get("labels") or {})
            return 200, node
        if path == "/api/v1/pods" and method == "GET":
            selector = (query.get("fieldSelector") or [""])[0]
            node = selector.removeprefix("spec.nodeName=") if selector else None
            items = [p for p in self.pods.values() if node is None or p["spec"]["nodeName"] == node]
            return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}
        if parts[:3] == ["api", "v1", "namespaces"] and parts[4:5] == ["pods"]:
            key = (parts[3], parts[5])
            if len(parts) == 7 and parts[6] == "eviction" and method == "POST":
                if key not in self.pods:
                    return self._status(404, "NotFound", "pod not found")
                if key[1] not in self.evictions_refused:
                    self.evictions_refused.add(key[1])
                    return self._status(429, "TooManyRequests",
                                        "Cannot evict pod as it would violate the pod's disruption budget.")
                del self.pods[key]
                return 201, {"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 201}
            if len(parts) == 6 and method == "GET":
                if key in self.pods:
                    return 200, self.pods[key]
                return self._status(404, "NotFound", "pod not found")
        return self._status(404, "NotFound", f"no route {method} {path}")


@pytest.fixture
def kube():
    fake = FakeKubernetes()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def backend(kube) -> KubernetesBackend:
    configuration = client.Configuration()
    configuration.host = kube.url
    return KubernetesBackend(client.ApiClient(configuration))


def test_drain_patches_the_node_lists_its_pods_and_retries_a_refused_eviction(kube, backend, clock):
    executor = Executor(backend, clock=clock, sleep=clock.sleep, eviction_retry_seconds=5, wait_poll_seconds=1)
    result = executor.execute({"id": 7, "type": "drain", "target": "node-a", "params": {"grace_period_seconds": 30},
                               "deadline": clock.iso(300)})
    assert result.status == "succeeded", result.message

    calls = [(r["method"], r["path"]) for r in kube.requests]
    assert calls == [
        ("GET", "/api/v1/nodes/node-a"),
        ("PATCH", "/api/v1/nodes/node-a"),
        ("GET", "/api/v1/pods"),
        ("POST", "/api/v1/namespaces/default/pods/web-1/eviction"),  # 429: the PDB says not now
        ("POST", "/api/v1/namespaces/default/pods/web-1/eviction"),  # 201 after the back-off
        ("GET", "/api/v1/namespaces/default/pods/web-1"),  # gone (404)
    ]
    patch = kube.requests[1]
    assert patch["body"] == {"spec": {"unschedulable": True}}
    assert patch["content_type"] == "application/strategic-merge-patch+json"
    assert kube.requests[2]["query"]["fieldSelector"] == ["spec.nodeName=node-a"]
    eviction = kube.requests[4]["body"]
    assert eviction["metadata"] == {"name": "web-1", "namespace": "default"}
    assert eviction["deleteOptions"]["gracePeriodSeconds"] == 30
    assert clock.slept == 5
    # The DaemonSet and mirror pods were never evicted.
    assert ("kube-system", "aws-node-1") in kube.pods
    assert ("default", "kube-proxy-node-a") in kube.pods


def test_cordon_of_a_cordoned_node_reads_and_does_not_patch(kube, backend, clock):
    kube.nodes["node-a"]["spec"]["unschedulable"] = True
    result = Executor(backend, clock=clock, sleep=clock.sleep).execute({"id": 1, "type": "cordon", "target": "node-a"})
    assert result.status == "succeeded"
    assert [(r["method"], r["path"]) for r in kube.requests] == [("GET", "/api/v1/nodes/node-a")]


def test_label_and_taint_patch_the_node(kube, backend, clock):
    executor = Executor(backend, clock=clock, sleep=clock.sleep)
    executor.execute({"id": 1, "type": "label", "target": "node-a", "params": {"labels": {"spot": "true"}}})
    executor.execute({"id": 2, "type": "taint", "target": "node-a",
                      "params": {"key": "spotopt/draining", "effect": "NoSchedule"}})
    patches = [r["body"] for r in kube.requests if r["method"] == "PATCH"]
    assert patches == [
        {"metadata": {"labels": {"spot": "true"}}},
        {"spec": {"taints": [{"key": "dedicated", "value": "web", "effect": "NoSchedule"},
                             {"key": "spotopt/draining", "value": "", "effect": "NoSchedule"}]}},
    ]


def test_snapshot_from_the_api(kube, backend):
    snapshot = build_snapshot(backend)
    assert snapshot["kubernetes_version"] == "v1.31.2-eks-1234"
    (node,) = snapshot["nodes"]
    assert node["provider_id"] == "aws:///us-east-1a/i-0abc123def4567890"
    assert (node["instance_type"], node["zone"], node["capacity_type"]) == ("m5.large", "us-east-1a", "spot")
    assert node["allocatable"] == {"cpu_m": 1930, "memory_mib": 7244, "pods": 29}
    assert node["ready"] is True
    pods = {p["name"]: p for p in snapshot["pods"]}
    assert pods["web-1"]["requests"] == {"cpu_m": 350, "memory_mib": 1280}
    assert pods["aws-node-1"]["daemonset"] is True
    assert pods["web-1"]["owner_kind"] == "ReplicaSet"


def test_quantities():
    assert cpu_millis("2") == 2000
    assert cpu_millis("1500m") == 1500
    assert memory_mib("1Gi") == 1024
    assert memory_mib("1048576Ki") == 1024
    assert memory_mib("2e9") == 1907
