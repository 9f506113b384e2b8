"""Hibernation end to end: the simulated AWS (moto's server; EKS node groups reconciled to instances as
``manage.py simulated_aws`` does), the reference agent on a simulated cluster that mirrors it over HTTP to a live
server, and ticks; the clock moved with time-machine for the whole process. An Auto Scaling group and an EKS managed
node group of 3 nodes each sleep to 0 and wake to 3 with every node Ready by the wake time."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import pytest
import time_machine

from accounts.models import CloudAccount
from agent.executor import Executor
from agent.platform import PlatformClient
from agent.runner import Agent
from agent.simulated_aws import Workload, mirrored_cluster
from agentapi.services import api_key_create
from clusters.management.commands.simulated_aws import reconcile_node_groups
from clusters.models import Cluster
from clusters.services import account_sync
from hibernation import services
from hibernation.models import HibernationPeriod, HibernationSchedule
from hibernation.services.engine import hibernation_tick
from savings.models import LedgerEntry
from savings.selectors import realized
from tests.factories import OrganizationFactory
from tests.optimization.conftest import ACCOUNT, AMI, REGION, aws_server, simulated_aws  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

# Monday 2026-06-01 in New York (EDT, UTC-4): sleep at 20:00 (00:00 UTC), pre-warm at 06:45, wake at 07:00.
START = datetime(2026, 6, 1, 23, 55, tzinfo=UTC)
SLEEP = datetime(2026, 6, 2, 0, 0, 30, tzinfo=UTC)
PRE_WARM = datetime(2026, 6, 2, 10, 45, tzinfo=UTC)
WAKE = datetime(2026, 6, 2, 11, 0, tzinfo=UTC)
WORKLOADS = (Workload("shop", "web", 6, 500, 1024, min_available=4), Workload("shop", "api", 3, 700, 1536))


def _client(service: str, endpoint: str):
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


def _build(endpoint: str) -> None:
    ec2 = _client("ec2", endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    template = ec2.create_launch_template(
        LaunchTemplateName="shop-workers", LaunchTemplateData={"ImageId": AMI, "InstanceType": "m5.xlarge"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    _client("autoscaling", endpoint).create_auto_scaling_group(
        AutoScalingGroupName="shop-workers",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=1,
        MaxSize=6,
        DesiredCapacity=3,
        VPCZoneIdentifier=subnet["SubnetId"],
        Tags=[
            {
                "Key": "kubernetes.io/cluster/shop",
                "Value": "owned",
                "PropagateAtLaunch": True,
                "ResourceId": "shop-workers",
                "ResourceType": "auto-scaling-group",
            }
        ],
    )
    role = f"arn:aws:iam::{ACCOUNT}:role/eks"
    eks = _client("eks", endpoint)
    eks.create_cluster(name="shop", roleArn=role, resourcesVpcConfig={"subnetIds": [subnet["SubnetId"]]})
    eks.create_nodegroup(
        clusterName="shop",
        nodegroupName="general",
        nodeRole=role,
        subnets=[subnet["SubnetId"]],
        instanceTypes=["m5.xlarge"],
        scalingConfig={"minSize": 1, "maxSize": 6, "desiredSize": 3},
    )


def _running(endpoint: str) -> list[dict]:
    reservations = _client("ec2", endpoint).describe_instances(
        Filters=[
            {"Name": "tag-key", "Values": ["kubernetes.io/cluster/shop"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


def test_asg_and_node_group_sleep_to_zero_and_wake_ready_by_the_wake_time(aws_server, live_server):  # noqa: F811
    endpoint = aws_server.endpoint
    with time_machine.travel(START, tick=True) as clock:
        _build(endpoint)

        def eks_loop() -> None:  # what ``manage.py simulated_aws`` does every few seconds
            reconcile_node_groups(lambda service, region: _client(service, endpoint), (REGION,))

        eks_loop()
        assert len(_running(endpoint)) == 6
        org = OrganizationFactory()
        account = CloudAccount.objects.create(
            organization=org,
            name="sim",
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/SpotOptimizer",
            external_id="ext",
            aws_account_id=ACCOUNT,
            regions=[REGION],
            status=CloudAccount.Status.ACTIVE,
        )
        account_sync(account=account)
        cluster = Cluster.objects.get(organization=org, name="shop")
        assert cluster.kind == "eks"
        _, raw = api_key_create(cluster=cluster, name="sim")
        sim = mirrored_cluster(
            cluster_name="shop",
            region=REGION,
            endpoint_url=endpoint,
            join_seconds=20,
            reschedule_seconds=0,
            workloads=WORKLOADS,
        )
        agent = Agent(
            PlatformClient(live_server.url, raw),
            sim,
            Executor(sim, eviction_retry_seconds=0.01, wait_poll_seconds=0.01),
        )
        schedule = services.schedule_create(
            cluster=cluster,
            values={
                "name": "weeknights",
                "time_zone": "America/New_York",
                "pre_warm_minutes": 15,
                "windows": [{"days": ["mon", "tue", "wed", "thu"], "sleep_at": "20:00", "wake_at": "07:00"}],
            },
        )

        def round_trip() -> str:
            agent._next_snapshot = 0
            agent.run_once()
            hibernation_tick()
            eks_loop()
            account_sync(account=account, discovery=False)
            return Cluster.objects.get(pk=cluster.pk).hibernation_state

        assert round_trip() == "awake"
        assert len(sim.list_nodes()) == 6 and not sim.pending_pods()

        clock.move_to(SLEEP)
        for _ in range(20):
            if round_trip() == "asleep":
                break
        assert Cluster.objects.get(pk=cluster.pk).hibernation_state == "asleep", HibernationSchedule.objects.get(
            pk=schedule.pk
        ).progress
        agent._next_snapshot = 0
        agent.run_once()
        assert _running(endpoint) == []
        assert sim.list_nodes() == []
        assert sim.get_workload("Deployment", "shop", "web").replicas == 0
        assert sim.get_workload("CronJob", "shop", "nightly-report").suspend is True
        groups = _client("eks", endpoint).describe_nodegroup(clusterName="shop", nodegroupName="general")
        assert groups["nodegroup"]["scalingConfig"]["desiredSize"] == 0

        clock.move_to(PRE_WARM)
        for _ in range(40):
            if round_trip() == "awake":
                break
            clock.shift(5)  # nodes join Ready 20 s after their launch
        assert Cluster.objects.get(pk=cluster.pk).hibernation_state == "awake"
        agent._next_snapshot = 0
        agent.run_once()

        running = _running(endpoint)
        by_group = {}
        for i in running:
            tags = {t["Key"]: t["Value"] for t in i.get("Tags", [])}
            group = tags.get("eks:nodegroup-name") or tags.get("aws:autoscaling:groupName")
            by_group[group] = by_group.get(group, 0) + 1
        assert by_group == {"general": 3, "shop-workers": 3}
        assert len(sim.list_nodes()) == 6 and all(n.ready for n in sim.list_nodes())
        assert sim.get_workload("Deployment", "shop", "web").replicas == 6
        assert sim.get_workload("Deployment", "shop", "api").replicas == 3
        assert sim.get_workload("CronJob", "shop", "nightly-report").suspend is False
        assert not sim.pending_pods()
        period = HibernationPeriod.objects.get(cluster=cluster)
        assert period.wake_at == WAKE
        assert period.ready_at is not None and period.ready_at <= WAKE, (period.ready_at, WAKE)
        assert period.node_count == 6 and period.node_hours > 0
        # the night is the savings ledger's entry, from capacity at zero until capacity was asked back
        night = LedgerEntry.objects.get(source="hibernation", action_id=str(period.pk))
        assert (night.started_at, night.ended_at) == (period.asleep_at, period.waking_at)
        assert period.saving == realized(night)
