"""Reads of the pricing catalog, shared by inventory, the optimizer's problem builder and node templates.

All prices are ``Decimal`` USD per instance-hour (6 places), Linux/UNIX, shared tenancy. The catalog is global: no
tenancy applies. Every function here answers in a fixed number of queries (noted on each).

Typical use (node template -> offerings)::

    types = instance_types(region="eu-west-1", arch="arm64", min_vcpu=2)        # 1 query (lazy QuerySet)
    od = on_demand_prices("eu-west-1", instance_types=[t.name for t in types])  # 1 query
    spot = latest_spot_prices("eu-west-1", instance_types=od.keys())            # 1 query
    zones = offered_zones("eu-west-1", instance_types=od.keys())                # 1 query (on-demand pools)
    for (instance_type, zone), price in spot.items(): ...
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet, Subquery

from .models import InstanceType, InstanceTypeOffering, OnDemandPrice, SpotPricePoint


def instance_types(
    *,
    region: str | None = None,
    names: Iterable[str] | None = None,
    families: Iterable[str] | None = None,
    arch: str | Iterable[str] | None = None,
    min_vcpu: int | None = None,
    max_vcpu: int | None = None,
    min_memory_mib: int | None = None,
    max_memory_mib: int | None = None,
    gpu: bool | None = None,
    burstable: bool | None = None,
    bare_metal: bool | None = None,
    current_generation: bool | None = None,
    spot_supported: bool | None = None,
) -> QuerySet[InstanceType]:
    """Instance types matching every given criterion (None = any). One query when evaluated.

    With ``region``, only types priced there (an on-demand price or a spot price record in the region): that is what
    "offered in the region" means to the catalog.
    """
    qs = InstanceType.objects.all()
    if names is not None:
        qs = qs.filter(name__in=list(names))
    if families is not None:
        qs = qs.filter(family__in=list(families))
    if arch is not None:
        qs = qs.filter(arch__in=[arch] if isinstance(arch, str) else list(arch))
    if min_vcpu is not None:
        qs = qs.filter(vcpu__gte=min_vcpu)
    if max_vcpu is not None:
        qs = qs.filter(vcpu__lte=max_vcpu)
    if min_memory_mib is not None:
        qs = qs.filter(memory_mib__gte=min_memory_mib)
    if max_memory_mib is not None:
        qs = qs.filter(memory_mib__lte=max_memory_mib)
    if gpu is not None:
        qs = qs.filter(gpus__gt=0) if gpu else qs.filter(gpus=0)
    for field, value in (
        ("burstable", burstable),
        ("bare_metal", bare_metal),
        ("current_generation", current_generation),
        ("spot_supported", spot_supported),
    ):
        if value is not None:
            qs = qs.filter(**{field: value})
    if region is not None:
        qs = qs.filter(
            Exists(OnDemandPrice.objects.filter(region=region, instance_type=OuterRef("name")))
            | Exists(SpotPricePoint.objects.filter(region=region, instance_type=OuterRef("name")))
        )
    return qs.order_by("name")


def offered_zones(region: str, *, instance_types: Iterable[str] | None = None) -> dict[str, tuple[str, ...]]:
    """Instance type -> the zones of ``region`` that offer it (sorted). One query."""
    qs = InstanceTypeOffering.objects.filter(region=region)
    if instance_types is not None:
        qs = qs.filter(instance_type__in=list(instance_types))
    zones: dict[str, list[str]] = {}
    for instance_type, zone in qs.order_by("instance_type", "zone").values_list("instance_type", "zone"):
        zones.setdefault(instance_type, []).append(zone)
    return {t: tuple(z) for t, z in zones.items()}


def on_demand_prices(region: str, *, instance_types: Iterable[str] | None = None) -> dict[str, Decimal]:
    """Instance type -> on-demand USD/hour in ``region``. One query."""
    qs = OnDemandPrice.objects.filter(region=region)
    if instance_types is not None:
        qs = qs.filter(instance_type__in=list(instance_types))
    return dict(qs.values_list("instance_type", "price"))


def on_demand_prices_by_region(
    regions: Iterable[str], *, instance_types: Iterable[str] | None = None
) -> dict[tuple[str, str], Decimal]:
    """(region, instance type) -> on-demand USD/hour for several regions at once. One query."""
    qs = OnDemandPrice.objects.filter(region__in=list(regions))
    if instance_types is not None:
        qs = qs.filter(instance_type__in=list(instance_types))
    return {(region, itype): price for region, itype, price in qs.values_list("region", "instance_type", "price")}


def on_demand_price(region: str, instance_type: str) -> Decimal | None:
    """One on-demand price, or None. One query."""
    return (
        OnDemandPrice.objects.filter(region=region, instance_type=instance_type).values_list("price", flat=True).first()
    )


def latest_spot_price_points(
    region: str, *, instance_types: Iterable[str] | None = None, zones: Iterable[str] | None = None
) -> QuerySet[SpotPricePoint]:
    """The newest SpotPricePoint per (instance type, zone) in ``region``. One query when evaluated.

    PostgreSQL: ``SELECT DISTINCT ON (instance_type, zone) ... ORDER BY instance_type, zone, timestamp DESC`` (walks
    ``spot_price_latest_idx``). Elsewhere (SQLite): rows whose timestamp equals the newest of their pool, found by a
    correlated subquery on the same index.
    """
    qs = SpotPricePoint.objects.filter(region=region)
    if instance_types is not None:
        qs = qs.filter(instance_type__in=list(instance_types))
    if zones is not None:
        qs = qs.filter(zone__in=list(zones))
    if connection.vendor == "postgresql":
        return qs.order_by("instance_type", "zone", "-timestamp").distinct("instance_type", "zone")
    newest = (
        SpotPricePoint.objects.filter(region=region, instance_type=OuterRef("instance_type"), zone=OuterRef("zone"))
        .order_by("-timestamp")
        .values("timestamp")[:1]
    )
    return qs.filter(timestamp=Subquery(newest)).order_by("instance_type", "zone")


def latest_spot_prices(
    region: str, *, instance_types: Iterable[str] | None = None, zones: Iterable[str] | None = None
) -> dict[tuple[str, str], Decimal]:
    """(instance type, zone) -> latest spot USD/hour in ``region``. One query."""
    points = latest_spot_price_points(region, instance_types=instance_types, zones=zones)
    return {(p.instance_type, p.zone): p.price for p in points.only("instance_type", "zone", "price", "timestamp")}


def spot_price_history(
    region: str, *, instance_type: str, zone: str | None = None, since: datetime | None = None
) -> QuerySet[SpotPricePoint]:
    """The recorded spot prices of one type (optionally one zone) in time order. One query when evaluated."""
    qs = SpotPricePoint.objects.filter(region=region, instance_type=instance_type)
    if zone is not None:
        qs = qs.filter(zone=zone)
    if since is not None:
        qs = qs.filter(timestamp__gte=since)
    return qs.order_by("timestamp", "zone")


def hourly_price(
    region: str,
    instance_type: str,
    *,
    lifecycle: str,
    zone: str = "",
    on_demand: dict[str, Decimal] | None = None,
    spot: dict[tuple[str, str], Decimal] | None = None,
) -> Decimal | None:
    """The current price of one instance: the spot price of its pool; for a spot instance whose zone has no recorded
    price, the dearest spot price of its type in the region's other zones (an estimate that never overstates the
    saving); else on-demand. Pass the dicts from :func:`on_demand_prices` / :func:`latest_spot_prices` (for the whole
    region) to price many instances without more queries."""
    if on_demand is None:
        on_demand = on_demand_prices(region, instance_types=[instance_type])
    if lifecycle == "spot":
        if spot is None:
            spot = latest_spot_prices(region, instance_types=[instance_type])
        price = spot.get((instance_type, zone))
        if price is None:
            price = max((p for (t, _), p in spot.items() if t == instance_type), default=None)
        if price is not None:
            return price
    return on_demand.get(instance_type)
