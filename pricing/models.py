"""The pricing catalog: instance types, on-demand prices per region, spot price history per zone.

The catalog is global (prices are public facts, not tenant data). Rows come from AWS when an account is linked and
from the bundled snapshot in ``pricing/data/aws`` otherwise (``manage.py load_pricing_snapshot``).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Source(models.TextChoices):
    AWS = "aws", "AWS API"
    SNAPSHOT = "snapshot", "Bundled snapshot"
    # Snapshot price scaled by the region's April-2019 price ratio to us-east-1 (no current regional source exists).
    SNAPSHOT_DERIVED = "snapshot-derived", "Bundled snapshot (regional estimate)"


class InstanceType(models.Model):
    """An EC2 instance type and what a Kubernetes node of that type can hold."""

    class Arch(models.TextChoices):
        X86_64 = "x86_64", "x86_64"
        ARM64 = "arm64", "arm64"

    name = models.CharField(max_length=64, unique=True)
    family = models.CharField(max_length=32, db_index=True)
    vcpu = models.PositiveIntegerField()
    memory_mib = models.PositiveIntegerField()
    arch = models.CharField(max_length=10, choices=Arch.choices)
    gpus = models.PositiveIntegerField(default=0)
    burstable = models.BooleanField(default=False)
    bare_metal = models.BooleanField(default=False)
    current_generation = models.BooleanField(default=True)
    spot_supported = models.BooleanField(default=True)
    max_network_interfaces = models.PositiveIntegerField(default=0)
    ipv4_addresses_per_interface = models.PositiveIntegerField(default=0)
    # ENIs * (IPv4 per ENI - 1) + 2, as the EKS VPC CNI computes it; 0 when AWS does not publish the limits.
    max_pods = models.PositiveIntegerField(default=0)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SNAPSHOT)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "pricing_instance_types"
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(condition=models.Q(arch__in=["x86_64", "arm64"]), name="instance_type_arch_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class OnDemandPrice(models.Model):
    """Linux, shared tenancy, on-demand USD per hour of one instance type in one region: the price in force now
    (the one cost rule reads it), since ``effective_from``. Earlier prices are kept in
    :class:`OnDemandPriceHistory`."""

    region = models.CharField(max_length=32)
    instance_type = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=12, decimal_places=6)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SNAPSHOT)
    updated_at = models.DateTimeField(default=timezone.now, help_text="Last confirmed by a refresh.")
    effective_from = models.DateTimeField(default=timezone.now, help_text="The price took effect (first seen).")

    class Meta:
        db_table = "pricing_on_demand_prices"
        ordering = ("region", "instance_type")
        constraints = [
            models.UniqueConstraint(fields=["region", "instance_type"], name="unique_on_demand_price"),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="on_demand_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.region} {self.instance_type} {self.price}"


class OnDemandPriceHistory(models.Model):
    """Every on-demand price the catalog has had, with the date it took effect: appended when a refresh or a
    snapshot load sees a new price, never overwritten, so a figure can say which list price was in force."""

    region = models.CharField(max_length=32)
    instance_type = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=12, decimal_places=6)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SNAPSHOT)
    effective_from = models.DateTimeField()

    class Meta:
        db_table = "pricing_on_demand_price_history"
        ordering = ("region", "instance_type", "-effective_from")
        constraints = [
            models.UniqueConstraint(
                fields=["region", "instance_type", "effective_from"], name="unique_on_demand_price_history"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.region} {self.instance_type} {self.price} from {self.effective_from:%Y-%m-%d}"


class SpotPricePoint(models.Model):
    """One spot price observation (``DescribeSpotPriceHistory`` record) for Linux/UNIX."""

    region = models.CharField(max_length=32)
    zone = models.CharField(max_length=32)
    instance_type = models.CharField(max_length=64)
    price = models.DecimalField(max_digits=12, decimal_places=6)
    timestamp = models.DateTimeField()
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SNAPSHOT)

    class Meta:
        db_table = "pricing_spot_price_points"
        ordering = ("region", "instance_type", "zone", "-timestamp")
        constraints = [
            models.UniqueConstraint(
                fields=["region", "zone", "instance_type", "timestamp"], name="unique_spot_price_point"
            ),
            models.CheckConstraint(condition=models.Q(price__gte=0), name="spot_price_not_negative"),
        ]
        indexes = [
            # selectors.latest_spot_prices: DISTINCT ON (instance_type, zone) ... WHERE region = %s
            # ORDER BY instance_type, zone, timestamp DESC walks this index in order.
            models.Index(fields=["region", "instance_type", "zone", "-timestamp"], name="spot_price_latest_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.zone} {self.instance_type} {self.price} @ {self.timestamp:%Y-%m-%d %H:%M}"


class InstanceTypeOffering(models.Model):
    """An instance type offered in an availability zone (``DescribeInstanceTypeOfferings``, location type
    availability-zone). Node templates use it to know where on-demand capacity of a type can be launched."""

    region = models.CharField(max_length=32)
    zone = models.CharField(max_length=32)
    instance_type = models.CharField(max_length=64)
    source = models.CharField(max_length=20, choices=Source.choices, default=Source.SNAPSHOT)

    class Meta:
        db_table = "pricing_instance_type_offerings"
        ordering = ("region", "instance_type", "zone")
        constraints = [
            # Also serves selectors.offered_zones: WHERE region = %s [AND instance_type IN (...)].
            models.UniqueConstraint(fields=["region", "instance_type", "zone"], name="unique_instance_type_offering"),
        ]

    def __str__(self) -> str:
        return f"{self.instance_type} in {self.zone}"
