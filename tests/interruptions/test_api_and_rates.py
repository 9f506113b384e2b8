"""The interruptions API and console: filters, tenancy, constant queries, bad input; the blended pool rates and the
planner reading them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from clusters.models import Instance
from interruptions import rates
from interruptions.events import parse, spot_warning
from interruptions.services import interruptions_ingest
from tests.factories import CloudAccountFactory, ClusterFactory, InstanceFactory

from .conftest import event

pytestmark = pytest.mark.django_db


def _interrupt(account, instance, *, at=None, kind="spot-interruption-warning"):
    body = event(kind, instance_id=instance.instance_id, account="", region=instance.cluster.region, at=at)
    return interruptions_ingest(account=account, events=parse(json.dumps(body)))


@pytest.fixture
def estate(org):
    account = CloudAccountFactory(organization=org, regions=["us-east-1"])
    cluster = ClusterFactory(organization=org, cloud_account=account)
    nodes = [
        InstanceFactory(
            cluster=cluster,
            lifecycle=Instance.Lifecycle.SPOT,
            instance_type="m5.large",
            zone="us-east-1a",
            launch_time=timezone.now() - timedelta(days=10),
        )
        for _ in range(3)
    ]
    return {"account": account, "cluster": cluster, "nodes": nodes}


def test_the_list_filters_by_cluster_type_time_and_routing(auth_client, estate, org):
    account, cluster, nodes = estate["account"], estate["cluster"], estate["nodes"]
    _interrupt(account, nodes[0], at=timezone.now() - timedelta(hours=2))
    _interrupt(account, nodes[1], kind="rebalance-recommendation")
    interruptions_ingest(
        account=account,
        events=parse(
            spot_warning(instance_id="i-0unknown", account="", region="us-east-1", at=timezone.now(), event_id="u1")
        ),
    )

    everything = auth_client.get("/api/v1/interruptions").json()
    assert everything["count"] == 3
    spot = auth_client.get("/api/v1/interruptions", {"type": "spot_interruption"}).json()
    assert {r["instance_id"] for r in spot["results"]} == {nodes[0].instance_id, "i-0unknown"}
    unrouted = auth_client.get("/api/v1/interruptions", {"routed": "false"}).json()
    assert [r["instance_id"] for r in unrouted["results"]] == ["i-0unknown"]
    recent = auth_client.get(
        "/api/v1/interruptions", {"since": (timezone.now() - timedelta(hours=1)).isoformat(), "cluster": cluster.pk}
    ).json()
    assert [r["type"] for r in recent["results"]] == ["rebalance"]
    first = everything["results"][-1]
    assert first["cluster_name"] == cluster.name and first["outcome"]


def test_another_organizations_events_are_not_listed(other_client, estate):
    _interrupt(estate["account"], estate["nodes"][0])
    assert other_client.get("/api/v1/interruptions").json()["count"] == 0
    assert other_client.get("/api/v1/interruption-rates", {"region": "us-east-1"}).json()["pools"] == []


def test_the_list_takes_a_constant_number_of_queries(auth_client, estate, django_assert_num_queries):
    for node in estate["nodes"]:
        _interrupt(estate["account"], node)
    # session-less JWT: the user; the page's count; the page's rows with their cluster and job joined.
    with django_assert_num_queries(3):
        assert auth_client.get("/api/v1/interruptions").json()["count"] == 3


@pytest.mark.parametrize(
    "params", [{}, {"region": "not a region"}, {"region": "us-east-1; drop"}], ids=["missing", "bad", "injection"]
)
def test_rates_need_a_region(auth_client, params):
    response = auth_client.get("/api/v1/interruption-rates", params)
    assert response.status_code == 400
    assert response.json()["error"]["fields"]["region"]


@pytest.mark.parametrize(
    "params",
    [
        {"since": "yesterday"},
        {"type": "meteor"},
        {"routed": "maybe"},
        {"since": "0007-03-21T00:18:08-16:54"},
        {"until": "9999-12-31T23:59:59-23:59"},
        {"cluster": "-2.225073858507e-311"},
        {"cluster": "99999999999999999999999"},
    ],
)
def test_bad_filters_are_400(auth_client, params):
    response = auth_client.get("/api/v1/interruptions", params)
    assert response.status_code == 400
    assert "error" in response.json()


def test_blend_weights_observations_by_node_hours():
    prior = 0.025
    # Ten nodes for a day (240 node-hours) interrupted once: the advisor still weighs most.
    few = rates.blend(prior, 1, 240)
    assert prior < few < 0.5
    # A year of a hundred nodes, interrupted 40 times a month: the observation wins.
    many = rates.blend(prior, 40 * 12, 100 * 24 * 365)
    assert abs(many - 40 / 100) < 0.01
    # Nothing observed: the advisor's rate.
    assert rates.blend(prior, 0, 0) == prior
    assert rates.blend(None, 0, 0) is None
    assert rates.nearest_bucket(0.3) == ">20%" and rates.nearest_bucket(0.03) == "<5%"


def test_pool_rates_count_interruptions_and_node_hours_per_organization(auth_client, estate):
    account, nodes = estate["account"], estate["nodes"]
    _interrupt(account, nodes[0])
    _interrupt(account, nodes[1])
    other_org_cluster = ClusterFactory(region="us-east-1")
    InstanceFactory(cluster=other_org_cluster, lifecycle="spot", instance_type="m5.large", zone="us-east-1a")

    body = auth_client.get("/api/v1/interruption-rates", {"region": "us-east-1"}).json()

    (pool,) = body["pools"]
    assert (pool["instance_type"], pool["zone"], pool["interruptions"]) == ("m5.large", "us-east-1a", 2)
    assert 3 * 24 * 10 - 1 < pool["node_hours"] < 3 * 24 * 10 + 1  # three nodes for ten days
    advisor = pool["advisor_rate"]
    assert pool["blended_rate"] == rates.blend(advisor, 2, pool["node_hours"])
    assert pool["blended_rate"] > (advisor or 0)


def test_the_planner_reads_the_blended_rate(estate):
    account, nodes = estate["account"], estate["nodes"]
    for node in nodes:
        _interrupt(account, node)
    offerings = [
        {"instance_type": "m5.large", "zone": "us-east-1a", "capacity_type": "spot", "interruption_rate": 0.025},
        {"instance_type": "m5.large", "zone": "us-east-1b", "capacity_type": "spot", "interruption_rate": 0.025},
        {"instance_type": "m5.large", "zone": "us-east-1a", "capacity_type": "on-demand"},
    ]
    rates.apply_to_offerings(estate["cluster"], offerings)
    assert offerings[0]["interruption_rate"] > 0.1  # three interruptions in 720 node-hours
    assert offerings[1]["interruption_rate"] == 0.025  # never run there: the advisor's
    assert "interruption_rate" not in offerings[2]


@pytest.fixture
def web(client, user):
    client.force_login(user)
    return client


def test_console_page_shows_pools_and_unrouted_events(web, estate):
    _interrupt(estate["account"], estate["nodes"][0])
    interruptions_ingest(
        account=estate["account"],
        events=parse(
            spot_warning(instance_id="i-0nowhere", account="", region="us-east-1", at=timezone.now(), event_id="x")
        ),
    )
    page = web.get("/interruptions/").content.decode()
    assert 'data-testid="pool-rates-us-east-1"' in page and "m5.large" in page
    assert "i-0nowhere" in page
    cluster_page = web.get(f"/clusters/{estate['cluster'].pk}/").content.decode()
    assert 'data-testid="interruption-timeline"' in cluster_page
    assert estate["nodes"][0].instance_id in cluster_page or "Spot interruption warning" in cluster_page
