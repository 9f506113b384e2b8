"""The AWS Pricing API: on-demand Linux prices per instance type for a region.

The Pricing API lives in a few regions only (us-east-1 among them) and moto does not implement it (it answers 404):
that, like an unreachable endpoint, raises :class:`cloud.errors.Unavailable`, and callers fall back to the bundled
snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from cloud.session import AccountSession, paginate

PRICING_REGION = "us-east-1"


def _filters(region: str, instance_type: str | None) -> list[dict[str, str]]:
    values = {
        "ServiceCode": "AmazonEC2",
        "regionCode": region,
        "operatingSystem": "Linux",
        "tenancy": "Shared",
        "preInstalledSw": "NA",
        "capacitystatus": "Used",
        "licenseModel": "No License required",
    }
    if instance_type:
        values["instanceType"] = instance_type
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in values.items() if k != "ServiceCode"]


def parse_price_item(item: str | Mapping[str, Any]) -> tuple[str, Decimal] | None:
    """(instance type, USD/hour) from one ``PriceList`` entry, or None if it has no usable on-demand price."""
    data = json.loads(item) if isinstance(item, str) else item
    instance_type = data.get("product", {}).get("attributes", {}).get("instanceType")
    if not instance_type:
        return None
    for term in (data.get("terms", {}).get("OnDemand") or {}).values():
        for dimension in (term.get("priceDimensions") or {}).values():
            usd = dimension.get("pricePerUnit", {}).get("USD")
            try:
                price = Decimal(usd)
            except (InvalidOperation, TypeError):
                continue
            if price > 0:
                return instance_type, price
    return None


def on_demand_prices(session: AccountSession, *, region: str, instance_types: Iterable[str] = ()) -> dict[str, Decimal]:
    """On-demand Linux USD/hour per instance type in ``region``.

    Raises :class:`cloud.errors.Unavailable` when the Pricing API cannot be used (moto, no network).
    """
    client = session.client("pricing", region=PRICING_REGION)
    types = list(instance_types) or [None]
    prices: dict[str, Decimal] = {}
    for instance_type in types:
        items = paginate(
            client,
            "get_products",
            result_key="PriceList",
            retry=session.retry,
            ServiceCode="AmazonEC2",
            Filters=_filters(region, instance_type),
            FormatVersion="aws_v1",
            MaxResults=100,
        )
        for item in items:
            parsed = parse_price_item(item)
            if parsed:
                # Several SKUs can match one type; the cheapest Linux shared-tenancy price is the on-demand price.
                name, price = parsed
                prices[name] = min(price, prices.get(name, price))
    return prices
