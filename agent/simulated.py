"""An in-memory Kubernetes cluster (nodes, pods, PodDisruptionBudgets) behind the backend interface, so the whole
agent loop runs without Kubernetes. Evicted pods owned by a controller are recreated on another schedulable node and
become ready after ``reschedule_seconds``, which is what lets a drain make progress under a PDB."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .backend import EvictionBlocked, Node, Pod, Workload

CONTROLLERS = ("ReplicaSet", "StatefulSet", "Job")


@dataclass
class PodDisruptionBudget:
    namespace: str
    name: str
    selector: dict[str, str]
    min_available: int | None = None
    max_unavailable: int | None = None

    def matches(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and all(pod.labels.get(k) == v for k, v in self.selector.items())


@dataclass
class _SimPod:
    pod: Pod
    ready_at: float = 0.0


@dataclass
class SimulatedBackend:
    """Thread-safe; ``clock`` is injectable so tests can run it on simulated time."""

    nodes: dict[str, Node] = field(default_factory=dict)
    pdbs: list[PodDisruptionBudget] = field(default_factory=list)
    reschedule_seconds: float = 10.0
    clock: Callable[[], float] = time.time
    kubernetes_version: str = "v1.31.0-sim"

    def __post_init__(self) -> None:
        self._pods: dict[str, _SimPod] = {}
        self._lock = threading.RLock()
        self._seq = itertools.count(1)
        self.evictions: list[str] = []
        self.blocked_evictions = 0
        self.patches: list[tuple[str, dict]] = []
        # Lowest number of healthy pods each PDB ever saw, to show that drains never broke a budget.
        self.min_healthy: dict[str, int] = {}

    # --- building the cluster --------------------------------------------------------------------------------------
    def add_node(self, node: Node) -> Node:
        with self._lock:
            self.nodes[node.name] = node
        return node

    def add_pod(self, pod: Pod, *, ready_at: float | None = None) -> Pod:
        with self._lock:
            self._pods[pod.key] = _SimPod(pod, self.clock() if ready_at is None else ready_at)
        return pod

    def add_pdb(self, pdb: PodDisruptionBudget) -> None:
        with self._lock:
            self.pdbs.append(pdb)
            self._note_health()

    def healthy(self, pdb: PodDisruptionBudget) -> int:
        now = self.clock()
        return sum(
            1
            for sp in self._pods.values()
            if pdb.matches(sp.pod) and sp.pod.node and sp.pod.phase == "Running" and sp.ready_at <= now
        )

    def _note_health(self) -> None:
        for pdb in self.pdbs:
            key = f"{pdb.namespace}/{pdb.name}"
            self.min_healthy[key] = min(self.min_healthy.get(key, 1 << 30), self.healthy(pdb))

    # --- the backend interface -------------------------------------------------------------------------------------
    def version(self) -> str:
        return self.kubernetes_version

    def list_nodes(self) -> list[Node]:
        with self._lock:
            return [Node(**vars(n)) for n in self.nodes.values()]

    def get_node(self, name: str) -> Node | None:
        with self._lock:
            node = self.nodes.get(name)
            return Node(**vars(node)) if node else None

    def patch_node(self, name: str, patch: dict) -> None:
        with self._lock:
            node = self.nodes.get(name)
            if node is None:
                raise LookupError(f"node {name} not found")
            self.patches.append((name, patch))
            spec = patch.get("spec", {})
            if "unschedulable" in spec:
                node.unschedulable = bool(spec["unschedulable"])
            if "taints" in spec:
                node.taints = [dict(t) for t in spec["taints"]]
            for key, value in patch.get("metadata", {}).get("labels", {}).items():
                if value is None:
                    node.labels.pop(key, None)
                else:
                    node.labels[key] = value

    def list_pods(self, node: str | None = None) -> list[Pod]:
        with self._lock:
            return [
                Pod(**{**vars(sp.pod), "labels": dict(sp.pod.labels)})
                for sp in self._pods.values()
                if node is None or sp.pod.node == node
            ]

    def pod_exists(self, namespace: str, name: str) -> bool:
        with self._lock:
            return f"{namespace}/{name}" in self._pods

    def evict_pod(self, namespace: str, name: str, grace_period_seconds: int | None) -> None:
        with self._lock:
            sim = self._pods.get(f"{namespace}/{name}")
            if sim is None:
                return
            now = self.clock()
            pod_healthy = sim.pod.phase == "Running" and sim.ready_at <= now and bool(sim.pod.node)
            for pdb in self.pdbs:
                if not pdb.matches(sim.pod):
                    continue
                healthy = self.healthy(pdb)
                total = sum(1 for sp in self._pods.values() if pdb.matches(sp.pod))
                after = healthy - (1 if pod_healthy else 0)
                if pdb.min_available is not None and after < pdb.min_available and pod_healthy:
                    self.blocked_evictions += 1
                    raise EvictionBlocked(f"Cannot evict pod as it would violate the disruption budget {pdb.name}")
                if pdb.max_unavailable is not None and pod_healthy and total - after > pdb.max_unavailable:
                    self.blocked_evictions += 1
                    raise EvictionBlocked(f"Cannot evict pod as it would violate the disruption budget {pdb.name}")
            del self._pods[sim.pod.key]
            self.evictions.append(sim.pod.key)
            if sim.pod.owner_kind in CONTROLLERS:
                self._reschedule(sim.pod, now)
            self._note_health()

    def _reschedule(self, pod: Pod, now: float) -> None:
        """The controller creates a replacement on the schedulable node with the fewest pods, or leaves it Pending."""
        candidates = [
            n
            for n in self.nodes.values()
            if n.ready and not n.unschedulable and not any(t.get("effect") == "NoSchedule" for t in n.taints)
        ]
        load = {n.name: 0 for n in candidates}
        for sp in self._pods.values():
            if sp.pod.node in load:
                load[sp.pod.node] += 1
        target = min(candidates, key=lambda n: (load[n.name], n.name)).name if candidates else ""
        base = pod.name.rsplit("-", 1)[0] if pod.owner_kind == "ReplicaSet" else pod.name
        replacement = Pod(
            **{
                **vars(pod),
                "labels": dict(pod.labels),
                "node": target,
                "phase": "Running" if target else "Pending",
                "name": f"{base}-r{next(self._seq)}" if pod.owner_kind == "ReplicaSet" else pod.name,
            }
        )
        self._pods[replacement.key] = _SimPod(replacement, now + self.reschedule_seconds)


    # --- workloads (the ``scale`` action) ---------------------------------------------------------------------------
    @property
    def workloads(self) -> dict[tuple[str, str, str], _SimWorkload]:
        if not hasattr(self, "_workloads"):
            self._workloads: dict[tuple[str, str, str], _SimWorkload] = {}
        return self._workloads

    def add_workload(self, workload: Workload, *, template: Pod | None = None) -> Workload:
        """Register a Deployment (its pods are owned by the ReplicaSet named in ``template.owner_name``), a
        StatefulSet (pods ``<name>-<ordinal>``) or a CronJob. Pods already in the cluster count as its replicas."""
        with self._lock:
            self.workloads[(workload.kind, workload.namespace, workload.name)] = _SimWorkload(workload, template)
        return workload

    def _owned(self, sim: _SimWorkload) -> list[_SimPod]:
        w = sim.workload
        if w.kind == "StatefulSet":
            owner = ("StatefulSet", w.name)
        elif sim.template is not None:
            owner = (sim.template.owner_kind, sim.template.owner_name)
        else:
            return []
        return [
            sp
            for sp in self._pods.values()
            if sp.pod.namespace == w.namespace and (sp.pod.owner_kind, sp.pod.owner_name) == owner
        ]

    def list_workloads(self) -> list[Workload]:
        with self._lock:
            return [Workload(**vars(sw.workload)) for sw in self.workloads.values()]

    def get_workload(self, kind: str, namespace: str, name: str) -> Workload | None:
        with self._lock:
            sim = self.workloads.get((kind, namespace, name))
            return Workload(**vars(sim.workload)) if sim else None

    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        """The controller's work at once: surplus pods deleted (highest ordinal first), missing ones created on the
        least loaded schedulable node (Pending when there is none) and Ready after ``reschedule_seconds``."""
        with self._lock:
            sim = self.workloads.get((kind, namespace, name))
            if sim is None:
                raise LookupError(f"{kind} {namespace}/{name} not found")
            sim.workload.replicas = replicas
            owned = sorted(self._owned(sim), key=lambda sp: sp.pod.name)
            for sp in owned[replicas:]:
                del self._pods[sp.pod.key]
            template = sim.template or Pod(namespace, name, owner_kind=kind, owner_name=name)
            now = self.clock()
            for ordinal in range(len(owned), replicas):
                pod_name = f"{name}-{ordinal}" if kind == "StatefulSet" else f"{name}-s{next(self._seq)}"
                pod = Pod(**{**vars(template), "labels": dict(template.labels), "name": pod_name, "node": ""})
                if kind == "StatefulSet":
                    pod.owner_kind, pod.owner_name = "StatefulSet", name
                self._reschedule(pod, now)
            self._note_health()

    def set_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        with self._lock:
            sim = self.workloads.get(("CronJob", namespace, name))
            if sim is None:
                raise LookupError(f"CronJob {namespace}/{name} not found")
            sim.workload.suspend = suspend


@dataclass
class _SimWorkload:
    workload: Workload
    template: Pod | None = None


def add_demo_workloads(sim: SimulatedBackend, *, db_replicas: int = 0) -> None:
    """The demo's workloads: the web Deployment over its pods, a StatefulSet ``db`` (``db_replicas`` pods) and a
    nightly CronJob."""
    web = [p for p in sim.list_pods() if p.labels.get("app") == "web"]
    if web:
        template = Pod(
            "default",
            "web",
            cpu_m=250,
            memory_mib=256,
            owner_kind="ReplicaSet",
            owner_name="web-5d8f",
            labels={"app": "web"},
        )
        sim.add_workload(Workload("Deployment", "default", "web", replicas=len(web)), template=template)
    sim.add_workload(
        Workload("StatefulSet", "default", "db", replicas=0),
        template=Pod("default", "db", cpu_m=500, memory_mib=1024, labels={"app": "db"}),
    )
    if db_replicas:
        sim.set_replicas("StatefulSet", "default", "db", db_replicas)
    sim.add_workload(Workload("CronJob", "default", "nightly-report", suspend=False))

def demo_cluster(
    *,
    nodes: int = 3,
    pods_per_node: int = 4,
    clock: Callable[[], float] = time.time,
    reschedule_seconds: float = 5.0,
    instances: list[dict] | None = None,
) -> SimulatedBackend:
    """A small EKS-like cluster: on-demand and spot nodes, a web Deployment under a PDB, a DaemonSet, a mirror pod.

    ``instances`` (``{"instance_id", "zone", "instance_type", "lifecycle", "private_dns"}``) become the nodes, so that
    they link to the platform's inventory; otherwise ``nodes`` made-up ones.
    """
    sim = SimulatedBackend(clock=clock, reschedule_seconds=reschedule_seconds)
    zones = ("us-east-1a", "us-east-1b", "us-east-1c")
    made_up = [
        {
            "instance_id": f"i-{0x0A000000 + i:017x}",
            "zone": zones[i % 3],
            "instance_type": "m5.large",
            "lifecycle": "spot" if i % 3 == 2 else "on-demand",
            "private_dns": f"ip-10-0-{i // 250}-{i % 250 + 10}.ec2.internal",
        }
        for i in range(nodes)
    ]
    for i, inst in enumerate(instances or made_up):
        spot = inst["lifecycle"] == "spot"
        zone = inst["zone"]
        name = inst.get("private_dns") or f"ip-10-0-{i // 250}-{i % 250 + 10}.ec2.internal"
        sim.add_node(
            Node(
                name=name,
                provider_id=f"aws:///{zone}/{inst['instance_id']}",
                instance_type=inst["instance_type"],
                zone=zone,
                capacity_type="spot" if spot else "on-demand",
                labels={
                    "kubernetes.io/hostname": name,
                    "node.kubernetes.io/instance-type": inst["instance_type"],
                    "topology.kubernetes.io/zone": zone,
                    "karpenter.sh/capacity-type": "spot" if spot else "on-demand",
                },
                cpu_m=1930,
                memory_mib=7244,
                max_pods=29,
            )
        )
        sim.add_pod(
            Pod(
                "kube-system",
                f"aws-node-{i}",
                node=name,
                cpu_m=25,
                memory_mib=40,
                owner_kind="DaemonSet",
                owner_name="aws-node",
                priority=2000001000,
            )
        )
        sim.add_pod(
            Pod(
                "kube-system",
                f"kube-proxy-{name}",
                node=name,
                cpu_m=100,
                memory_mib=64,
                owner_kind="Node",
                owner_name=name,
                mirror=True,
                priority=2000001000,
            )
        )
        for j in range(max(0, pods_per_node - 2)):
            sim.add_pod(
                Pod(
                    "default",
                    f"web-{i}-{j}",
                    node=name,
                    cpu_m=250,
                    memory_mib=256,
                    owner_kind="ReplicaSet",
                    owner_name="web-5d8f",
                    labels={"app": "web"},
                )
            )
    web = sum(1 for p in sim.list_pods() if p.labels.get("app") == "web")
    if web:
        sim.add_pdb(PodDisruptionBudget("default", "web", {"app": "web"}, min_available=max(1, web - 1)))
    add_demo_workloads(sim)
    return sim
