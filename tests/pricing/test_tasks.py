"""Pricing tasks: one refresh per region in use, snapshot as the fallback, failures isolated."""

from __future__ import annotations

import pytest

from accounts.models import CloudAccount
from pricing import services, tasks
from pricing.models import InstanceType, InstanceTypeOffering
from tests.aws_fixtures import ROLE_ARN
from tests.factories import CloudAccountFactory

pytestmark = pytest.mark.django_db


def test_spot_sync_refreshes_each_region_once_and_survives_failures(monkeypatch) -> None:
    CloudAccountFactory(regions=["us-east-1", "eu-west-1"])
    CloudAccountFactory(regions=["eu-west-1"])
    CloudAccountFactory(regions=["ap-south-1"], status=CloudAccount.Status.DISABLED)
    InstanceType.objects.create(name="m5.large", family="m5", vcpu=2, memory_mib=8192, arch="x86_64")
    seen: list[str] = []

    def fake_refresh(*, session, region, **kwargs):
        seen.append(region)
        if region == "eu-west-1":
            raise RuntimeError("boom")
        return 0

    monkeypatch.setattr(services, "spot_prices_refresh", fake_refresh)
    assert tasks.sync_all_spot_prices() == 2
    assert sorted(seen) == ["eu-west-1", "us-east-1"]


def test_region_catalog_refresh_with_moto(aws) -> None:
    account = CloudAccountFactory(role_arn=ROLE_ARN, regions=["eu-west-1"])
    result = tasks.refresh_region_catalog(account.pk, "eu-west-1")
    assert result["on_demand_prices"] == 0  # moto has no Pricing API: the snapshot stays
    assert result["offerings"] > 100
    assert InstanceTypeOffering.objects.filter(region="eu-west-1", source="aws").exists()
    assert tasks.refresh_all_region_catalogs() == 1
