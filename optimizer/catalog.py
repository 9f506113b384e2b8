"""EKS-style node sizing: what kubelet leaves for pods on an EC2 instance type (pure functions, no Django).

The figures follow the Amazon EKS AMI bootstrap defaults:

* max pods (VPC CNI without prefix delegation): ``ENIs * (IPv4 per ENI - 1) + 2``, capped at 110 for instances with
  up to 30 vCPUs and 250 above;
* kube-reserved CPU: 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% of every core above four;
* kube-reserved memory: ``255 MiB + 11 MiB * max pods``; plus the 100 MiB hard-eviction threshold.

The spot advisor's interruption buckets are turned into a single rate by their midpoint (`INTERRUPTION_MIDPOINTS`).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "EVICTION_MEMORY_MIB",
    "INTERRUPTION_MIDPOINTS",
    "allocatable_cpu_m",
    "allocatable_memory_mib",
    "eni_max_pods",
    "kube_reserved_cpu_m",
    "kube_reserved_memory_mib",
    "offering",
]

EVICTION_MEMORY_MIB = 100
#: Spot advisor bucket index (0: <5%, 1: 5-10%, 2: 10-15%, 3: 15-20%, 4: >20%) -> interruption rate used for it.
INTERRUPTION_MIDPOINTS = (0.025, 0.075, 0.125, 0.175, 0.225)


def eni_max_pods(enis: int, ips_per_eni: int, vcpu: int) -> int:
    """Pods the VPC CNI can address: one IP per ENI is the node's own, plus 2 host-network pods; EKS caps it."""
    raw = enis * (ips_per_eni - 1) + 2
    return max(0, min(raw, 110 if vcpu <= 30 else 250))


def kube_reserved_cpu_m(vcpu: int) -> int:
    """Millicores kept for kubelet and the runtime (EKS AMI tiers), rounded up so we never over-promise."""
    cores = float(vcpu)
    reserved = 0.0
    for width, rate in ((1, 0.06), (1, 0.01), (2, 0.005), (math.inf, 0.0025)):
        step = min(cores, width)
        reserved += step * 1000 * rate
        cores -= step
        if cores <= 0:
            break
    return math.ceil(reserved - 1e-9)


def kube_reserved_memory_mib(max_pods: int) -> int:
    """MiB kept for kubelet: 255 plus 11 per pod the node may run."""
    return 255 + 11 * max_pods


def allocatable_cpu_m(vcpu: int) -> int:
    """Allocatable millicores of an instance with `vcpu` vCPUs."""
    return max(0, vcpu * 1000 - kube_reserved_cpu_m(vcpu))


def allocatable_memory_mib(memory_mib: int, max_pods: int) -> int:
    """Allocatable MiB: memory minus kube-reserved and the eviction threshold."""
    return max(0, memory_mib - kube_reserved_memory_mib(max_pods) - EVICTION_MEMORY_MIB)


def offering(
    spec: dict[str, Any], *, zone: str, capacity_type: str, price: str, interruption_rate: float | None = None
) -> dict[str, Any]:
    """A format-v1 offering for an instance type record of ``pricing/data/aws/instance_types.json``."""
    vcpu = int(spec["vcpu"])
    pods = eni_max_pods(int(spec["max_network_interfaces"] or 1), int(spec["ipv4_addresses_per_interface"] or 1), vcpu)
    out: dict[str, Any] = {
        "instance_type": spec["instance_type"],
        "zone": zone,
        "capacity_type": capacity_type,
        "price": price,
        "allocatable_cpu_m": allocatable_cpu_m(vcpu),
        "allocatable_memory_mib": allocatable_memory_mib(int(spec["memory_mib"]), pods),
        "max_pods": pods,
        "arch": spec["arch"],
    }
    if interruption_rate is not None:
        out["interruption_rate"] = interruption_rate
    return out
