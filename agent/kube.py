"""The cluster backend over the official ``kubernetes`` client. Responses are read as plain JSON
(``_preload_content=False``): lists of thousands of pods do not need to become model objects, and the agent only
reads a few fields."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from .backend import EvictionBlocked, Node, Pod, Workload

LIST_CHUNK = 500
_QUANTITY = re.compile(r"^([0-9.]+(?:[eE][-+]?[0-9]+)?)([a-zA-Z]*)$")
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "": 1,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": 10**3,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}


def quantity(value: str | int | None) -> Decimal:
    """A Kubernetes quantity (``250m``, ``1.5``, ``512Mi``, ``1e3``) as a Decimal of base units."""
    if value is None or value == "":
        return Decimal(0)
    match = _QUANTITY.match(str(value))
    if not match:
        raise ValueError(f"not a quantity: {value!r}")
    number, suffix = Decimal(match[1]), match[2]
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * Decimal(_DECIMAL[suffix])
    raise ValueError(f"unknown quantity suffix: {value!r}")


def cpu_millis(value) -> int:
    return int(quantity(value) * 1000)


def memory_mib(value) -> int:
    return int(quantity(value) / 2**20)


def _capacity_type(labels: dict[str, str]) -> str:
    raw = (
        (
            labels.get("karpenter.sh/capacity-type")
            or labels.get("eks.amazonaws.com/capacityType")
            or labels.get("node.kubernetes.io/lifecycle")
            or ""
        )
        .lower()
        .replace("_", "-")
    )
    return {"spot": "spot", "on-demand": "on-demand", "normal": "on-demand"}.get(raw, "")


def node_from_json(obj: dict) -> Node:
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    labels = meta.get("labels") or {}
    alloc = status.get("allocatable") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    return Node(
        name=meta["name"],
        provider_id=spec.get("providerID", ""),
        instance_type=labels.get("node.kubernetes.io/instance-type")
        or labels.get("beta.kubernetes.io/instance-type", ""),
        zone=labels.get("topology.kubernetes.io/zone", ""),
        capacity_type=_capacity_type(labels),
        labels=labels,
        taints=[
            {"key": t["key"], "value": t.get("value", ""), "effect": t["effect"]}
            for t in spec.get("taints") or []
            if t.get("key") and t.get("effect")
        ],
        unschedulable=bool(spec.get("unschedulable")),
        ready=ready,
        cpu_m=cpu_millis(alloc.get("cpu")),
        memory_mib=memory_mib(alloc.get("memory")),
        max_pods=int(quantity(alloc.get("pods"))),
    )


def pod_from_json(obj: dict) -> Pod:
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status", {})
    annotations = meta.get("annotations") or {}
    owners = meta.get("ownerReferences") or []
    owner = next((o for o in owners if o.get("controller")), owners[0] if owners else {})
    cpu = memory = 0
    for container in spec.get("containers") or []:
        requests = (container.get("resources") or {}).get("requests") or {}
        cpu += cpu_millis(requests.get("cpu"))
        memory += memory_mib(requests.get("memory"))
    return Pod(
        namespace=meta["namespace"],
        name=meta["name"],
        node=spec.get("nodeName", ""),
        phase=status.get("phase", "Unknown"),
        cpu_m=cpu,
        memory_mib=memory,
        owner_kind=owner.get("kind", ""),
        owner_name=owner.get("name", ""),
        mirror="kubernetes.io/config.mirror" in annotations,
        do_not_disrupt=annotations.get("karpenter.sh/do-not-disrupt") == "true",
        priority=int(spec.get("priority") or 0),
        labels=meta.get("labels") or {},
    )


class KubernetesBackend:
    """Cordon and labels by patching the node; drain through the Eviction API, so the API server enforces
    PodDisruptionBudgets (a refusal is a 429)."""

    def __init__(self, api_client: client.ApiClient | None = None) -> None:
        if api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            api_client = client.ApiClient()
        self.api_client = api_client
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)

    @staticmethod
    def _json(response) -> dict:
        return json.loads(response.data)

    def version(self) -> str:
        return self._json(client.VersionApi(self.api_client).get_code(_preload_content=False)).get("gitVersion", "")

    def list_nodes(self) -> list[Node]:
        nodes, token = [], None
        while True:
            page = self._json(self.core.list_node(limit=LIST_CHUNK, _continue=token, _preload_content=False))
            nodes.extend(node_from_json(item) for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return nodes

    def get_node(self, name: str) -> Node | None:
        try:
            return node_from_json(self._json(self.core.read_node(name, _preload_content=False)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def patch_node(self, name: str, patch: dict) -> None:
        self.core.patch_node(
            name, patch, _content_type="application/strategic-merge-patch+json", _preload_content=False
        )

    def list_pods(self, node: str | None = None) -> list[Pod]:
        selector = f"spec.nodeName={node}" if node else None
        pods, token = [], None
        while True:
            page = self._json(
                self.core.list_pod_for_all_namespaces(
                    field_selector=selector, limit=LIST_CHUNK, _continue=token, _preload_content=False
                )
            )
            pods.extend(pod_from_json(item) for item in page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return pods

    def evict_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None:
        body = client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=name, namespace=namespace),
            delete_options=client.V1DeleteOptions(grace_period_seconds=grace_period_seconds)
            if grace_period_seconds is not None
            else None,
        )
        try:
            self.core.create_namespaced_pod_eviction(name, namespace, body, _preload_content=False)
        except ApiException as exc:
            if exc.status == 404:
                return
            if exc.status == 429:
                raise EvictionBlocked(exc.body or "eviction refused by a PodDisruptionBudget") from exc
            raise

    def pod_exists(self, namespace: str, name: str) -> bool:
        try:
            self.core.read_namespaced_pod(name, namespace, _preload_content=False)
            return True
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise

    # --- workloads (the ``scale`` action) ---------------------------------------------------------------------------
    def _list_all(self, method) -> list[dict]:
        items, token = [], None
        while True:
            page = self._json(method(limit=LIST_CHUNK, _continue=token, _preload_content=False))
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return items

    @staticmethod
    def _workload(kind: str, obj: dict) -> Workload:
        meta, spec = obj.get("metadata", {}), obj.get("spec", {})
        if kind == "CronJob":
            return Workload(kind, meta["namespace"], meta["name"], suspend=bool(spec.get("suspend")))
        replicas = spec.get("replicas")
        return Workload(kind, meta["namespace"], meta["name"], replicas=1 if replicas is None else int(replicas))

    def list_workloads(self) -> list[Workload]:
        sources = (
            ("Deployment", self.apps.list_deployment_for_all_namespaces),
            ("StatefulSet", self.apps.list_stateful_set_for_all_namespaces),
            ("CronJob", self.batch.list_cron_job_for_all_namespaces),
        )
        return [self._workload(kind, item) for kind, method in sources for item in self._list_all(method)]

    def get_workload(self, kind: str, namespace: str, name: str) -> Workload | None:
        read = {
            "Deployment": self.apps.read_namespaced_deployment,
            "StatefulSet": self.apps.read_namespaced_stateful_set,
            "CronJob": self.batch.read_namespaced_cron_job,
        }[kind]
        try:
            return self._workload(kind, self._json(read(name, namespace, _preload_content=False)))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        patch = {
            "Deployment": self.apps.patch_namespaced_deployment_scale,
            "StatefulSet": self.apps.patch_namespaced_stateful_set_scale,
        }[kind]
        patch(name, namespace, {"spec": {"replicas": replicas}}, _preload_content=False)

    def set_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        self.batch.patch_namespaced_cron_job(name, namespace, {"spec": {"suspend": suspend}}, _preload_content=False)
