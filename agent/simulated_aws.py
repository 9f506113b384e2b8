"""A simulated cluster that mirrors the AWS it is pointed at: it plays the cloud's kubelets, not the platform.

Each running EC2 instance tagged ``kubernetes.io/cluster/<name>`` is a node (named by its private DNS name, sized from
``DescribeInstanceTypes``); a newly launched one joins NotReady and becomes Ready ``join_seconds`` later; a terminated
one disappears and its controller-owned pods are rescheduled (Pending when nothing has room). Pods have requests and
owners, a Deployment runs under a PodDisruptionBudget, and scheduling respects each node's allocatable CPU, memory
and pod count. The agent's loop calls :meth:`sync` before each round (``spotopt-agent --simulate --aws-cluster``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions

from .backend import Node, Pod
from .backend import Workload as BackendWorkload
from .simulated import CONTROLLERS, PodDisruptionBudget, SimulatedBackend, _SimPod

logger = logging.getLogger("agent.simulated")

CLUSTER_TAG = "kubernetes.io/cluster/"
RESERVED_CPU_M = 150
RESERVED_MEMORY_MIB = 700


@dataclass
class Workload:
    """A Deployment-like owner of ``replicas`` identical pods."""

    namespace: str
    name: str
    replicas: int
    cpu_m: int
    memory_mib: int
    min_available: int | None = None
    do_not_disrupt: bool = False


DEFAULT_WORKLOADS = (
    Workload("shop", "web", 6, 500, 1024, min_available=4),
    Workload("shop", "api", 4, 700, 1536, min_available=3),
    Workload("shop", "worker", 3, 1000, 2048),
)


class AwsMirroredCluster(SimulatedBackend):
    """A :class:`SimulatedBackend` whose nodes are the cluster's EC2 instances."""

    def __init__(
        self,
        *,
        cluster_name: str,
        region: str,
        ec2_client: Any = None,
        join_seconds: float = 10.0,
        reschedule_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(reschedule_seconds=reschedule_seconds, clock=clock)
        self.cluster_name = cluster_name
        self.region = region
        self.ec2 = ec2_client or boto3.client("ec2", region_name=region)
        self.join_seconds = join_seconds
        self._ready_at: dict[str, float] = {}
        self._sizes: dict[str, tuple[int, int, int]] = {}
        self.joined: list[str] = []
        self.removed: list[str] = []

    # --- the cloud side ------------------------------------------------------------------------------------------
    def _instances(self) -> list[dict]:
        out = []
        paginator = self.ec2.get_paginator("describe_instances")
        for page in paginator.paginate(
            Filters=[
                {"Name": "tag-key", "Values": [f"{CLUSTER_TAG}{self.cluster_name}"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        ):
            for reservation in page.get("Reservations", []):
                out.extend(reservation.get("Instances", []))
        return out

    def _size(self, instance_type: str) -> tuple[int, int, int]:
        """Allocatable (cpu_m, memory_mib, pods) of a type, from DescribeInstanceTypes."""
        if instance_type not in self._sizes:
            vcpu, memory, pods = 2, 8192, 29
            try:
                info = self.ec2.describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"][0]
                vcpu = int(info["VCpuInfo"]["DefaultVCpus"])
                memory = int(info["MemoryInfo"]["SizeInMiB"])
                net = info.get("NetworkInfo", {})
                enis, ips = int(net.get("MaximumNetworkInterfaces", 3)), int(net.get("Ipv4AddressesPerInterface", 10))
                # The VPC CNI's limit, capped as EKS recommends (110 up to 30 vCPUs, 250 above): what the
                # platform's planner assumes a node of this type runs.
                pods = min(110 if vcpu <= 30 else 250, enis * (ips - 1) + 2)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, KeyError, IndexError) as exc:
                logger.info("no size for %s: %s", instance_type, exc)
            self._sizes[instance_type] = (vcpu * 1000 - RESERVED_CPU_M, memory - RESERVED_MEMORY_MIB, pods)
        return self._sizes[instance_type]

    def sync(self) -> None:
        """Mirror the cloud: join new instances, mark joined ones Ready after ``join_seconds``, remove terminated
        ones (their pods rescheduled), then schedule Pending pods where they fit."""
        now = self.clock()
        instances = {i["InstanceId"]: i for i in self._instances()}
        with self._lock:
            by_instance = {n.provider_id.rsplit("/", 1)[-1]: n for n in self.nodes.values()}
            for instance_id, raw in instances.items():
                if instance_id in by_instance:
                    continue
                zone = raw.get("Placement", {}).get("AvailabilityZone", "")
                itype = raw.get("InstanceType", "")
                name = raw.get("PrivateDnsName") or f"ip-{instance_id}.ec2.internal"
                spot = raw.get("InstanceLifecycle") == "spot"
                cpu, mem, pods = self._size(itype)
                self.nodes[name] = Node(
                    name=name,
                    provider_id=f"aws:///{zone}/{instance_id}",
                    instance_type=itype,
                    zone=zone,
                    capacity_type="spot" if spot else "on-demand",
                    labels={
                        "kubernetes.io/hostname": name,
                        "node.kubernetes.io/instance-type": itype,
                        "topology.kubernetes.io/zone": zone,
                        "karpenter.sh/capacity-type": "spot" if spot else "on-demand",
                    },
                    ready=False,
                    cpu_m=cpu,
                    memory_mib=mem,
                    max_pods=pods,
                )
                self._ready_at[name] = now + self.join_seconds
                self.joined.append(name)
                self._add_daemonset_pod(name)
            for instance_id, node in list(by_instance.items()):
                if instance_id not in instances:
                    self._remove_node(node.name, now)
            for name, node in self.nodes.items():
                if not node.ready and self._ready_at.get(name, 0) <= now:
                    node.ready = True
            self._schedule_pending(now)

    # --- the kubelet / scheduler side ----------------------------------------------------------------------------
    def _add_daemonset_pod(self, node: str) -> None:
        pod = Pod(
            "kube-system",
            f"aws-node-{node}",
            node=node,
            cpu_m=25,
            memory_mib=40,
            owner_kind="DaemonSet",
            owner_name="aws-node",
            priority=2000001000,
        )
        self._pods[pod.key] = _SimPod(pod, self.clock())

    def _remove_node(self, name: str, now: float) -> None:
        self.nodes.pop(name, None)
        self.removed.append(name)
        for key, sim in list(self._pods.items()):
            if sim.pod.node != name:
                continue
            del self._pods[key]
            if sim.pod.owner_kind in CONTROLLERS:
                self._reschedule(sim.pod, now)
        self._note_health()

    def _free(self) -> dict[str, list[int]]:
        free = {
            n.name: [n.cpu_m, n.memory_mib, n.max_pods]
            for n in self.nodes.values()
            if n.ready and not n.unschedulable and not any(t.get("effect") == "NoSchedule" for t in n.taints)
        }
        for sim in self._pods.values():
            if sim.pod.node in free:
                f = free[sim.pod.node]
                f[0] -= sim.pod.cpu_m
                f[1] -= sim.pod.memory_mib
                f[2] -= 1
        return free

    def _place(self, pod: Pod, free: dict[str, list[int]]) -> str:
        fits = [name for name, f in free.items() if f[0] >= pod.cpu_m and f[1] >= pod.memory_mib and f[2] >= 1]
        if not fits:
            return ""
        target = max(fits, key=lambda name: (free[name][0], name))
        free[target][0] -= pod.cpu_m
        free[target][1] -= pod.memory_mib
        free[target][2] -= 1
        return target

    def _reschedule(self, pod: Pod, now: float) -> None:
        """The controller recreates the pod where it fits (the scheduler's choice: most free CPU), or Pending."""
        target = self._place(pod, self._free())
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

    def _schedule_pending(self, now: float) -> None:
        free = self._free()
        for sim in sorted(self._pods.values(), key=lambda s: s.pod.key):
            if sim.pod.phase == "Pending" and not sim.pod.daemonset:
                target = self._place(sim.pod, free)
                if target:
                    sim.pod.node = target
                    sim.pod.phase = "Running"
                    sim.ready_at = now + self.reschedule_seconds

    def add_workloads(self, workloads: tuple[Workload, ...] = DEFAULT_WORKLOADS) -> None:
        """Create the workloads' pods (scheduled where they fit) and their PDBs."""
        now = self.clock()
        with self._lock:
            for w in workloads:
                for i in range(w.replicas):
                    pod = Pod(
                        w.namespace,
                        f"{w.name}-{i}",
                        node="",
                        phase="Pending",
                        cpu_m=w.cpu_m,
                        memory_mib=w.memory_mib,
                        owner_kind="ReplicaSet",
                        owner_name=w.name,
                        do_not_disrupt=w.do_not_disrupt,
                        labels={"app": w.name},
                    )
                    self._pods[pod.key] = _SimPod(pod, now)
                if w.min_available is not None:
                    self.pdbs.append(
                        PodDisruptionBudget(w.namespace, w.name, {"app": w.name}, min_available=w.min_available)
                    )
            self._schedule_pending(now)
            for sim in self._pods.values():
                if sim.pod.phase == "Running":
                    sim.ready_at = now
            self._note_health()

    # --- what tests and the demo look at -------------------------------------------------------------------------
    def pending_pods(self) -> list[Pod]:
        return [p for p in self.list_pods() if p.phase == "Pending"]

    def list_nodes(self) -> list[Node]:
        return super().list_nodes()


def mirrored_cluster(
    *,
    cluster_name: str,
    region: str,
    endpoint_url: str | None = None,
    join_seconds: float = 10.0,
    reschedule_seconds: float = 2.0,
    workloads: tuple[Workload, ...] = DEFAULT_WORKLOADS,
    clock: Callable[[], float] = time.time,
) -> AwsMirroredCluster:
    """The cluster as AWS has it now (instances already running are Ready at once), with ``workloads`` on it."""
    client = boto3.client("ec2", region_name=region, endpoint_url=endpoint_url or None)
    sim = AwsMirroredCluster(
        cluster_name=cluster_name,
        region=region,
        ec2_client=client,
        join_seconds=0,
        reschedule_seconds=reschedule_seconds,
        clock=clock,
    )
    sim.sync()
    sim.sync()
    sim.join_seconds = join_seconds
    sim.add_workloads(workloads)
    register_deployments(sim, workloads)
    return sim


def register_deployments(sim: SimulatedBackend, workloads: tuple[Workload, ...]) -> None:
    """Each workload as a Deployment the ``scale`` action can scale (its pods are owned by the ReplicaSet of its
    name), and a nightly CronJob, so that hibernation can put them to sleep and back."""
    for w in workloads:
        template = Pod(
            w.namespace,
            w.name,
            cpu_m=w.cpu_m,
            memory_mib=w.memory_mib,
            owner_kind="ReplicaSet",
            owner_name=w.name,
            do_not_disrupt=w.do_not_disrupt,
            labels={"app": w.name},
        )
        sim.add_workload(BackendWorkload("Deployment", w.namespace, w.name, replicas=w.replicas), template=template)
    if workloads:
        sim.add_workload(BackendWorkload("CronJob", workloads[0].namespace, "nightly-report", suspend=False))
