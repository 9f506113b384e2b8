"""Readers for the bundled public price snapshot in ``pricing/data/aws`` (see its README.md for origins).

Pure functions over the files: they yield plain tuples and know nothing about the database.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from cloud.types import eni_max_pods

DATA_DIR = Path(__file__).resolve().parent / "data" / "aws"
SPOT_SNAPSHOT_DIR = DATA_DIR / "spot_price_history" / "2022-05-31"
#: The only commercial region with current (2026) on-demand prices in the snapshot.
REFERENCE_REGION = "us-east-1"
SIX_PLACES = Decimal("0.000001")


def quantize(value: Decimal) -> Decimal:
    return value.quantize(SIX_PLACES, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class SnapshotInstanceType:
    name: str
    family: str
    vcpu: int
    memory_mib: int
    arch: str
    gpus: int
    burstable: bool
    bare_metal: bool
    current_generation: bool
    spot_supported: bool
    max_network_interfaces: int
    ipv4_addresses_per_interface: int

    @property
    def max_pods(self) -> int:
        return eni_max_pods(self.max_network_interfaces, self.ipv4_addresses_per_interface)


def instance_types(data_dir: Path = DATA_DIR) -> Iterator[SnapshotInstanceType]:
    raw: list[dict[str, Any]] = json.loads((data_dir / "instance_types.json").read_text())
    for item in raw:
        yield SnapshotInstanceType(
            name=item["instance_type"],
            family=item.get("family") or item["instance_type"].split(".", 1)[0],
            vcpu=int(item.get("vcpu") or 0),
            memory_mib=int(item.get("memory_mib") or 0),
            arch="arm64" if item.get("arch") == "arm64" else "x86_64",
            gpus=int(item.get("gpus") or 0),
            burstable=bool(item.get("burstable")),
            bare_metal=bool(item.get("bare_metal")),
            current_generation=bool(item.get("current_generation", True)),
            spot_supported=bool(item.get("spot_supported", True)),
            max_network_interfaces=int(item.get("max_network_interfaces") or 0),
            ipv4_addresses_per_interface=int(item.get("ipv4_addresses_per_interface") or 0),
        )


def _read_prices(path: Path) -> dict[str, dict[str, Decimal]]:
    prices: dict[str, dict[str, Decimal]] = defaultdict(dict)
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            price = Decimal(row["usd_per_hour"])
            if price > 0:
                prices[row["region"]][row["instance_type"]] = price
    return prices


def regional_ratios(data_dir: Path = DATA_DIR) -> dict[str, Decimal]:
    """Region -> median (region price / us-east-1 price) over the types both priced in April 2019."""
    old = _read_prices(data_dir / "on_demand_prices_2019_multiregion.csv")
    base = old.get(REFERENCE_REGION, {})
    ratios: dict[str, Decimal] = {}
    for region, prices in old.items():
        samples = [prices[t] / base[t] for t in prices.keys() & base.keys()]
        if samples:
            ratios[region] = Decimal(str(statistics.median(samples))).quantize(Decimal("0.0001"))
    return ratios


def on_demand_prices(data_dir: Path = DATA_DIR) -> Iterator[tuple[str, str, Decimal, bool]]:
    """(region, instance type, USD/hour, derived?) rows.

    Current prices where the snapshot has them (us-east-1, GovCloud); other regions of the 2019 file get the current
    us-east-1 price times that region's 2019 ratio, flagged as derived.
    """
    current = _read_prices(data_dir / "on_demand_prices.csv")
    for region, prices in current.items():
        for instance_type, price in prices.items():
            yield region, instance_type, quantize(price), False
    base = current.get(REFERENCE_REGION, {})
    for region, ratio in sorted(regional_ratios(data_dir).items()):
        if region in current:
            continue
        for instance_type, price in base.items():
            yield region, instance_type, quantize(price * ratio), True


def zone_names(data_dir: Path = DATA_DIR) -> dict[str, tuple[str, str]]:
    """AZ id -> (region, zone name), as moto (and therefore the tests and the embedded default) map them."""
    with (data_dir / "availability_zones.csv").open(newline="") as fh:
        return {row["zone_id"]: (row["region"], row["zone_name"]) for row in csv.DictReader(fh)}


def spot_prices(
    data_dir: Path = DATA_DIR, *, regions: set[str] | None = None
) -> Iterator[tuple[str, str, str, Decimal, datetime]]:
    """(region, zone name, instance type, USD/hour, timestamp) for Linux/UNIX records of the 2022-05-31 snapshot."""
    zones = zone_names(data_dir)
    for path in sorted((data_dir / "spot_price_history" / "2022-05-31").glob("*.csv")):
        if regions is not None and path.stem not in regions:
            continue
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row["product_description"] != "Linux/UNIX":
                    continue
                located = zones.get(row["availability_zone_id"])
                if located is None:
                    continue
                region, zone = located
                yield (
                    region,
                    zone,
                    row["instance_type"],
                    quantize(Decimal(row["spot_price_usd_per_hour"])),
                    datetime.fromisoformat(row["timestamp"]),
                )


def zone_offerings(data_dir: Path = DATA_DIR, *, regions: set[str] | None = None) -> Iterator[tuple[str, str, str]]:
    """(region, zone name, instance type) from moto's dump of ``DescribeInstanceTypeOfferings``."""
    with (data_dir / "offerings" / "availability_zone.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if regions is None or row["region"] in regions:
                yield row["region"], row["availability_zone"], row["instance_type"]
