"""Template → eligible offerings: the one place that decides which (instance type, zone, capacity type) a node
template allows in a region, at what price, and what a node of that type can hold.

Used by the template preview (API and console), by the optimizer's problem builder (DESIGN.md §6 ``offerings``) and by
the tests. The core is pure: :func:`build_offerings` and :func:`build_preview` take instance-type rows (anything with
the attributes of ``pricing.InstanceType``) and the price dicts of ``pricing.selectors``. :func:`eligible_offerings`
and :func:`preview` read the catalog in three queries (types, on-demand prices, latest spot prices) whatever the
template.
"""

from __future__ import annotations

import csv
import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from optimizer.catalog import (
    INTERRUPTION_MIDPOINTS,
    allocatable_cpu_m,
    allocatable_memory_mib,
    eni_max_pods,
    kube_reserved_cpu_m,
)

__all__ = [
    "Offering",
    "allocatable_cpu_m",
    "allocatable_memory_mib",
    "build_offerings",
    "build_preview",
    "eligible_offerings",
    "kube_reserved_cpu_m",
    "max_pods_for",
    "preview",
    "spot_interruption_rates",
]

# The kubelet's default when a type's ENI limits are unknown.
DEFAULT_MAX_PODS = 110
SPOT = "spot"
ON_DEMAND = "on-demand"
_DATA = Path(__file__).resolve().parents[2] / "pricing" / "data" / "aws"
_BUNDLED_TYPES = _DATA / "instance_types.json"
_SPOT_ADVISOR = _DATA / "spot_advisor.csv"
# Spot Instance Advisor's frequency-of-interruption buckets as rates and labels: the optimizer's midpoints, so that
# planning, back-tests and ``ClusterPolicy.max_interruption_rate`` all read a bucket the same way.
ADVISOR_BUCKET_RATES = INTERRUPTION_MIDPOINTS
ADVISOR_BUCKET_LABELS = ("<5%", "5-10%", "10-15%", "15-20%", ">20%")


class InstanceTypeRow(Protocol):
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
    max_pods: int


@dataclass(frozen=True)
class Offering:
    """One way to buy a node: an instance type in a zone as spot or on-demand, with its price and allocatable size."""

    instance_type: str
    zone: str
    capacity_type: str
    price: Decimal
    vcpu: int
    memory_mib: int
    allocatable_cpu_m: int
    allocatable_memory_mib: int
    max_pods: int
    arch: str
    interruption_rate: float | None = None

    def as_problem(self) -> dict[str, Any]:
        """The offering in the optimizer's problem format (DESIGN.md §6); price as a decimal string."""
        data = asdict(self)
        data["price"] = str(self.price)
        for key in ("vcpu", "memory_mib"):
            data.pop(key)
        if self.interruption_rate is None:
            data.pop("interruption_rate")
        return data


# --- Node sizing --------------------------------------------------------------------------------------------------


def max_pods_for(row: Any) -> int:
    """Pods a node of this type can run: the EKS VPC CNI limit, ENIs × (IPv4 per ENI − 1) + 2, capped at 110 up to
    30 vCPUs and 250 above (``optimizer.catalog.eni_max_pods``, so that sizing is the same everywhere); the catalog's
    ``max_pods`` when ENI limits are unknown, else the kubelet's default 110."""
    enis = getattr(row, "max_network_interfaces", 0) or 0
    ips = getattr(row, "ipv4_addresses_per_interface", 0) or 0
    if enis and ips:
        return eni_max_pods(enis, ips, row.vcpu)
    return int(getattr(row, "max_pods", 0) or DEFAULT_MAX_PODS)


# --- Type filters -------------------------------------------------------------------------------------------------


def family_matches(family: str, patterns: Iterable[str]) -> bool:
    """Whether ``family`` (``m7g``) matches any shell-style pattern (``m*``, ``c7?``, ``r6i``)."""
    family = family.lower()
    return any(fnmatch.fnmatchcase(family, pattern.lower()) for pattern in patterns)


def family_matches_any(pattern: str, families: Iterable[str]) -> bool:
    """Whether a pattern matches at least one of ``families`` (to reject patterns that can never match)."""
    pattern = pattern.lower()
    return any(fnmatch.fnmatchcase(family, pattern) for family in families)


def type_matches(template: Any, row: InstanceTypeRow) -> bool:
    """Whether an instance type satisfies every instance criterion of the template (not capacity type or zone)."""
    if row.arch not in (template.architectures or []):
        return False
    families = template.instance_families or {}
    include, exclude = families.get("include") or [], families.get("exclude") or []
    if include and not family_matches(row.family, include):
        return False
    if exclude and family_matches(row.family, exclude):
        return False
    if template.min_vcpu is not None and row.vcpu < template.min_vcpu:
        return False
    if template.max_vcpu is not None and row.vcpu > template.max_vcpu:
        return False
    memory_gib = Decimal(row.memory_mib) / 1024
    if template.min_memory_gib is not None and memory_gib < Decimal(template.min_memory_gib):
        return False
    if template.max_memory_gib is not None and memory_gib > Decimal(template.max_memory_gib):
        return False
    if template.gpu == "exclude" and row.gpus > 0:
        return False
    if template.gpu == "require" and row.gpus == 0:
        return False
    if template.exclude_burstable and row.burstable:
        return False
    if template.exclude_bare_metal and row.bare_metal:
        return False
    return not (template.current_generation_only and not row.current_generation)


def matching_types(template: Any, rows: Iterable[InstanceTypeRow]) -> list[InstanceTypeRow]:
    return [row for row in rows if type_matches(template, row)]


# --- Offerings ----------------------------------------------------------------------------------------------------


def _zones_by_type(spot: Mapping[tuple[str, str], Decimal]) -> tuple[dict[str, list[str]], list[str]]:
    by_type: dict[str, set[str]] = {}
    for instance_type, zone in spot:
        by_type.setdefault(instance_type, set()).add(zone)
    all_zones = sorted({zone for _, zone in spot})
    return {k: sorted(v) for k, v in by_type.items()}, all_zones


def build_offerings(
    template: Any,
    rows: Iterable[InstanceTypeRow],
    on_demand: Mapping[str, Decimal],
    spot: Mapping[tuple[str, str], Decimal],
    *,
    interruption_rates: Mapping[str, float] | None = None,
    include_fallback: bool = False,
) -> list[Offering]:
    """The template's offerings from catalog rows and prices (pure; no queries).

    Spot: each (type, zone) with a spot price. On-demand: each zone the type is known in (from the spot records; all
    the region's known zones when the type has none, or ``""`` when nothing is known), at the region's price.
    ``include_fallback`` adds on-demand offerings for a spot-only template whose ``spot_fallback`` is on.
    ``zones`` of the template restricts both. Sorted by price, then type and zone.
    """
    capacity = set(template.capacity_types or [])
    if include_fallback and getattr(template, "spot_fallback", False) and SPOT in capacity:
        capacity.add(ON_DEMAND)
    allowed_zones = set(template.zones or [])
    zones_of, region_zones = _zones_by_type(spot)
    rates = interruption_rates or {}
    offerings: list[Offering] = []
    for row in matching_types(template, rows):
        pods = max_pods_for(row)
        common = {
            "instance_type": row.name,
            "vcpu": row.vcpu,
            "memory_mib": row.memory_mib,
            "allocatable_cpu_m": allocatable_cpu_m(row.vcpu),
            "allocatable_memory_mib": allocatable_memory_mib(row.memory_mib, pods),
            "max_pods": pods,
            "arch": row.arch,
        }
        type_zones = zones_of.get(row.name) or region_zones or [""]
        if SPOT in capacity and row.spot_supported:
            for zone in zones_of.get(row.name, []):
                if allowed_zones and zone not in allowed_zones:
                    continue
                offerings.append(
                    Offering(
                        **common,
                        zone=zone,
                        capacity_type=SPOT,
                        price=spot[(row.name, zone)],
                        interruption_rate=rates.get(row.name),
                    )
                )
        if ON_DEMAND in capacity and row.name in on_demand:
            for zone in type_zones:
                if allowed_zones and zone and zone not in allowed_zones:
                    continue
                offerings.append(Offering(**common, zone=zone, capacity_type=ON_DEMAND, price=on_demand[row.name]))
    offerings.sort(key=lambda o: (o.price, o.instance_type, o.zone, o.capacity_type))
    return offerings


def savings_pct(on_demand: Decimal | None, spot: Decimal | None) -> float | None:
    """How much cheaper spot is than on-demand, in percent with one decimal; None when either is unknown."""
    if not on_demand or spot is None:
        return None
    return float(((on_demand - spot) / on_demand * 100).quantize(Decimal("0.1")))


def build_preview(
    template: Any,
    rows: Iterable[InstanceTypeRow],
    on_demand: Mapping[str, Decimal],
    spot: Mapping[tuple[str, str], Decimal],
    *,
    interruption_rates: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """One row per matching instance type that has at least one offering: size, on-demand price, spot price and
    savings per zone. Sorted by the cheapest eligible price."""
    offerings = build_offerings(template, rows, on_demand, spot, interruption_rates=interruption_rates)
    by_type: dict[str, list[Offering]] = {}
    for offering in offerings:
        by_type.setdefault(offering.instance_type, []).append(offering)
    rows_by_name = {row.name: row for row in matching_types(template, rows)}
    result = []
    for name, items in by_type.items():
        row = rows_by_name[name]
        od = on_demand.get(name)
        spot_items = sorted((o for o in items if o.capacity_type == SPOT), key=lambda o: o.zone)
        cheapest_spot = min((o.price for o in spot_items), default=None)
        first = items[0]
        result.append(
            {
                "instance_type": name,
                "family": row.family,
                "arch": row.arch,
                "vcpu": row.vcpu,
                "memory_gib": float(Decimal(row.memory_mib) / 1024),
                "gpus": row.gpus,
                "max_pods": first.max_pods,
                "allocatable_cpu_m": first.allocatable_cpu_m,
                "allocatable_memory_mib": first.allocatable_memory_mib,
                "capacity_types": sorted({o.capacity_type for o in items}),
                "on_demand_price": str(od) if od is not None else None,
                "spot": [
                    {"zone": o.zone, "price": str(o.price), "savings_pct": savings_pct(od, o.price)} for o in spot_items
                ],
                "min_spot_price": str(cheapest_spot) if cheapest_spot is not None else None,
                "max_savings_pct": savings_pct(od, cheapest_spot),
                "interruption_rate": (rate := (interruption_rates or {}).get(name)),
                "interruption_bucket": interruption_bucket(rate),
                "_min_price": min(o.price for o in items),
            }
        )
    result.sort(key=lambda r: (r.pop("_min_price"), r["instance_type"]))
    return result


# --- Catalog access -----------------------------------------------------------------------------------------------


def _selectors():
    """``pricing.selectors`` when the catalog app provides it, else None (catalog not installed)."""
    try:
        from pricing import selectors
    except ImportError:
        return None
    if not hasattr(selectors, "instance_types"):
        return None
    return selectors


def catalog_loaded() -> bool:
    """Whether the pricing catalog has instance types (one query)."""
    selectors = _selectors()
    return bool(selectors) and selectors.instance_types().exists()


def _narrowed_types(template: Any, region: str | None):
    """Catalog rows narrowed in SQL by the template's plain criteria (families and the rest are re-checked in Python
    by :func:`type_matches`, the single source of truth). A lazy QuerySet: one query when evaluated."""
    selectors = _selectors()
    gpu = {"exclude": False, "require": True}.get(template.gpu)
    return selectors.instance_types(
        region=region,
        arch=list(template.architectures or []),
        min_vcpu=template.min_vcpu,
        max_vcpu=template.max_vcpu,
        min_memory_mib=int(Decimal(template.min_memory_gib) * 1024) if template.min_memory_gib is not None else None,
        max_memory_mib=int(Decimal(template.max_memory_gib) * 1024) if template.max_memory_gib is not None else None,
        gpu=gpu,
        burstable=False if template.exclude_burstable else None,
        bare_metal=False if template.exclude_bare_metal else None,
        current_generation=True if template.current_generation_only else None,
    )


def catalog_for(template: Any, region: str) -> tuple[list[InstanceTypeRow], dict[str, Decimal], dict]:
    """(matching types, on-demand prices, latest spot prices) of ``region``. Three queries."""
    selectors = _selectors()
    if selectors is None:
        return [], {}, {}
    rows = matching_types(template, _narrowed_types(template, region))
    names = [row.name for row in rows]
    if not names:
        return [], {}, {}
    on_demand = selectors.on_demand_prices(region, instance_types=names)
    spot = selectors.latest_spot_prices(region, instance_types=names, zones=template.zones or None)
    return rows, on_demand, spot


def eligible_offerings(template: Any, region: str, *, include_fallback: bool = False) -> list[Offering]:
    """The offerings a template allows in ``region``, cheapest first, spot ones with the Spot Advisor's interruption
    rate of their type. Three queries."""
    rows, on_demand, spot = catalog_for(template, region)
    return build_offerings(
        template,
        rows,
        on_demand,
        spot,
        include_fallback=include_fallback,
        interruption_rates=spot_interruption_rates(region),
    )


def preview(template: Any, region: str) -> dict[str, Any]:
    """The preview of a template in a region: matching instance types with prices and savings. Three queries."""
    rows, on_demand, spot = catalog_for(template, region)
    items = build_preview(template, rows, on_demand, spot, interruption_rates=spot_interruption_rates(region))
    return {"region": region, "count": len(items), "instance_types": items}


def template_matches_catalog(template: Any) -> bool | None:
    """Whether any catalog instance type satisfies the template's instance criteria (any region); None when the
    catalog is empty, so that a fresh install without prices can still save templates. One or two queries."""
    if not catalog_loaded():
        return None
    return bool(matching_types(template, _narrowed_types(template, None)))


@lru_cache(maxsize=1)
def _advisor_buckets() -> dict[str, dict[str, int]]:
    buckets: dict[str, dict[str, int]] = {}
    try:
        with _SPOT_ADVISOR.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if row["os"] == "Linux":
                    buckets.setdefault(row["region"], {})[row["instance_type"]] = int(row["interruption_range_index"])
    except (OSError, KeyError, ValueError):
        return {}
    return buckets


def interruption_bucket(rate: float | None) -> str | None:
    """The Spot Advisor label ("15-20%") of a rate from :func:`spot_interruption_rates`."""
    if rate is None or rate not in ADVISOR_BUCKET_RATES:
        return None
    return ADVISOR_BUCKET_LABELS[ADVISOR_BUCKET_RATES.index(rate)]


def spot_interruption_rates(region: str) -> dict[str, float]:
    """Instance type → monthly spot interruption rate in ``region``, from the bundled Spot Instance Advisor feed
    (the catalog does not store it yet). Read once per process; no queries."""
    return {
        name: ADVISOR_BUCKET_RATES[min(index, len(ADVISOR_BUCKET_RATES) - 1)]
        for name, index in _advisor_buckets().get(region, {}).items()
    }


@lru_cache(maxsize=1)
def bundled_families() -> frozenset[str]:
    """Instance families of the bundled AWS reference data (used when the catalog is empty)."""
    try:
        data = json.loads(_BUNDLED_TYPES.read_text())
    except (OSError, ValueError):
        return frozenset()
    return frozenset(item["family"].lower() for item in data if item.get("family"))


def known_families() -> frozenset[str]:
    """Families of the catalog when loaded, else of the bundled reference data. At most one query."""
    selectors = _selectors()
    if selectors is not None:
        families = set(selectors.instance_types().order_by().values_list("family", flat=True).distinct())
        if families:
            return frozenset(f.lower() for f in families)
    return bundled_families()
