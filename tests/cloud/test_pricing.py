"""The Pricing API wrapper: moto's 404 is "unavailable"; real answers are parsed into Decimals."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from botocore.stub import ANY, Stubber

from cloud import AccountSession, AwsCredentials, errors, pricing


def _item(instance_type: str, usd: str) -> str:
    return json.dumps(
        {
            "product": {"attributes": {"instanceType": instance_type, "operatingSystem": "Linux"}},
            "terms": {"OnDemand": {"SKU.TERM": {"priceDimensions": {"SKU.TERM.DIM": {"pricePerUnit": {"USD": usd}}}}}},
        }
    )


def test_moto_pricing_is_unavailable(session: AccountSession) -> None:
    with pytest.raises(errors.Unavailable):
        pricing.on_demand_prices(session, region="eu-west-1", instance_types=["m5.large"])


def test_on_demand_prices_are_parsed_across_pages() -> None:
    session = AccountSession.open(AwsCredentials(), region="eu-west-1", endpoint_url="")
    client = session.client("pricing", region=pricing.PRICING_REGION)
    with Stubber(client) as stub:
        stub.add_response(
            "get_products",
            {"PriceList": [_item("m5.large", "0.1070000000"), _item("c5.large", "0.0000000000")], "NextToken": "p2"},
            expected_params={"ServiceCode": "AmazonEC2", "Filters": ANY, "FormatVersion": "aws_v1", "MaxResults": 100},
        )
        stub.add_response("get_products", {"PriceList": [_item("m5.xlarge", "0.214")]})
        prices = pricing.on_demand_prices(session, region="eu-west-1")
    assert prices == {"m5.large": Decimal("0.107"), "m5.xlarge": Decimal("0.214")}


def test_parse_price_item_skips_items_without_type() -> None:
    assert pricing.parse_price_item({"product": {"attributes": {}}}) is None
