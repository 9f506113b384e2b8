"""Inventory against moto: spot vs on-demand, prices, idempotency, terminated instances closed, throttling retried."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import boto3
import pytest
from botocore.stub import Stubber

from audit.models import AuditLog
from cloud import AccountSession, AwsCredentials
from clusters.inventory import sync_account_inventory
from clusters.models import Cluster, Instance
from pricing.models import OnDemandPrice, SpotPricePoint
from tests.aws_fixtures import NO_SLEEP, ROLE_ARN, launch, role_session
from tests.factories import CloudAccountFactory, ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def prices(db) -> None:
    OnDemandPrice.objects.create(region="us-east-1", instance_type="m5.large", price=Decimal("0.096"))
    OnDemandPrice.objects.create(region="us-east-1", instance_type="c5.xlarge", price=Decimal("0.17"))
    SpotPricePoint.objects.create(
        region="us-east-1",
        zone="us-east-1b",
        instance_type="m5.large",
        price=Decimal("0.035"),
        timestamp=datetime(2026, 1, 1, tzinfo=UTC),
    )


@pytest.fixture
def setup(aws, prices):
    account = CloudAccountFactory(role_arn=ROLE_ARN, regions=["us-east-1"])
    cluster = ClusterFactory(
        organization=account.organization, cloud_account=account, name="prod", region="us-east-1", source="discovered"
    )
    spot = launch(
        "us-east-1",
        cluster="prod",
        count=2,
        spot=True,
        zone="us-east-1b",
        extra_tags={"eks:nodegroup-name": "spot-ng", "aws:autoscaling:groupName": "eks-spot-ng-1"},
    )
    on_demand = launch("us-east-1", cluster="prod", count=1, instance_type="c5.xlarge", zone="us-east-1a")
    launch("us-east-1", cluster="other", count=1)  # another cluster's node, not discovered here
    return account, cluster, spot, on_demand


def _rows(cluster: Cluster) -> dict[str, Instance]:
    return {i.instance_id: i for i in Instance.objects.filter(cluster=cluster)}


def test_sync_marks_spot_and_on_demand_with_prices(setup) -> None:
    account, cluster, spot, on_demand = setup
    report = sync_account_inventory(account=account, session=role_session(account.external_id))
    assert report.added == 3 and not report.errors
    rows = _rows(cluster)
    assert set(rows) == set(spot) | set(on_demand)
    for instance_id in spot:
        row = rows[instance_id]
        assert row.lifecycle == Instance.Lifecycle.SPOT
        assert row.hourly_price == Decimal("0.035")
        assert (row.node_group, row.asg_name, row.zone) == ("spot-ng", "eks-spot-ng-1", "us-east-1b")
        assert row.private_dns.endswith(".ec2.internal")
        assert row.launch_time is not None
    od = rows[on_demand[0]]
    assert od.lifecycle == Instance.Lifecycle.ON_DEMAND
    assert od.instance_type == "c5.xlarge"
    assert od.hourly_price == Decimal("0.170000")
    assert od.state == "running" and od.terminated_at is None
    cluster.refresh_from_db()
    assert cluster.inventory_synced_at is not None


def test_sync_is_idempotent(setup) -> None:
    account, cluster, _, _ = setup
    session = role_session(account.external_id)
    sync_account_inventory(account=account, session=session)
    first = {k: (v.pk, v.state, v.lifecycle, v.hourly_price) for k, v in _rows(cluster).items()}
    audit_count = AuditLog.objects.count()
    report = sync_account_inventory(account=account, session=session)
    assert (report.added, report.updated, report.closed) == (0, 0, 0)
    assert {k: (v.pk, v.state, v.lifecycle, v.hourly_price) for k, v in _rows(cluster).items()} == first
    assert AuditLog.objects.count() == audit_count


def test_terminated_instances_are_closed_and_kept(setup) -> None:
    account, cluster, spot, _ = setup
    session = role_session(account.external_id)
    sync_account_inventory(account=account, session=session)
    boto3.client("ec2", region_name="us-east-1").terminate_instances(InstanceIds=[spot[0]])
    report = sync_account_inventory(account=account, session=session)
    assert report.closed == 1
    row = _rows(cluster)[spot[0]]
    assert row.state == "terminated"
    assert row.terminated_at is not None
    assert row.hourly_price == Decimal("0.035")  # cost history stays
    assert Instance.objects.filter(cluster=cluster).count() == 3
    assert Instance.objects.filter(cluster=cluster).running().count() == 2
    entry = AuditLog.objects.filter(action="cluster.inventory_synced").order_by("-id").first()
    assert entry.after["closed"] == [spot[0]]
    # A third run changes nothing.
    assert sync_account_inventory(account=account, session=session).closed == 0


def test_instances_aws_no_longer_lists_are_closed(setup) -> None:
    account, cluster, _, _ = setup
    ghost = Instance.objects.create(
        cluster=cluster,
        instance_id="i-0000000000000dead",
        instance_type="m5.large",
        zone="us-east-1a",
        lifecycle="on-demand",
        state="running",
    )
    sync_account_inventory(account=account, session=role_session(account.external_id))
    ghost.refresh_from_db()
    assert ghost.terminated_at is not None and ghost.state == "terminated"


def test_throttled_describe_is_retried(setup) -> None:
    account, cluster, _, _ = setup
    session = AccountSession.open(AwsCredentials(), region="us-east-1", endpoint_url="", retry=NO_SLEEP)
    client = session.client("ec2")
    page = {
        "Reservations": [
            {
                "Instances": [
                    {
                        "InstanceId": "i-0123456789abcdef0",
                        "InstanceType": "m5.large",
                        "Placement": {"AvailabilityZone": "us-east-1b"},
                        "InstanceLifecycle": "spot",
                        "State": {"Name": "running", "Code": 16},
                        "LaunchTime": datetime(2026, 1, 1, tzinfo=UTC),
                        "Tags": [{"Key": "kubernetes.io/cluster/prod", "Value": "owned"}],
                    }
                ]
            }
        ]
    }
    with Stubber(client) as stub:
        stub.add_client_error("describe_instances", service_error_code="RequestLimitExceeded", http_status_code=503)
        stub.add_client_error("describe_instances", service_error_code="Throttling", http_status_code=400)
        stub.add_response("describe_instances", page)
        report = sync_account_inventory(account=account, session=session)
        stub.assert_no_pending_responses()
    assert not report.errors
    assert _rows(cluster)["i-0123456789abcdef0"].lifecycle == "spot"


def test_spot_price_moves_are_saved_without_audit_noise(setup) -> None:
    account, cluster, spot, _ = setup
    session = role_session(account.external_id)
    sync_account_inventory(account=account, session=session)
    SpotPricePoint.objects.create(
        region="us-east-1",
        zone="us-east-1b",
        instance_type="m5.large",
        price=Decimal("0.031"),
        timestamp=datetime(2026, 1, 2, tzinfo=UTC),
    )
    audit_count = AuditLog.objects.count()
    sync_account_inventory(account=account, session=session)
    assert _rows(cluster)[spot[0]].hourly_price == Decimal("0.031")
    assert AuditLog.objects.count() == audit_count
