"""EKS node sizing helpers against figures published for the EKS AMI."""

from __future__ import annotations

import pytest

from optimizer.catalog import (
    allocatable_cpu_m,
    allocatable_memory_mib,
    eni_max_pods,
    kube_reserved_cpu_m,
    kube_reserved_memory_mib,
    offering,
)


@pytest.mark.parametrize(("vcpu", "reserved"), [(1, 60), (2, 70), (4, 80), (8, 90), (48, 190), (96, 310)])
def test_kube_reserved_cpu_tiers(vcpu: int, reserved: int) -> None:
    assert kube_reserved_cpu_m(vcpu) == reserved


@pytest.mark.parametrize(
    ("enis", "ips", "vcpu", "pods"),
    [(3, 10, 2, 29), (4, 15, 4, 58), (8, 30, 32, 234), (15, 50, 192, 250), (15, 50, 16, 110), (2, 2, 2, 4)],
)
def test_eni_max_pods_with_eks_caps(enis: int, ips: int, vcpu: int, pods: int) -> None:
    assert eni_max_pods(enis, ips, vcpu) == pods


def test_m5_large_allocatable() -> None:
    assert kube_reserved_memory_mib(29) == 574
    assert allocatable_cpu_m(2) == 1930
    assert allocatable_memory_mib(8192, 29) == 8192 - 574 - 100
    spec = {
        "instance_type": "m5.large",
        "vcpu": 2,
        "memory_mib": 8192,
        "arch": "x86_64",
        "max_network_interfaces": 3,
        "ipv4_addresses_per_interface": 10,
    }
    o = offering(spec, zone="us-east-1a", capacity_type="spot", price="0.035", interruption_rate=0.025)
    assert o == {
        "instance_type": "m5.large",
        "zone": "us-east-1a",
        "capacity_type": "spot",
        "price": "0.035",
        "allocatable_cpu_m": 1930,
        "allocatable_memory_mib": 7518,
        "max_pods": 29,
        "arch": "x86_64",
        "interruption_rate": 0.025,
    }
