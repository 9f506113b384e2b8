"""What the executor needs from a cluster, as a small interface with two implementations:
:class:`agent.kube.KubernetesBackend` (the official client) and :class:`agent.simulated.SimulatedBackend`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class EvictionBlocked(Exception):
    """The API refused an eviction with 429: a PodDisruptionBudget does not allow it now. Retry later."""


@dataclass
class Node:
    name: str
    provider_id: str = ""
    instance_type: str = ""
    zone: str = ""
    capacity_type: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict] = field(default_factory=list)
    unschedulable: bool = False
    ready: bool = True
    cpu_m: int = 0
    memory_mib: int = 0
    max_pods: int = 0

    def as_snapshot(self) -> dict:
        return {
            "name": self.name,
            "provider_id": self.provider_id,
            "instance_type": self.instance_type,
            "zone": self.zone,
            "capacity_type": self.capacity_type,
            "labels": dict(self.labels),
            "taints": [dict(t) for t in self.taints],
            "unschedulable": self.unschedulable,
            "ready": self.ready,
            "allocatable": {"cpu_m": self.cpu_m, "memory_mib": self.memory_mib, "pods": self.max_pods},
        }


@dataclass
class Pod:
    namespace: str
    name: str
    node: str = ""
    phase: str = "Running"
    cpu_m: int = 0
    memory_mib: int = 0
    owner_kind: str = ""
    owner_name: str = ""
    mirror: bool = False
    do_not_disrupt: bool = False
    priority: int = 0
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def daemonset(self) -> bool:
        return self.owner_kind == "DaemonSet"

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def as_snapshot(self) -> dict:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "node": self.node,
            "phase": self.phase,
            "requests": {"cpu_m": self.cpu_m, "memory_mib": self.memory_mib},
            "owner_kind": self.owner_kind,
            "owner_name": self.owner_name,
            "daemonset": self.daemonset,
            "do_not_disrupt": self.do_not_disrupt,
            "priority": self.priority,
        }


#: The workload kinds the ``scale`` action handles: replicas for the first two, ``suspend`` for CronJobs.
SCALABLE_KINDS = ("Deployment", "StatefulSet")
WORKLOAD_KINDS = (*SCALABLE_KINDS, "CronJob")


@dataclass
class Workload:
    """A Deployment or StatefulSet (``replicas``) or a CronJob (``suspend``)."""

    kind: str
    namespace: str
    name: str
    replicas: int | None = None
    suspend: bool | None = None

    def as_report(self) -> dict:
        value = {"suspend": bool(self.suspend)} if self.kind == "CronJob" else {"replicas": int(self.replicas or 0)}
        return {"kind": self.kind, "namespace": self.namespace, "name": self.name, **value}


class ClusterBackend(Protocol):
    def version(self) -> str: ...

    def list_nodes(self) -> list[Node]: ...

    def get_node(self, name: str) -> Node | None: ...

    def patch_node(self, name: str, patch: dict) -> None:
        """Apply a strategic-merge patch: ``{"spec": {"unschedulable": …, "taints": […]}}``,
        ``{"metadata": {"labels": {key: value or None}}}``."""

    def list_pods(self, node: str | None = None) -> list[Pod]: ...

    def evict_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None:
        """Evict through the Eviction API. A pod that is already gone is not an error; a PDB refusal raises
        :class:`EvictionBlocked`."""

    def pod_exists(self, namespace: str, name: str) -> bool: ...

    def list_workloads(self) -> list[Workload]:
        """Every Deployment, StatefulSet and CronJob."""

    def get_workload(self, kind: str, namespace: str, name: str) -> Workload | None: ...

    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        """Through the scale subresource of a Deployment or StatefulSet."""

    def set_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        """Suspend or resume a CronJob."""
