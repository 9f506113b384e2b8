"""Catalog fixtures for template tests: a small hand-made catalog with exact prices, and the bundled snapshot."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from pricing.models import InstanceType, OnDemandPrice, SpotPricePoint

REGION = "us-east-1"

# name, family, vcpu, memory_mib, arch, gpus, burstable, bare_metal, current_generation, enis, ips
TYPES = [
    ("m5.large", "m5", 2, 8192, "x86_64", 0, False, False, True, 3, 10),
    ("m5.xlarge", "m5", 4, 16384, "x86_64", 0, False, False, True, 4, 15),
    ("m7g.large", "m7g", 2, 8192, "arm64", 0, False, False, True, 3, 10),
    ("c7i.xlarge", "c7i", 4, 8192, "x86_64", 0, False, False, True, 4, 15),
    ("c7i.metal-24xl", "c7i", 96, 196608, "x86_64", 0, False, True, True, 15, 50),
    ("t3.medium", "t3", 2, 4096, "x86_64", 0, True, False, True, 3, 6),
    ("g5.xlarge", "g5", 4, 16384, "x86_64", 1, False, False, True, 4, 15),
    ("m4.large", "m4", 2, 8192, "x86_64", 0, False, False, False, 2, 10),
    ("mac1.metal", "mac1", 12, 32768, "x86_64", 0, False, True, True, 8, 30),
]
ON_DEMAND = {
    "m5.large": "0.096000",
    "m5.xlarge": "0.192000",
    "m7g.large": "0.081600",
    "c7i.xlarge": "0.178500",
    "c7i.metal-24xl": "4.284000",
    "t3.medium": "0.041600",
    "g5.xlarge": "1.006000",
    "m4.large": "0.100000",
}
# (type, zone): latest spot price. An older, different price is stored too, to prove the latest one is used.
SPOT = {
    ("m5.large", "us-east-1a"): "0.040000",
    ("m5.large", "us-east-1b"): "0.048000",
    ("m5.xlarge", "us-east-1a"): "0.080000",
    ("m7g.large", "us-east-1a"): "0.030000",
    ("c7i.xlarge", "us-east-1b"): "0.070000",
    ("t3.medium", "us-east-1a"): "0.015000",
    ("g5.xlarge", "us-east-1a"): "0.400000",
    ("m4.large", "us-east-1a"): "0.030000",
}


@pytest.fixture
def catalog(db):
    """A small catalog of us-east-1 with exact prices (see ``TYPES``, ``ON_DEMAND``, ``SPOT``)."""
    InstanceType.objects.bulk_create(
        InstanceType(
            name=name,
            family=family,
            vcpu=vcpu,
            memory_mib=mem,
            arch=arch,
            gpus=gpus,
            burstable=burst,
            bare_metal=metal,
            current_generation=current,
            max_network_interfaces=enis,
            ipv4_addresses_per_interface=ips,
            max_pods=enis * (ips - 1) + 2,
        )
        for name, family, vcpu, mem, arch, gpus, burst, metal, current, enis, ips in TYPES
    )
    OnDemandPrice.objects.bulk_create(
        OnDemandPrice(region=REGION, instance_type=name, price=Decimal(price)) for name, price in ON_DEMAND.items()
    )
    now = timezone.now()
    points = []
    for (name, zone), price in SPOT.items():
        points.append(SpotPricePoint(region=REGION, zone=zone, instance_type=name, price=Decimal(price), timestamp=now))
        points.append(
            SpotPricePoint(
                region=REGION, zone=zone, instance_type=name, price=Decimal("9.999"), timestamp=now - timedelta(hours=3)
            )
        )
    SpotPricePoint.objects.bulk_create(points)
    return {"types": TYPES, "on_demand": ON_DEMAND, "spot": SPOT}


@pytest.fixture
def snapshot_catalog(db):
    """The bundled real snapshot (instance types, us-east-1 prices and spot history)."""
    call_command("load_pricing_snapshot", region=[REGION], stdout=io.StringIO())
