"""Writes to the pricing catalog: the bundled snapshot, and refreshes from AWS for linked accounts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audit.services import record
from cloud import AccountSession, ec2, errors
from cloud import pricing as cloud_pricing
from cloud.types import InstanceTypeInfo, SpotPrice

from . import snapshot
from .models import (
    InstanceType,
    InstanceTypeOffering,
    OnDemandPrice,
    OnDemandPriceHistory,
    Source,
    SpotPricePoint,
)

logger = logging.getLogger(__name__)

BATCH_SIZE = 2000
#: moto (and nothing real) answers 0.00001 for every spot price; anything below this is a placeholder.
PLACEHOLDER_PRICE_BELOW = Decimal("0.0001")
#: moto's fixed spot price timestamp (Go's reference time); real AWS never returns records that old.
PLACEHOLDER_BEFORE = datetime(2008, 1, 1, tzinfo=UTC)

_TYPE_FIELDS = [
    "family",
    "vcpu",
    "memory_mib",
    "arch",
    "gpus",
    "burstable",
    "bare_metal",
    "current_generation",
    "spot_supported",
    "max_network_interfaces",
    "ipv4_addresses_per_interface",
    "max_pods",
    "source",
    "updated_at",
]


@dataclass(frozen=True)
class SnapshotLoadResult:
    instance_types: int
    on_demand_prices: int
    spot_price_points: int
    offerings: int = 0


def _upsert_on_demand_prices(rows: list[OnDemandPrice], *, now) -> None:
    """Write the prices in force now; a price that changed (or is new) takes effect now and is appended to the
    history, an unchanged one keeps the date it took effect. Three queries per batch (current, history, upsert)."""
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start : start + BATCH_SIZE]
        match = Q()
        for region in {r.region for r in batch}:
            match |= Q(region=region, instance_type__in=[r.instance_type for r in batch if r.region == region])
        current = {
            (region, itype): (price, since)
            for region, itype, price, since in OnDemandPrice.objects.filter(match).values_list(
                "region", "instance_type", "price", "effective_from"
            )
        }
        changed = []
        for row in batch:
            price, since = current.get((row.region, row.instance_type), (None, None))
            if price is not None and price == row.price:
                row.effective_from = since
            else:
                row.effective_from = now
                changed.append(row)
        OnDemandPriceHistory.objects.bulk_create(
            [
                OnDemandPriceHistory(
                    region=r.region, instance_type=r.instance_type, price=r.price, source=r.source, effective_from=now
                )
                for r in changed
            ],
            ignore_conflicts=True,
        )
        OnDemandPrice.objects.bulk_create(
            batch,
            update_conflicts=True,
            unique_fields=["region", "instance_type"],
            update_fields=["price", "source", "updated_at", "effective_from"],
        )


def _upsert_instance_types(rows: list[InstanceType]) -> int:
    InstanceType.objects.bulk_create(
        rows, batch_size=BATCH_SIZE, update_conflicts=True, unique_fields=["name"], update_fields=_TYPE_FIELDS
    )
    return len(rows)


def catalog_load_snapshot(*, data_dir: Path = snapshot.DATA_DIR, regions: set[str] | None = None) -> SnapshotLoadResult:
    """Load the bundled snapshot (instance types, on-demand prices, spot prices). Bulk and idempotent.

    Rows that came from AWS are never overwritten by the snapshot. ``regions`` limits the prices loaded.
    """
    now = timezone.now()
    with transaction.atomic():
        aws_types = set(InstanceType.objects.filter(source=Source.AWS).values_list("name", flat=True))
        types = [
            InstanceType(
                name=t.name,
                family=t.family,
                vcpu=t.vcpu,
                memory_mib=t.memory_mib,
                arch=t.arch,
                gpus=t.gpus,
                burstable=t.burstable,
                bare_metal=t.bare_metal,
                current_generation=t.current_generation,
                spot_supported=t.spot_supported,
                max_network_interfaces=t.max_network_interfaces,
                ipv4_addresses_per_interface=t.ipv4_addresses_per_interface,
                max_pods=t.max_pods,
                source=Source.SNAPSHOT,
                updated_at=now,
            )
            for t in snapshot.instance_types(data_dir)
            if t.name not in aws_types
        ]
        type_count = _upsert_instance_types(types)

        aws_prices = set(OnDemandPrice.objects.filter(source=Source.AWS).values_list("region", "instance_type"))
        prices = [
            OnDemandPrice(
                region=region,
                instance_type=instance_type,
                price=price,
                source=Source.SNAPSHOT_DERIVED if derived else Source.SNAPSHOT,
                updated_at=now,
            )
            for region, instance_type, price, derived in snapshot.on_demand_prices(data_dir)
            if (regions is None or region in regions) and (region, instance_type) not in aws_prices
        ]
        _upsert_on_demand_prices(prices, now=now)

        points = [
            SpotPricePoint(region=r, zone=z, instance_type=t, price=p, timestamp=ts, source=Source.SNAPSHOT)
            for r, z, t, p, ts in snapshot.spot_prices(data_dir, regions=regions)
        ]
        SpotPricePoint.objects.bulk_create(points, batch_size=BATCH_SIZE, ignore_conflicts=True)

        offerings = [
            InstanceTypeOffering(region=r, zone=z, instance_type=t, source=Source.SNAPSHOT)
            for r, z, t in snapshot.zone_offerings(data_dir, regions=regions)
        ]
        InstanceTypeOffering.objects.bulk_create(offerings, batch_size=BATCH_SIZE, ignore_conflicts=True)

        result = SnapshotLoadResult(
            instance_types=type_count,
            on_demand_prices=len(prices),
            spot_price_points=len(points),
            offerings=len(offerings),
        )
        record(
            action="pricing.snapshot_loaded",
            actor="system",
            resource_type="pricing_catalog",
            after={
                "instance_types": result.instance_types,
                "on_demand_prices": result.on_demand_prices,
                "spot_price_points": result.spot_price_points,
                "offerings": result.offerings,
                "regions": sorted(regions) if regions else "all",
            },
        )
    return result


def catalog_is_empty() -> bool:
    return not InstanceType.objects.exists()


def is_placeholder_spot_price(point: SpotPrice) -> bool:
    """moto's spot prices are fixed placeholders; real AWS never answers them."""
    return point.price < PLACEHOLDER_PRICE_BELOW or point.timestamp < PLACEHOLDER_BEFORE


def spot_prices_ingest(*, region: str, points: list[SpotPrice]) -> int:
    """Store real spot price records for ``region`` (placeholders dropped); returns how many were offered."""
    rows = [
        SpotPricePoint(
            region=region,
            zone=p.zone,
            instance_type=p.instance_type,
            price=snapshot.quantize(p.price),
            timestamp=p.timestamp,
            source=Source.AWS,
        )
        for p in points
        if not is_placeholder_spot_price(p)
    ]
    SpotPricePoint.objects.bulk_create(rows, batch_size=BATCH_SIZE, ignore_conflicts=True)
    return len(rows)


def spot_prices_refresh(*, session: AccountSession, region: str, since: timedelta = timedelta(hours=1)) -> int:
    """Fetch the last ``since`` of spot prices in ``region`` and store them. Returns the number of real records.

    When AWS answers only placeholders (moto) nothing is stored and the snapshot stays the source.
    """
    points = ec2.describe_spot_price_history(
        session.for_region(region), start_time=timezone.now() - since, product_descriptions=("Linux/UNIX",)
    )
    return spot_prices_ingest(region=region, points=points)


def on_demand_prices_refresh(*, session: AccountSession, region: str) -> int:
    """Refresh on-demand prices of ``region`` from the Pricing API; 0 when it is unavailable (moto, no access)."""
    try:
        prices = cloud_pricing.on_demand_prices(session, region=region)
    except (errors.Unavailable, errors.AccessDenied) as exc:
        logger.info("Pricing API unavailable for %s, keeping the snapshot: %s", region, exc)
        return 0
    now = timezone.now()
    rows = [
        OnDemandPrice(region=region, instance_type=t, price=snapshot.quantize(p), source=Source.AWS, updated_at=now)
        for t, p in prices.items()
        if p >= PLACEHOLDER_PRICE_BELOW
    ]
    with transaction.atomic():
        _upsert_on_demand_prices(rows, now=now)
        if rows:
            record(
                action="pricing.on_demand_refreshed",
                actor="system",
                resource_type="pricing_catalog",
                resource_id=region,
                after={"region": region, "prices": len(rows)},
            )
    return len(rows)


def instance_types_refresh(*, session: AccountSession) -> int:
    """Update instance types from ``DescribeInstanceTypes`` (adds types the snapshot lacks)."""
    infos: list[InstanceTypeInfo] = ec2.describe_instance_types(session)
    now = timezone.now()
    rows = [
        InstanceType(
            name=i.instance_type,
            family=i.family,
            vcpu=i.vcpu,
            memory_mib=i.memory_mib,
            arch=i.arch,
            gpus=i.gpus,
            burstable=i.burstable,
            bare_metal=i.bare_metal,
            current_generation=i.current_generation,
            spot_supported=i.spot_supported,
            max_network_interfaces=i.max_network_interfaces,
            ipv4_addresses_per_interface=i.ipv4_addresses_per_interface,
            max_pods=i.max_pods,
            source=Source.AWS,
            updated_at=now,
        )
        for i in infos
    ]
    return _upsert_instance_types(rows)


def offerings_refresh(*, session: AccountSession, region: str) -> int:
    """Replace ``region``'s per-zone offerings with what AWS answers (moto answers its bundled, real data)."""
    found = ec2.describe_instance_type_offerings(session.for_region(region), location_type="availability-zone")
    rows = [
        InstanceTypeOffering(region=region, zone=o.location, instance_type=o.instance_type, source=Source.AWS)
        for o in found
    ]
    if not rows:
        return 0
    with transaction.atomic():
        InstanceTypeOffering.objects.filter(region=region).delete()
        InstanceTypeOffering.objects.bulk_create(rows, batch_size=BATCH_SIZE)
    return len(rows)
