"""``/api/v1/clusters``: stats in the list, register by hand, detail cost, instances, tenancy, query counts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditLog
from clusters.models import Cluster
from pricing.models import OnDemandPrice
from tests.factories import CloudAccountFactory, ClusterFactory, InstanceFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/clusters"


@pytest.fixture
def cluster(user):
    cluster = ClusterFactory(organization=user.organization, name="prod", region="us-east-1")
    InstanceFactory(cluster=cluster, lifecycle="spot", hourly_price=Decimal("0.035"), instance_type="m5.large")
    InstanceFactory(cluster=cluster, lifecycle="spot", hourly_price=Decimal("0.040"), instance_type="m5.large")
    InstanceFactory(cluster=cluster, lifecycle="on-demand", hourly_price=Decimal("0.170"), instance_type="c5.xlarge")
    # Neither counts: one terminated, one stopped.
    InstanceFactory(cluster=cluster, state="terminated", terminated_at=timezone.now(), hourly_price=Decimal("9"))
    InstanceFactory(cluster=cluster, state="stopped", hourly_price=Decimal("9"))
    OnDemandPrice.objects.create(region="us-east-1", instance_type="m5.large", price=Decimal("0.096"))
    OnDemandPrice.objects.create(region="us-east-1", instance_type="c5.xlarge", price=Decimal("0.17"))
    return cluster


def test_list_shows_node_counts_spot_share_and_cost(auth_client, cluster) -> None:
    body = auth_client.get(LIST_URL).json()
    (row,) = body["results"]
    assert row["name"] == "prod"
    assert row["node_count"] == 3
    assert row["spot_count"] == 2
    assert row["spot_share"] == pytest.approx(0.6667, abs=1e-4)
    assert row["hourly_cost"] == "0.245000"


def test_list_query_count_is_constant(auth_client, user, cluster, django_assert_num_queries) -> None:
    for _ in range(4):
        other = ClusterFactory(
            organization=user.organization, cloud_account=CloudAccountFactory(organization=user.organization)
        )
        InstanceFactory.create_batch(2, cluster=other, hourly_price=Decimal("0.1"))
    # 1: the user (JWT authentication); 2: COUNT for pagination;
    # 3: the page of clusters joined to their accounts, with node/spot counts aggregated in SQL;
    # 4: the page's running instances; 5: on-demand and 6: spot prices of their types (the one cost rule)
    with django_assert_num_queries(6):
        response = auth_client.get(LIST_URL)
    assert response.json()["count"] == 5


def test_list_filters(auth_client, user, cluster) -> None:
    ClusterFactory(organization=user.organization, name="dev", region="eu-west-1", missing_since=timezone.now())
    assert [c["name"] for c in auth_client.get(LIST_URL, {"region": "eu-west-1"}).json()["results"]] == ["dev"]
    assert [c["name"] for c in auth_client.get(LIST_URL, {"missing": "true"}).json()["results"]] == ["dev"]
    assert [c["name"] for c in auth_client.get(LIST_URL, {"missing": "false"}).json()["results"]] == ["prod"]


def test_detail_compares_cost_with_all_on_demand(auth_client, cluster) -> None:
    body = auth_client.get(f"{LIST_URL}/{cluster.pk}").json()
    assert body["cost"]["nodes"] == 3
    assert body["cost"]["spot"] == 2 and body["cost"]["on_demand"] == 1
    assert body["cost"]["hourly_cost"] == "0.245000"
    assert body["cost"]["all_on_demand_hourly_cost"] == "0.362000"  # 2 * 0.096 + 0.17
    assert body["cost"]["hourly_savings"] == "0.117000"


def test_instances_endpoint(auth_client, cluster) -> None:
    running = auth_client.get(f"{LIST_URL}/{cluster.pk}/instances").json()
    assert running["count"] == 4  # running + stopped; not the terminated one
    everything = auth_client.get(f"{LIST_URL}/{cluster.pk}/instances", {"include_closed": "true"}).json()
    assert everything["count"] == 5
    assert {"instance_id", "lifecycle", "hourly_price", "private_dns"} <= set(everything["results"][0])


def test_register_cluster_by_hand(auth_client, user) -> None:
    account = CloudAccountFactory(organization=user.organization)
    payload = {"name": "onprem-1", "region": "eu-west-1", "kind": "self-managed", "cloud_account": account.pk}
    response = auth_client.post(LIST_URL, payload, format="json")
    assert response.status_code == 201, response.content
    cluster = Cluster.objects.get(pk=response.json()["id"])
    assert (cluster.source, cluster.organization_id, cluster.cloud_account_id) == (
        "manual",
        user.organization_id,
        account.pk,
    )
    assert AuditLog.objects.filter(action="cluster.registered", resource_id=str(cluster.pk)).count() == 1
    duplicate = auth_client.post(LIST_URL, payload, format="json")
    assert duplicate.status_code == 400
    assert Cluster.objects.count() == 1


def test_register_without_account(auth_client) -> None:
    response = auth_client.post(LIST_URL, {"name": "lab", "region": "us-east-1"}, format="json")
    assert response.status_code == 201
    assert response.json()["cloud_account"] is None


@pytest.mark.parametrize("payload", [{"name": "bad name!", "region": "us-east-1"}, {"name": "ok", "region": "moon"}])
def test_register_rejects_bad_input(auth_client, payload) -> None:
    response = auth_client.post(LIST_URL, payload, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"]
    assert not Cluster.objects.exists()


def test_register_with_other_orgs_account_is_rejected(auth_client) -> None:
    theirs = CloudAccountFactory()
    response = auth_client.post(
        LIST_URL, {"name": "x", "region": "us-east-1", "cloud_account": theirs.pk}, format="json"
    )
    assert response.status_code == 400
    assert not Cluster.objects.exists()


def test_client_cannot_read_other_orgs_cluster(auth_client, cluster) -> None:
    theirs = ClusterFactory()
    InstanceFactory(cluster=theirs)
    assert [c["id"] for c in auth_client.get(LIST_URL).json()["results"]] == [cluster.pk]
    assert auth_client.get(f"{LIST_URL}/{theirs.pk}").status_code == 404
    assert auth_client.get(f"{LIST_URL}/{theirs.pk}/instances").status_code == 404


def test_detail_query_count(auth_client, cluster, django_assert_num_queries) -> None:
    # 1: the user (JWT); 2: the cluster with its account and stats; 3: its running instances;
    # 4: on-demand and 5: spot prices of their types (the one cost rule and the all-on-demand comparison)
    with django_assert_num_queries(5):
        assert auth_client.get(f"{LIST_URL}/{cluster.pk}").status_code == 200


def test_launch_config_of_a_hand_registered_cluster(auth_client, user):
    cluster = ClusterFactory(organization=user.organization, region="us-east-1")
    url = f"/api/v1/clusters/{cluster.pk}/launch-config"
    good = {"launch_template_id": "lt-0abc1234def56789", "subnets": {"us-east-1a": "subnet-0abc1234"}}
    response = auth_client.put(url, good, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {**good, "launch_template_version": "$Latest", "source": "manual"}
    for bad in (
        {"launch_template_id": "x", "subnets": {}},
        {**good, "subnets": {"eu-west-1a": "subnet-0abc1234"}},
        {**good, "extra": 1},
        ["not", "an", "object"],
    ):
        response = auth_client.put(url, bad, format="json")
        assert response.status_code == 400, bad
        assert response.json()["error"]["code"] == "validation_error"
    cluster.refresh_from_db()
    assert cluster.launch_config["source"] == "manual"
    other = ClusterFactory()
    assert auth_client.put(f"/api/v1/clusters/{other.pk}/launch-config", good, format="json").status_code == 404
