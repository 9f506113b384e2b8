"""The simulated world for job tests: moto's server behind the capacity layer (the simulated AWS), an estate with a
VPC, subnets, a launch template and an Auto Scaling group of three on-demand m5.xlarge nodes of cluster "shop", the
platform's rows for it (account, cluster discovered and synced, template, policy, API key), and the reference agent
running a simulated cluster that mirrors those instances, talking to a live server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import boto3
import pytest
import requests
from django.core.cache import cache

from accounts.models import CloudAccount
from agent.executor import Executor
from agent.platform import PlatformClient
from agent.runner import Agent
from agent.simulated_aws import AwsMirroredCluster, Workload, mirrored_cluster
from agentapi.services import api_key_create
from clusters.models import Cluster, ClusterPolicy
from clusters.services import account_sync
from optimization.services import followup
from optimization.services.runner import tick
from spotopt.simulated_aws import SimulatedAws
from templates_app.models import NodeTemplate
from tests.factories import OrganizationFactory
from tests.templates_app.conftest import catalog  # noqa: F401 - the small exact-price catalog fixture

ACCOUNT = "111122223333"
REGION = "us-east-1"
AMI = "ami-12c6146b"
WORKLOADS = (
    Workload("shop", "web", 6, 500, 1024, min_available=4),
    Workload("shop", "api", 3, 700, 1536, min_available=2),
)


@pytest.fixture(scope="session")
def simulated_aws() -> Iterator[SimulatedAws]:
    server = SimulatedAws(port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def aws_server(simulated_aws: SimulatedAws, monkeypatch, settings) -> SimulatedAws:
    """A fresh simulated AWS for the test, reached by every client through AWS_ENDPOINT_URL."""
    requests.post(f"{simulated_aws.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    simulated_aws.set_unavailable([])
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "MOTO_ACCOUNT_ID": ACCOUNT,
        "AWS_ENDPOINT_URL": simulated_aws.endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    settings.AWS_ENDPOINT_URL = simulated_aws.endpoint
    return simulated_aws


def build_estate(endpoint: str, *, nodes: int = 3, instance_type: str = "m5.xlarge") -> dict:
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        zone: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(("us-east-1a", "us-east-1b"))
    }
    template = ec2.create_launch_template(
        LaunchTemplateName="shop-nodes", LaunchTemplateData={"ImageId": AMI, "InstanceType": instance_type}
    )["LaunchTemplate"]["LaunchTemplateId"]
    asg = boto3.client("autoscaling", region_name=REGION, endpoint_url=endpoint)
    asg.create_auto_scaling_group(
        AutoScalingGroupName="shop-general",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=0,
        MaxSize=10,
        DesiredCapacity=nodes,
        VPCZoneIdentifier=subnets["us-east-1a"],
        Tags=[
            {
                "Key": "kubernetes.io/cluster/shop",
                "Value": "owned",
                "PropagateAtLaunch": True,
                "ResourceId": "shop-general",
                "ResourceType": "auto-scaling-group",
            },
        ],
    )
    return {"subnets": subnets, "launch_template_id": template}


@dataclass
class World:
    cluster: Cluster
    policy: ClusterPolicy
    template: NodeTemplate
    sim: AwsMirroredCluster
    agent: Agent
    server: SimulatedAws
    max_cordoned: int = 0
    estate: dict = field(default_factory=dict)

    def ec2(self):
        return boto3.client("ec2", region_name=REGION, endpoint_url=self.server.endpoint)

    def instances(self) -> list[dict]:
        out = []
        for r in self.ec2().describe_instances(
            Filters=[
                {"Name": "tag-key", "Values": ["kubernetes.io/cluster/shop"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )["Reservations"]:
            out.extend(r["Instances"])
        return out

    def agent_round(self) -> None:
        self.agent._next_snapshot = 0  # a snapshot every round: the world moves fast here
        self.agent.run_once()
        cordoned = sum(1 for n in self.sim.list_nodes() if n.unschedulable)
        self.max_cordoned = max(self.max_cordoned, cordoned)

    def run(self, until: Callable[[], bool], *, rounds: int = 30) -> None:
        """Alternate agent rounds and ticks until ``until()`` holds."""
        for _ in range(rounds):
            self.agent_round()
            tick()
            if until():
                self.agent_round()
                return
        raise AssertionError("the world did not get there")


def add_managed_node_group(endpoint: str, *, size: int = 2, min_size: int = 0, name: str = "general") -> dict:
    """An EKS cluster "shop" with a managed node group whose nodes belong to its Auto Scaling group, as EKS makes
    them: moto's EKS only records the node group (and names an Auto Scaling group it does not create), so the group
    is created under that name, with the launch template, tags and sizes EKS would give it."""
    eks = boto3.client("eks", region_name=REGION, endpoint_url=endpoint)
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=endpoint)
    subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]]
    role = f"arn:aws:iam::{ACCOUNT}:role/eks"
    eks.create_cluster(name="shop", roleArn=role, resourcesVpcConfig={"subnetIds": subnets}, version="1.31")
    group = eks.create_nodegroup(
        clusterName="shop",
        nodegroupName=name,
        nodeRole=role,
        subnets=subnets,
        capacityType="ON_DEMAND",
        instanceTypes=["m5.xlarge"],
        scalingConfig={"minSize": min_size, "maxSize": 6, "desiredSize": size},
    )["nodegroup"]
    asg_name = group["resources"]["autoScalingGroups"][0]["name"]
    template = ec2.create_launch_template(
        LaunchTemplateName=f"eks-{name}", LaunchTemplateData={"ImageId": AMI, "InstanceType": "m5.xlarge"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    tags = {"kubernetes.io/cluster/shop": "owned", "eks:cluster-name": "shop", "eks:nodegroup-name": name}
    boto3.client("autoscaling", region_name=REGION, endpoint_url=endpoint).create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=min_size,
        MaxSize=6,
        DesiredCapacity=size,
        VPCZoneIdentifier=subnets[0],
        Tags=[
            {
                "Key": k,
                "Value": v,
                "PropagateAtLaunch": True,
                "ResourceId": asg_name,
                "ResourceType": "auto-scaling-group",
            }
            for k, v in tags.items()
        ],
    )
    return {"asg_name": asg_name, "node_group": name}


def make_world(aws_server, live_server, settings, *, node_group: dict | None = None) -> World:
    """The world; ``node_group`` (keyword arguments of add_managed_node_group) adds an EKS managed node group."""
    settings.OPTIMIZATION_DRAIN_ATTEMPT_SECONDS = 2
    estate = build_estate(aws_server.endpoint)
    if node_group is not None:
        estate["node_group"] = add_managed_node_group(aws_server.endpoint, **node_group)
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
    template = NodeTemplate.objects.create(
        organization=org,
        name="spot m5",
        architectures=["x86_64"],
        instance_families={"include": ["m5*"], "exclude": []},
        capacity_types=["spot"],
        spot_fallback=True,
        strategy="lowest-price",
        is_default=True,
        fallback_restore_minutes=30,
    )
    policy = ClusterPolicy.objects.create(
        cluster=cluster,
        optimization_enabled=True,
        mode="recommend",
        on_demand_base=0.0,
        max_pool_share=1.0,
        headroom_pct=0,
        validation_delay_seconds=0,
        disruption_budgets=[{"nodes": "2"}],
        consolidate_after="1m",
        min_saving_pct=Decimal("5"),
    )
    _, raw = api_key_create(cluster=cluster, name="sim")
    sim = mirrored_cluster(
        cluster_name="shop",
        region=REGION,
        endpoint_url=aws_server.endpoint,
        join_seconds=0,
        reschedule_seconds=0,
        workloads=WORKLOADS,
    )
    agent = Agent(
        PlatformClient(live_server.url, raw), sim, Executor(sim, eviction_retry_seconds=0.01, wait_poll_seconds=0.01)
    )
    w = World(cluster=cluster, policy=policy, template=template, sim=sim, agent=agent, server=aws_server)
    w.agent_round()
    w.estate = estate
    if node_group is None:
        assert estate["launch_template_id"] == cluster.launch_config["launch_template_id"]
    return w


@pytest.fixture
def world(aws_server, catalog, live_server, settings) -> World:  # noqa: F811
    return make_world(aws_server, live_server, settings)


@pytest.fixture
def queue(monkeypatch):
    """A broker as the worker sees it: tasks are queued (not run eagerly) and taken in order by the test."""
    cache.clear()
    queued: list[tuple[str, list, float | None]] = []
    monkeypatch.setitem(followup.current_app.conf, "task_always_eager", False)

    def send_task(name, args=None, countdown=None, **kwargs):
        queued.append((name, list(args or []), countdown))

    monkeypatch.setattr(followup.current_app, "send_task", send_task)
    return queued
