"""A small us-east-1 catalog with exact prices, in force since 2026-01-01 (so any hour after prices the same)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from clusters.models import Instance
from pricing.models import InstanceType, OnDemandPrice, SpotPricePoint
from tests.factories import ClusterFactory, InstanceFactory

REGION = "us-east-1"
SINCE = datetime(2026, 1, 1, tzinfo=UTC)
#: type -> (vcpu, memory MiB, on-demand USD/h, spot USD/h in us-east-1a)
PRICES = {
    "m5.large": (2, 8192, "0.096", "0.040"),
    "m5.xlarge": (4, 16384, "0.192", "0.080"),
    "c5.large": (2, 4096, "0.085", "0.035"),
}


@pytest.fixture
def catalog(db):
    for name, (vcpu, mem, od, spot) in PRICES.items():
        InstanceType.objects.create(name=name, family=name.split(".")[0], vcpu=vcpu, memory_mib=mem, arch="x86_64")
        OnDemandPrice.objects.create(region=REGION, instance_type=name, price=Decimal(od))
        SpotPricePoint.objects.create(
            region=REGION, zone="us-east-1a", instance_type=name, price=Decimal(spot), timestamp=SINCE
        )
    return PRICES


@pytest.fixture
def cluster(catalog, org):
    return ClusterFactory(organization=org, region=REGION, name="shop")


def add_nodes(cluster, instance_type: str, n: int, *, spot: bool = False, prefix: str = "n") -> list[Instance]:
    lifecycle = Instance.Lifecycle.SPOT if spot else Instance.Lifecycle.ON_DEMAND
    return [
        InstanceFactory(cluster=cluster, instance_type=instance_type, zone="us-east-1a", lifecycle=lifecycle)
        for _ in range(n)
    ]
