"""The pricing catalog: snapshot loading, selectors (latest spot prices in one query), AWS refresh and placeholders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from botocore.stub import Stubber
from django.core.management import call_command

from cloud import AccountSession, AwsCredentials
from cloud.types import SpotPrice
from pricing import selectors, services
from pricing.models import InstanceType, OnDemandPrice, Source, SpotPricePoint
from tests.aws_fixtures import NO_SLEEP

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalog():
    """The snapshot for two regions (instance types are always loaded)."""
    return services.catalog_load_snapshot(regions={"us-east-1", "eu-west-1"})


def test_snapshot_loads_types_prices_and_spot_history(catalog) -> None:
    assert catalog.instance_types > 1000
    m5 = InstanceType.objects.get(name="m5.large")
    assert (m5.vcpu, m5.memory_mib, m5.arch, m5.family, m5.max_pods) == (2, 8192, "x86_64", "m5", 29)
    assert InstanceType.objects.get(name="m7g.large").arch == "arm64"
    assert InstanceType.objects.filter(gpus__gt=0).exists()
    assert selectors.on_demand_price("us-east-1", "m5.large") == Decimal("0.096000")
    derived = OnDemandPrice.objects.get(region="eu-west-1", instance_type="m5.large")
    assert derived.source == Source.SNAPSHOT_DERIVED and derived.price > Decimal("0.096")
    assert SpotPricePoint.objects.filter(region="us-east-1").exists()
    assert not SpotPricePoint.objects.exclude(region__in=["us-east-1", "eu-west-1"]).exists()
    # AZ ids were mapped to zone names.
    assert SpotPricePoint.objects.filter(region="us-east-1").first().zone.startswith("us-east-1")


def test_snapshot_load_is_idempotent(catalog) -> None:
    counts = (InstanceType.objects.count(), OnDemandPrice.objects.count(), SpotPricePoint.objects.count())
    services.catalog_load_snapshot(regions={"us-east-1", "eu-west-1"})
    assert (InstanceType.objects.count(), OnDemandPrice.objects.count(), SpotPricePoint.objects.count()) == counts


def test_snapshot_never_overwrites_aws_prices(catalog) -> None:
    OnDemandPrice.objects.filter(region="us-east-1", instance_type="m5.large").update(
        price=Decimal("0.1"), source=Source.AWS
    )
    services.catalog_load_snapshot(regions={"us-east-1"})
    assert selectors.on_demand_price("us-east-1", "m5.large") == Decimal("0.1")


def test_load_pricing_snapshot_command() -> None:
    out = StringIO()
    call_command("load_pricing_snapshot", "--region", "us-west-2", stdout=out)
    assert "instance types" in out.getvalue()
    assert OnDemandPrice.objects.filter(region="us-west-2").exists()
    assert not OnDemandPrice.objects.exclude(region="us-west-2").exists()


def _point(zone: str, instance_type: str, price: str, minutes: int, region: str = "us-east-1") -> SpotPricePoint:
    return SpotPricePoint(
        region=region,
        zone=zone,
        instance_type=instance_type,
        price=Decimal(price),
        timestamp=T0 + timedelta(minutes=minutes),
    )


def test_latest_spot_prices_in_one_query(django_assert_num_queries) -> None:
    SpotPricePoint.objects.bulk_create(
        [
            _point("us-east-1a", "m5.large", "0.030", 0),
            _point("us-east-1a", "m5.large", "0.041", 10),  # newest of its pool
            _point("us-east-1a", "m5.large", "0.020", 5),
            _point("us-east-1b", "m5.large", "0.050", 1),
            _point("us-east-1a", "c5.large", "0.033", 2),
            _point("eu-west-1a", "m5.large", "0.099", 20, region="eu-west-1"),
        ]
    )
    # 1: SELECT DISTINCT ON (instance_type, zone) ... (PostgreSQL) or the correlated-subquery form (SQLite)
    with django_assert_num_queries(1):
        prices = selectors.latest_spot_prices("us-east-1")
    assert prices == {
        ("m5.large", "us-east-1a"): Decimal("0.041"),
        ("m5.large", "us-east-1b"): Decimal("0.050"),
        ("c5.large", "us-east-1a"): Decimal("0.033"),
    }
    with django_assert_num_queries(1):
        only = selectors.latest_spot_prices("us-east-1", instance_types=["m5.large"], zones=["us-east-1b"])
    assert only == {("m5.large", "us-east-1b"): Decimal("0.050")}


def test_latest_spot_prices_from_snapshot_one_query(catalog, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        prices = selectors.latest_spot_prices("us-east-1")
    assert len(prices) > 1000
    assert all(isinstance(p, Decimal) and p > 0 for p in prices.values())


def test_instance_type_selector_filters(catalog, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        names = list(
            selectors.instance_types(region="us-east-1", arch="arm64", min_vcpu=2, max_vcpu=2, gpu=False).values_list(
                "name", flat=True
            )
        )
    assert "m7g.large" in names and "m5.large" not in names
    assert all(InstanceType.objects.get(name=n).vcpu == 2 for n in names[:5])
    assert not selectors.instance_types(region="xx-nowhere-1").exists()


def test_on_demand_prices_dict(catalog, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        prices = selectors.on_demand_prices("us-east-1", instance_types=["m5.large", "c5.large", "nope.large"])
    assert set(prices) == {"m5.large", "c5.large"}


def test_the_cost_rule_prefers_spot_pool_then_dearest_zone_then_recorded_then_on_demand() -> None:
    book = selectors.PriceBook(
        at=T0,
        on_demand={("us-east-1", "m5.large"): Decimal("0.096"), ("us-east-1", "c5.large"): Decimal("0.085")},
        spot={
            ("us-east-1", "m5.large", "us-east-1a"): Decimal("0.04"),
            ("us-east-1", "m5.large", "us-east-1b"): Decimal("0.045"),
            ("eu-west-1", "m5.large", "eu-west-1a"): Decimal("0.9"),
        },
    )
    assert book.price("m5.large", "us-east-1a", "spot", "us-east-1") == Decimal("0.04")
    # no price in its zone: the dearest pool of the type in the region (never another region's), never the cheapest
    assert book.price("m5.large", "us-east-1c", "spot", "us-east-1") == Decimal("0.045")
    # no spot price for the type anywhere in the region: the price recorded for the instance, else on-demand
    assert book.price("c5.large", "us-east-1c", "spot", "us-east-1", recorded=Decimal("0.03")) == Decimal("0.03")
    assert book.price("c5.large", "us-east-1c", "spot", "us-east-1") == Decimal("0.085")
    assert book.price("m5.large", "", "on-demand", "us-east-1", recorded=Decimal("0.5")) == Decimal("0.096")
    # the catalog knows nothing of it: what was recorded, or None (unpriced)
    assert book.price("x9.large", "", "on-demand", "us-east-1", recorded=Decimal("0.5")) == Decimal("0.5")
    assert book.price("x9.large", "us-east-1a", "spot", "us-east-1") is None


def test_hourly_price_at_a_time_uses_the_price_then_in_force(django_assert_num_queries) -> None:
    OnDemandPrice.objects.create(region="us-east-1", instance_type="m5.large", price=Decimal("0.096"))
    for hours, price in ((0, "0.030"), (2, "0.050")):
        SpotPricePoint.objects.create(
            region="us-east-1", zone="us-east-1a", instance_type="m5.large", price=Decimal(price),
            timestamp=T0 + timedelta(hours=hours),
        )
    with django_assert_num_queries(2):
        assert selectors.hourly_price("m5.large", "us-east-1a", "spot", "us-east-1", at=T0 + timedelta(hours=1)) == (
            Decimal("0.030")
        )
    assert selectors.hourly_price("m5.large", "us-east-1a", "spot", "us-east-1", at=T0 + timedelta(hours=3)) == (
        Decimal("0.050")
    )
    # before any spot price was recorded: on-demand
    assert selectors.hourly_price("m5.large", "us-east-1a", "spot", "us-east-1", at=T0 - timedelta(hours=1)) == (
        Decimal("0.096")
    )


def test_bulk_prices_take_two_queries_whatever_the_count(django_assert_num_queries) -> None:
    items = []
    for region in ("us-east-1", "eu-west-1"):
        for n, itype in enumerate(("m5.large", "c5.large", "r5.large")):
            OnDemandPrice.objects.create(region=region, instance_type=itype, price=Decimal("0.1") + n)
            SpotPricePoint.objects.create(
                region=region, zone=f"{region}a", instance_type=itype, price=Decimal("0.01") + n, timestamp=T0
            )
            items += [(itype, f"{region}a", "spot", region), (itype, f"{region}b", "on-demand", region)]
    with django_assert_num_queries(2):
        prices = selectors.hourly_prices(items, at=T0 + timedelta(minutes=1))
    assert prices[("c5.large", "eu-west-1a", "spot", "eu-west-1")] == Decimal("1.01")
    assert prices[("r5.large", "us-east-1b", "on-demand", "us-east-1")] == Decimal("2.1")
    with django_assert_num_queries(0):
        assert selectors.hourly_prices([]) == {}


def test_moto_placeholder_spot_prices_are_ignored(aws) -> None:
    session = AccountSession.open(AwsCredentials(), region="us-east-1", endpoint_url="", retry=NO_SLEEP)
    assert services.spot_prices_refresh(session=session, region="us-east-1") == 0
    assert not SpotPricePoint.objects.exists()


def test_moto_pricing_api_is_unavailable_and_keeps_snapshot(aws) -> None:
    OnDemandPrice.objects.create(region="eu-west-1", instance_type="m5.large", price=Decimal("0.107"))
    session = AccountSession.open(AwsCredentials(), region="eu-west-1", endpoint_url="", retry=NO_SLEEP)
    assert services.on_demand_prices_refresh(session=session, region="eu-west-1") == 0
    assert selectors.on_demand_price("eu-west-1", "m5.large") == Decimal("0.107")


def test_real_spot_prices_are_stored_once() -> None:
    session = AccountSession.open(AwsCredentials(), region="us-east-1", endpoint_url="", retry=NO_SLEEP)
    client = session.client("ec2")
    history = {
        "SpotPriceHistory": [
            {
                "AvailabilityZone": "us-east-1a",
                "InstanceType": "m5.large",
                "ProductDescription": "Linux/UNIX",
                "SpotPrice": "0.038100",
                "Timestamp": T0,
            },
            {
                "AvailabilityZone": "us-east-1a",
                "InstanceType": "m5.large",
                "ProductDescription": "Windows",
                "SpotPrice": "0.130000",
                "Timestamp": T0,
            },
        ]
    }
    with Stubber(client) as stub:
        stub.add_response("describe_spot_price_history", history)
        stub.add_response("describe_spot_price_history", history)
        assert services.spot_prices_refresh(session=session, region="us-east-1") == 1
        services.spot_prices_refresh(session=session, region="us-east-1")
    (point,) = SpotPricePoint.objects.all()
    assert (point.zone, point.price, point.source) == ("us-east-1a", Decimal("0.038100"), Source.AWS)


def test_placeholder_detection() -> None:
    moto = SpotPrice("m5.large", "us-east-1a", Decimal("0.00001"), datetime(2006, 1, 2, 15, 4, 5, tzinfo=UTC))
    real = SpotPrice("m5.large", "us-east-1a", Decimal("0.0381"), T0)
    assert services.is_placeholder_spot_price(moto)
    assert not services.is_placeholder_spot_price(real)


def test_offered_zones_from_snapshot(catalog, django_assert_num_queries) -> None:
    with django_assert_num_queries(1):
        zones = selectors.offered_zones("us-east-1", instance_types=["m5.large", "nope.large"])
    assert set(zones) == {"m5.large"}
    assert "us-east-1a" in zones["m5.large"] and list(zones["m5.large"]) == sorted(zones["m5.large"])


def test_offerings_refresh_from_aws_replaces_region(aws) -> None:
    from pricing.models import InstanceTypeOffering

    InstanceTypeOffering.objects.create(region="eu-west-1", zone="eu-west-1a", instance_type="zz.gone")
    session = AccountSession.open(AwsCredentials(), region="eu-west-1", endpoint_url="", retry=NO_SLEEP)
    assert services.offerings_refresh(session=session, region="eu-west-1") > 100
    zones = selectors.offered_zones("eu-west-1")
    assert "zz.gone" not in zones and "eu-west-1a" in zones["m5.large"]
