"""An estate for the state machine tests: an EKS cluster in moto (in process) with a managed node group and an Auto
Scaling group of 3 nodes each, the platform's rows for it, and an in-process agent over the simulated cluster whose
nodes are the cluster's running EC2 instances. The agent runs the real services (snapshot ingest, lease, execute,
report) without HTTP."""

from __future__ import annotations

from typing import Any

import boto3

from agent.backend import Node, Pod
from agent.executor import Executor
from agent.runner import build_snapshot
from agent.simulated import SimulatedBackend, add_demo_workloads
from agentapi.services import action_report_result, actions_lease, api_key_create, snapshot_ingest
from cloud import AccountSession, AwsCredentials
from clusters.inventory import sync_account_inventory
from clusters.management.commands.simulated_aws import reconcile_node_groups
from clusters.models import Cluster
from tests.aws_fixtures import AMI
from tests.factories import CloudAccountFactory, ClusterFactory

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/eks"


def client(service: str, region: str = REGION) -> Any:
    return boto3.client(service, region_name=region)


def session_factory(cluster: Cluster) -> AccountSession:
    return AccountSession.open(AwsCredentials(), region=cluster.region, endpoint_url="")


def build_aws(name: str = "shop") -> None:
    eks = client("eks")
    eks.create_cluster(name=name, roleArn=ROLE, resourcesVpcConfig={}, version="1.31")
    eks.create_nodegroup(
        clusterName=name,
        nodegroupName="general",
        nodeRole=ROLE,
        subnets=["subnet-1"],
        instanceTypes=["m5.large"],
        scalingConfig={"minSize": 1, "maxSize": 6, "desiredSize": 3},
    )
    eks.create_nodegroup(
        clusterName=name,
        nodegroupName="system",
        nodeRole=ROLE,
        subnets=["subnet-1"],
        instanceTypes=["t3.medium"],
        scalingConfig={"minSize": 1, "maxSize": 2, "desiredSize": 1},
    )
    client("ec2").create_launch_template(
        LaunchTemplateName=f"{name}-workers", LaunchTemplateData={"ImageId": AMI, "InstanceType": "c5.large"}
    )
    client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=f"{name}-workers",
        LaunchTemplate={"LaunchTemplateName": f"{name}-workers", "Version": "$Latest"},
        MinSize=2,
        MaxSize=5,
        DesiredCapacity=3,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": f"kubernetes.io/cluster/{name}", "Value": "owned", "PropagateAtLaunch": True}],
    )
    reconcile()


def reconcile() -> dict[str, int]:
    return reconcile_node_groups(lambda service, region: client(service, region), (REGION,))


def node_group_size(name: str = "general", cluster: str = "shop") -> tuple[int, int, int]:
    g = client("eks").describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]["scalingConfig"]
    return g["minSize"], g["maxSize"], g["desiredSize"]


def asg_size(name: str = "shop-workers") -> tuple[int, int, int, int]:
    (g,) = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return g["MinSize"], g["MaxSize"], g["DesiredCapacity"], len(g["Instances"])


def running_instances(cluster: str = "shop") -> list[dict]:
    reservations = client("ec2").describe_instances(
        Filters=[
            {"Name": f"tag:kubernetes.io/cluster/{cluster}", "Values": ["owned"]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]},
        ]
    )["Reservations"]
    return [i for r in reservations for i in r["Instances"]]


class FakeClock:
    """The agent's clock: starts at the real time and moves only when the agent sleeps (drain back-off)."""

    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Estate:
    """The platform's side: an account, the cluster, its inventory and an agent key; and the simulated cluster."""

    def __init__(self, organization, *, name: str = "shop", time_zone: str = "Europe/Berlin") -> None:
        self.account = CloudAccountFactory(organization=organization, regions=[REGION])
        self.cluster = ClusterFactory(
            organization=organization,
            cloud_account=self.account,
            name=name,
            region=REGION,
            kind=Cluster.Kind.EKS,
            time_zone=time_zone,
        )
        self.api_key, _ = api_key_create(cluster=self.cluster, name="agent")
        self.api_key.cluster = self.cluster
        self.clock = FakeClock()
        self.sim = SimulatedBackend(reschedule_seconds=0, clock=self.clock)
        self.executor = Executor(
            self.sim, clock=self.clock, sleep=self.clock.sleep, eviction_retry_seconds=5, wait_poll_seconds=1
        )
        self.sync_inventory()
        self.mirror()
        for i, node in enumerate(self.sim.list_nodes()):
            self.sim.add_pod(
                Pod(
                    "default",
                    f"web-{i}",
                    node=node.name,
                    cpu_m=250,
                    memory_mib=256,
                    owner_kind="ReplicaSet",
                    owner_name="web-5d8f",
                    labels={"app": "web"},
                )
            )
        add_demo_workloads(self.sim, db_replicas=1)

    def sync_inventory(self) -> None:
        sync_account_inventory(account=self.account, session=session_factory(self.cluster))

    def mirror(self) -> None:
        """The simulated cluster's nodes are the cluster's running instances (new ones join Ready)."""
        instances = {i["InstanceId"]: i for i in running_instances(self.cluster.name)}
        for node in self.sim.list_nodes():
            if node.provider_id.rsplit("/", 1)[-1] not in instances:
                with self.sim._lock:
                    del self.sim.nodes[node.name]
                    for key in [k for k, sp in self.sim._pods.items() if sp.pod.node == node.name]:
                        del self.sim._pods[key]
        known = {n.provider_id.rsplit("/", 1)[-1] for n in self.sim.list_nodes()}
        for iid, inst in instances.items():
            if iid in known:
                continue
            tags = {t["Key"]: t["Value"] for t in inst.get("Tags", [])}
            zone = inst["Placement"]["AvailabilityZone"]
            labels = {"node.kubernetes.io/instance-type": inst["InstanceType"]}
            if tags.get("eks:nodegroup-name"):
                labels["eks.amazonaws.com/nodegroup"] = tags["eks:nodegroup-name"]
            self.sim.add_node(
                Node(
                    name=inst.get("PrivateDnsName") or iid,
                    provider_id=f"aws:///{zone}/{iid}",
                    instance_type=inst["InstanceType"],
                    zone=zone,
                    capacity_type="on-demand",
                    labels=labels,
                    cpu_m=1930,
                    memory_mib=7244,
                    max_pods=29,
                )
            )

    def agent_round(self) -> int:
        """Mirror AWS, send a snapshot, then lease, execute and report every action. Returns actions executed."""
        self.mirror()
        snapshot_ingest(api_key=self.api_key, data=build_snapshot(self.sim))
        done = 0
        while True:
            leased = actions_lease(api_key=self.api_key, max_actions=20)
            if not leased:
                return done
            for action in leased:
                result = self.executor.execute(action.as_message())
                action_report_result(
                    api_key=self.api_key,
                    action_id=action.pk,
                    status=result.status,
                    message=result.message,
                    output=result.output,
                )
                done += 1

    def workload(self, kind: str, name: str):
        return self.sim.get_workload(kind, "default", name)
