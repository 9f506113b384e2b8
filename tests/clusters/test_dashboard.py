"""The dashboard and ``GET /api/v1/metrics/summary``: cost, saving vs all on-demand, spot share, agents."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from agentapi.models import AgentStatus
from pricing.models import OnDemandPrice
from tests.factories import ClusterFactory, InstanceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def estate(user):
    OnDemandPrice.objects.create(region="us-east-1", instance_type="m5.large", price=Decimal("0.096"))
    OnDemandPrice.objects.create(region="eu-west-1", instance_type="m5.large", price=Decimal("0.107"))
    prod = ClusterFactory(organization=user.organization, name="prod", region="us-east-1")
    InstanceFactory(cluster=prod, lifecycle="spot", hourly_price=Decimal("0.040000"))
    InstanceFactory(cluster=prod, lifecycle="spot", hourly_price=Decimal("0.038000"))
    InstanceFactory(cluster=prod, lifecycle="on-demand", hourly_price=Decimal("0.096000"))
    InstanceFactory(cluster=prod, lifecycle="spot", hourly_price=Decimal("0.5"), terminated_at=timezone.now())
    eu = ClusterFactory(organization=user.organization, name="eu", region="eu-west-1")
    InstanceFactory(cluster=eu, lifecycle="on-demand", hourly_price=Decimal("0.107000"))
    AgentStatus.objects.create(cluster=prod, last_seen_at=timezone.now(), poll_seconds=30)
    # another organization's estate never counts
    InstanceFactory(cluster=ClusterFactory(), lifecycle="spot", hourly_price=Decimal("9"))
    return prod, eu


def test_summary_api_figures(auth_client, estate):
    body = auth_client.get("/api/v1/metrics/summary").json()
    assert body["cluster_count"] == 2
    assert body["nodes"] == 4 and body["spot_nodes"] == 2 and body["spot_share"] == 0.5
    assert body["hourly_cost"] == "0.281000"
    assert body["all_on_demand_hourly_cost"] == "0.395000"  # 3 × 0.096 + 0.107
    assert body["hourly_savings"] == "0.114000"
    assert body["monthly_savings"] == "83.22"
    assert body["agents_connected"] == 1
    assert [(c["name"], c["agent"]) for c in body["clusters"]] == [("prod", "connected"), ("eu", "never")]


def test_summary_query_count_is_constant(auth_client, estate, user, django_assert_num_queries):
    # 1 the token's user; 2 clusters with stats; 3 running instances; 4 on-demand prices; 5 spot prices;
    # 6 the clusters' agent statuses (the agent app's summary column)
    with django_assert_num_queries(6):
        assert auth_client.get("/api/v1/metrics/summary").status_code == 200
    for _ in range(5):
        cluster = ClusterFactory(organization=user.organization, region="us-west-2")
        InstanceFactory(cluster=cluster, hourly_price=Decimal("0.1"))
    with django_assert_num_queries(6):
        assert auth_client.get("/api/v1/metrics/summary").json()["cluster_count"] == 7


def test_summary_requires_login(api_client):
    assert api_client.get("/api/v1/metrics/summary").status_code == 401


def test_dashboard_page(client, user, estate, django_assert_num_queries):
    client.force_login(user)
    # 1 session, 2 user, 3 clusters with stats, 4 running instances, 5 on-demand prices, 6 spot prices,
    # 7 the clusters' agent statuses, 8 the user's organization (top bar); the savings overview: 9 the on-demand
    # discount, 10 the daily cost rows, 11 the ledger entries, 12 the month's sums, 13-14 the catalog's age
    with django_assert_num_queries(14):
        page = client.get("/").content.decode()
    assert "$0.2810" in page and "$0.1140/h" in page and "50%" in page
    assert 'data-testid="agents">1/2' in page
    assert page.index(">prod<") < page.index(">eu<")


def test_dashboard_without_clusters_shows_how_to_start(client, user):
    client.force_login(user)
    page = client.get("/").content.decode()
    assert "Get started" in page and "$0.0000" in page
