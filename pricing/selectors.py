"""Reads of the pricing catalog, shared by inventory, the optimizer's problem builder and node templates.

All prices are ``Decimal`` USD per instance-hour (6 places), Linux/UNIX, shared tenancy. The catalog is global: no
tenancy applies. Every function here answers in a fixed number of queries (noted on each).

Typical use (node template -> offerings)::

    types = instance_types(region="eu-west-1", arch="arm64", min_vcpu=2)        # 1 query (lazy QuerySet)
    od = on_demand_prices("eu-west-1", instance_types=[t.name for t in types])  # 1 query
    spot = latest_spot_prices("eu-west-1", instance_types=od.keys())            # 1 query
    zones = offered_zones("eu-west-1", instance_types=od.keys())                # 1 query (on-demand pools)
    for (instance_type, zone), price in spot.items(): ...

The one cost rule, what an instance costs per hour at a given time, is :class:`PriceBook.price`; every figure (the
dashboard, the metrics summary, cluster pages, the inventory, the optimizer's current cost) prices through it::

    book = price_book([(region, instance_type) for ...], at=now)                # 2 queries, whatever the count
    book.price(instance_type, zone, capacity_type, region)                       # no query
    hourly_price(instance_type, zone, capacity_type, region, at=now)             # one instance: 2 queries
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

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


SPOT = "spot"
ON_DEMAND = "on-demand"


@dataclasses.dataclass(frozen=True)
class PriceBook:
    """The catalog's prices of some (region, instance type) pairs at one moment, and the one cost rule over them.

    ``on_demand``: (region, type) -> USD/h. ``spot``: (region, type, zone) -> the spot price in force at ``at`` (the
    newest point not after it).
    """

    at: datetime
    on_demand: dict[tuple[str, str], Decimal] = dataclasses.field(default_factory=dict)
    spot: dict[tuple[str, str, str], Decimal] = dataclasses.field(default_factory=dict)

    def price(
        self, instance_type: str, zone: str, capacity_type: str, region: str, *, recorded: Decimal | None = None
    ) -> Decimal | None:
        """What one instance costs per hour at ``self.at`` (USD, ``Decimal``), or None when nothing is known.

        - spot: the spot price of its pool (type, zone) in force at ``at``; when its zone has no recorded price, the
          dearest spot price of its type in the region's other zones (an estimate that never overstates the saving);
          with no spot price of the type in the region at all, ``recorded`` (the price last recorded for the
          instance, i.e. what this rule said when the inventory last saw it), else the on-demand price;
        - on-demand: the region's on-demand price, else ``recorded``.
        """
        if capacity_type == SPOT:
            price = self.spot.get((region, instance_type, zone))
            if price is None:
                price = max(
                    (p for (r, t, _), p in self.spot.items() if r == region and t == instance_type), default=None
                )
            if price is None:
                price = recorded
            if price is not None:
                return price
        price = self.on_demand.get((region, instance_type))
        return price if price is not None else recorded

    def on_demand_price(self, instance_type: str, region: str) -> Decimal | None:
        return self.on_demand.get((region, instance_type))


def spot_prices_at(pairs: Iterable[tuple[str, str]], *, at: datetime) -> dict[tuple[str, str, str], Decimal]:
    """(region, type, zone) -> the spot price in force at ``at`` for the given (region, type) pairs. One query.

    PostgreSQL: ``DISTINCT ON (region, instance_type, zone) ... WHERE timestamp <= at ORDER BY ..., timestamp DESC``
    (walks ``spot_price_latest_idx``); elsewhere a correlated subquery on the same index.
    """
    pairs = set(pairs)
    if not pairs:
        return {}
    regions = {r for r, _ in pairs}
    types = {t for _, t in pairs}
    qs = SpotPricePoint.objects.filter(region__in=regions, instance_type__in=types, timestamp__lte=at)
    if connection.vendor == "postgresql":
        qs = qs.order_by("region", "instance_type", "zone", "-timestamp").distinct("region", "instance_type", "zone")
    else:
        newest = (
            SpotPricePoint.objects.filter(
                region=OuterRef("region"),
                instance_type=OuterRef("instance_type"),
                zone=OuterRef("zone"),
                timestamp__lte=at,
            )
            .order_by("-timestamp")
            .values("timestamp")[:1]
        )
        qs = qs.filter(timestamp=Subquery(newest))
    rows = qs.values_list("region", "instance_type", "zone", "price")
    return {(r, t, z): p for r, t, z, p in rows if (r, t) in pairs}


def price_book(pairs: Iterable[tuple[str, str]], *, at: datetime | None = None) -> PriceBook:
    """The prices needed to price instances of the given (region, instance type) pairs at ``at`` (default: now).
    Two queries (on-demand, spot), none when ``pairs`` is empty."""
    at = at or timezone.now()
    pairs = set(pairs)
    if not pairs:
        return PriceBook(at=at)
    match = Q()
    for region in {r for r, _ in pairs}:
        match |= Q(region=region, instance_type__in=sorted({t for r, t in pairs if r == region}))
    rows = OnDemandPrice.objects.filter(match).values_list("region", "instance_type", "price")
    on_demand = {(region, itype): price for region, itype, price in rows}
    return PriceBook(at=at, on_demand=on_demand, spot=spot_prices_at(pairs, at=at))


def hourly_price(
    instance_type: str, zone: str, capacity_type: str, region: str, *, at: datetime | None = None
) -> Decimal | None:
    """What one instance costs per hour at ``at`` (default now): :meth:`PriceBook.price`. Two queries."""
    return price_book([(region, instance_type)], at=at).price(instance_type, zone, capacity_type, region)


def hourly_prices(
    instances: Iterable[tuple[str, str, str, str]], *, at: datetime | None = None
) -> dict[tuple[str, str, str, str], Decimal | None]:
    """(instance type, zone, capacity type, region) -> USD/h at ``at``, for many instances. Two queries."""
    keys = set(instances)
    book = price_book({(region, itype) for itype, _, _, region in keys}, at=at)
    return {key: book.price(*key) for key in keys}
