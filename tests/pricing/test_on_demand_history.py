"""On-demand prices are kept with the date they took effect: a refresh that sees the same price keeps its date, a
changed price takes effect at the refresh and is appended to the history, never overwritten there."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from pricing import selectors, services
from pricing.models import OnDemandPrice, OnDemandPriceHistory

pytestmark = pytest.mark.django_db

T1 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
T2 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_changed_price_takes_effect_at_the_refresh_and_the_old_one_is_kept():
    with time_machine.travel(T1, tick=False):
        services.catalog_load_snapshot(regions={"us-east-1"})
    count = OnDemandPrice.objects.count()
    assert OnDemandPriceHistory.objects.count() == count
    m5 = OnDemandPrice.objects.get(region="us-east-1", instance_type="m5.large")
    assert (m5.price, m5.effective_from) == (Decimal("0.096"), T1)
    # the list price had moved (as a Pricing API refresh would have written it); the snapshot load moves it back
    OnDemandPrice.objects.filter(pk=m5.pk).update(price=Decimal("0.101"))
    with time_machine.travel(T2, tick=False):
        services.catalog_load_snapshot(regions={"us-east-1"})
    m5.refresh_from_db()
    assert (m5.price, m5.effective_from, m5.updated_at) == (Decimal("0.096"), T2, T2)
    c5 = OnDemandPrice.objects.get(region="us-east-1", instance_type="c5.large")
    assert (c5.effective_from, c5.updated_at) == (T1, T2)  # confirmed, unchanged: it took effect at T1
    history = list(
        OnDemandPriceHistory.objects.filter(region="us-east-1", instance_type="m5.large").values_list(
            "effective_from", "price"
        )
    )
    assert history == [(T2, Decimal("0.096")), (T1, Decimal("0.096"))]
    assert OnDemandPriceHistory.objects.count() == count + 1
    # the one cost rule reads the price in force now
    assert selectors.on_demand_price("us-east-1", "m5.large") == Decimal("0.096")
