"""One cost rule: the dashboard, the metrics summary, the cluster pages, the inventory and ``manage.py optimize``
price an instance the same way (``pricing.selectors.PriceBook.price``)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agentapi.services import api_key_create, snapshot_ingest
from cloud.types import Ec2Instance
from clusters.inventory import sync_cluster_instances
from clusters.models import Instance
from optimization.planning import current_cost
from pricing.models import OnDemandPrice, SpotPricePoint
from pricing.selectors import price_book
from tests.factories import ClusterFactory, InstanceFactory

pytestmark = pytest.mark.django_db

SPOT_IN_1A = Decimal("0.040000")


@pytest.fixture
def estate(user):
    """A spot m5.large in us-east-1c, a zone with no recorded spot price, and no price recorded for the instance;
    the type's spot price in us-east-1a is 0.040 (yesterday 0.100), on-demand 0.096."""
    OnDemandPrice.objects.create(region="us-east-1", instance_type="m5.large", price=Decimal("0.096"))
    now = timezone.now()
    for ago, price in ((timedelta(days=1), Decimal("0.100")), (timedelta(hours=1), SPOT_IN_1A)):
        SpotPricePoint.objects.create(
            region="us-east-1", zone="us-east-1a", instance_type="m5.large", price=price, timestamp=now - ago
        )
    cluster = ClusterFactory(organization=user.organization, name="prod", region="us-east-1")
    instance = InstanceFactory(
        cluster=cluster, instance_id="i-0000000000000c001", instance_type="m5.large", zone="us-east-1c",
        lifecycle=Instance.Lifecycle.SPOT, hourly_price=None,
    )
    return cluster, instance


def test_dashboard_inventory_cluster_pages_and_optimize_agree(auth_client, client, user, estate) -> None:
    cluster, instance = estate

    summary = auth_client.get("/api/v1/metrics/summary").json()
    assert Decimal(summary["hourly_cost"]) == SPOT_IN_1A
    assert Decimal(summary["clusters"][0]["hourly_cost"]) == SPOT_IN_1A

    listed = auth_client.get("/api/v1/clusters").json()["results"][0]
    assert Decimal(listed["hourly_cost"]) == SPOT_IN_1A
    detail = auth_client.get(f"/api/v1/clusters/{cluster.pk}").json()
    assert Decimal(detail["hourly_cost"]) == Decimal(detail["cost"]["hourly_cost"]) == SPOT_IN_1A
    (row,) = auth_client.get(f"/api/v1/clusters/{cluster.pk}/instances").json()["results"]
    assert Decimal(row["hourly_price"]) == SPOT_IN_1A

    cost, nodes = current_cost(cluster)
    assert (cost, nodes) == (SPOT_IN_1A, 1)

    key, _ = api_key_create(cluster=cluster, name="agent")
    node = {
        "name": "node-1", "provider_id": f"aws:///us-east-1c/{instance.instance_id}", "instance_type": "m5.large",
        "zone": "us-east-1c", "capacity_type": "spot", "labels": {}, "taints": [], "unschedulable": False,
        "ready": True, "allocatable": {"cpu_m": 1930, "memory_mib": 7000, "pods": 29},
    }
    snapshot_ingest(api_key=key, data={"agent_version": "1", "kubernetes_version": "1.31", "nodes": [node], "pods": []})
    (listed_node,) = auth_client.get(f"/api/v1/clusters/{cluster.pk}/nodes").json()["results"]
    assert Decimal(listed_node["instance"]["hourly_price"]) == SPOT_IN_1A
    assert current_cost(cluster) == (SPOT_IN_1A, 1)  # the node is that instance, counted once

    observed = Ec2Instance(
        instance_id=instance.instance_id, instance_type="m5.large", zone="us-east-1c", lifecycle="spot",
        state="running", launch_time=instance.launch_time, private_dns_name=instance.private_dns,
    )
    sync_cluster_instances(cluster=cluster, observed=[observed], prices=price_book([("us-east-1", "m5.large")]))
    instance.refresh_from_db()
    assert instance.hourly_price == SPOT_IN_1A

    client.force_login(user)
    assert "$0.0400" in client.get("/").content.decode()
    assert "$0.0400" in client.get(f"/clusters/{cluster.pk}/").content.decode()


def test_figures_follow_the_catalog_not_a_stale_recorded_price(auth_client, estate) -> None:
    cluster, instance = estate
    Instance.objects.filter(pk=instance.pk).update(hourly_price=Decimal("0.100"))  # recorded yesterday
    assert Decimal(auth_client.get("/api/v1/metrics/summary").json()["hourly_cost"]) == SPOT_IN_1A
    assert current_cost(cluster)[0] == SPOT_IN_1A
