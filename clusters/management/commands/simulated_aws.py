"""``manage.py simulated_aws``: the embedded default's AWS — moto's server with a small demo estate, linked to the
demo organization.

It starts moto's server in this process, builds an EKS cluster (with a managed node group) and a self-managed,
tag-discovered cluster with a mix of spot and on-demand instances, links "Demo AWS (simulated)" to the demo
organization through the same services as the console (create, validate, sync), and then serves until SIGTERM.
The other processes reach it through ``AWS_ENDPOINT_URL`` (``make run`` sets it).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import threading
from typing import Any

import boto3
import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from accounts import services as account_services
from accounts.models import CloudAccount, User
from cloud.events import RULES as INTERRUPTION_RULES
from clusters import policy_services
from clusters import services as cluster_services
from clusters.models import Cluster
from spotopt.simulated_aws import CONTROL_PATH, SimulatedAws

DEMO_ACCOUNT_NAME = "Demo AWS (simulated)"
#: moto's default account: the estate and the assumed role live in it.
SIMULATED_ACCOUNT_ID = "123456789012"
ROLE_ARN = f"arn:aws:iam::{SIMULATED_ACCOUNT_ID}:role/SpotOptimizer"
AMI = "ami-12c6146b"
FAKE_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def _client(service: str, region: str, endpoint: str) -> Any:
    return boto3.client(service, region_name=region, endpoint_url=endpoint, **FAKE_CREDENTIALS)


def _launch(endpoint: str, region: str, zone: str, cluster: str, instance_type: str, count: int, spot: bool, **tags):
    all_tags = {f"kubernetes.io/cluster/{cluster}": "owned", **tags}
    params: dict[str, Any] = {
        "ImageId": AMI,
        "MinCount": count,
        "MaxCount": count,
        "InstanceType": instance_type,
        "Placement": {"AvailabilityZone": zone},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in all_tags.items()]}
        ],
    }
    if spot:
        params["InstanceMarketOptions"] = {"MarketType": "spot"}
    subnets = _client("ec2", region, endpoint).describe_subnets(
        Filters=[{"Name": "availability-zone", "Values": [zone]}]
    )["Subnets"]
    if subnets:
        params["SubnetId"] = subnets[0]["SubnetId"]
    _client("ec2", region, endpoint).run_instances(**params)


def _network(endpoint: str, region: str, zones: tuple[str, ...]) -> dict[str, str]:
    """A VPC with one subnet per zone: zone -> subnet id."""
    ec2 = _client("ec2", region, endpoint)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return {
        zone: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(zones)
    }


def _node_group(
    endpoint: str,
    region: str,
    cluster: str,
    name: str,
    instance_type: str,
    size: int,
    subnets: dict[str, str],
    *,
    asg_name: str = "",
    min_size: int = 0,
    max_size: int = 20,
    **tags: str,
) -> str:
    """A launch template and an Auto Scaling group (``asg_name``, by default ``<cluster>-<name>``) of ``size``
    on-demand nodes tagged for ``cluster``: what the platform's jobs launch from (discovery reads the template and
    subnets from the group)."""
    ec2 = _client("ec2", region, endpoint)
    template = ec2.create_launch_template(
        LaunchTemplateName=f"{cluster}-{name}", LaunchTemplateData={"ImageId": AMI, "InstanceType": instance_type}
    )["LaunchTemplate"]["LaunchTemplateId"]
    all_tags = {f"kubernetes.io/cluster/{cluster}": "owned", **tags}
    asg_name = asg_name or f"{cluster}-{name}"
    _client("autoscaling", region, endpoint).create_auto_scaling_group(
        AutoScalingGroupName=asg_name,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
        MinSize=min_size,
        MaxSize=max_size,
        DesiredCapacity=size,
        VPCZoneIdentifier=",".join(subnets.values()),
        Tags=[
            {
                "Key": k,
                "Value": v,
                "PropagateAtLaunch": True,
                "ResourceId": asg_name,
                "ResourceType": "auto-scaling-group",
            }
            for k, v in all_tags.items()
        ],
    )
    return template


def build_estate(endpoint: str) -> None:
    """An EKS cluster in us-east-1 and a self-managed one in eu-west-1, each with real subnets, a launch template and
    an Auto Scaling group of on-demand nodes, plus a few spot nodes."""
    eks = _client("eks", "us-east-1", endpoint)
    role = f"arn:aws:iam::{SIMULATED_ACCOUNT_ID}:role/eks-cluster"
    east = _network(endpoint, "us-east-1", ("us-east-1a", "us-east-1b", "us-east-1c"))
    eks.create_cluster(
        name="shop-prod", roleArn=role, resourcesVpcConfig={"subnetIds": list(east.values())}, version="1.31"
    )
    node_group = eks.create_nodegroup(
        clusterName="shop-prod",
        nodegroupName="general",
        nodeRole=role,
        subnets=list(east.values()),
        capacityType="ON_DEMAND",
        instanceTypes=["m5.xlarge"],
        scalingConfig={"minSize": 1, "maxSize": 6, "desiredSize": 2},
    )["nodegroup"]
    # As EKS makes it: the node group's nodes belong to the Auto Scaling group it names (moto's EKS names one and
    # does not create it), so that a job can detach them from it.
    _node_group(
        endpoint,
        "us-east-1",
        "shop-prod",
        "general",
        "m5.xlarge",
        2,
        {"us-east-1a": east["us-east-1a"]},
        asg_name=node_group["resources"]["autoScalingGroups"][0]["name"],
        min_size=1,
        max_size=6,
        **{"eks:nodegroup-name": "general", "eks:cluster-name": "shop-prod"},
    )
    # Self-managed workers beside the managed node group: what the demo's optimization job replaces.
    _node_group(endpoint, "us-east-1", "shop-prod", "workers", "m5.xlarge", 3, {"us-east-1a": east["us-east-1a"]})
    _launch(endpoint, "us-east-1", "us-east-1b", "shop-prod", "m5.large", 2, True)
    west = _network(endpoint, "eu-west-1", ("eu-west-1a", "eu-west-1b"))
    _node_group(endpoint, "eu-west-1", "analytics", "workers", "c5.xlarge", 2, west)
    _launch(endpoint, "eu-west-1", "eu-west-1b", "analytics", "c5.xlarge", 1, True)
    for region in ("us-east-1", "eu-west-1"):
        _interruption_queue(endpoint, region)


def _interruption_queue(endpoint: str, region: str) -> None:
    """What the regional template creates: the interruption queue and the EventBridge rules that fill it."""
    sqs = _client("sqs", region, endpoint)
    url = sqs.create_queue(QueueName=settings.INTERRUPTION_QUEUE_NAME, Attributes={"MessageRetentionPeriod": "300"})
    arn = sqs.get_queue_attributes(QueueUrl=url["QueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = _client("events", region, endpoint)
    for suffix, pattern in INTERRUPTION_RULES.items():
        bus.put_rule(Name=f"spotopt-{suffix}", EventPattern=json.dumps(pattern))
        bus.put_targets(Rule=f"spotopt-{suffix}", Targets=[{"Id": "interruption-queue", "Arn": arn}])


def _pool(value: str) -> tuple[str, str, str]:
    parts = value.split(":")
    if len(parts) != 3 or parts[2] not in ("spot", "on-demand"):
        raise argparse.ArgumentTypeError("TYPE:ZONE:spot|on-demand, e.g. m5.large:us-east-1a:spot")
    return parts[0], parts[1], parts[2]


ACTIVE_STATES = ("pending", "running")


def reconcile_node_groups(make_client: Any, regions: list[str] | tuple[str, ...]) -> dict[str, int]:
    """Make each EKS managed node group's running instances match its desired size, as EKS would: moto's EKS only
    changes the numbers of a node group. Missing nodes are launched (tagged for the cluster and the group, spot when
    the group is), surplus ones terminated, newest first. ``make_client(service, region)`` gives boto3 clients.
    Returns the number of instances launched (+) or terminated (-) per ``cluster/group``."""
    changes: dict[str, int] = {}
    for region in regions:
        eks = make_client("eks", region)
        ec2 = make_client("ec2", region)
        autoscaling = make_client("autoscaling", region)
        for cluster in eks.list_clusters().get("clusters", []):
            for name in eks.list_nodegroups(clusterName=cluster).get("nodegroups", []):
                group = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
                if _sync_with_auto_scaling_group(eks, autoscaling, cluster, name, group):
                    continue  # the group's Auto Scaling group launches and terminates its instances
                desired = int((group.get("scalingConfig") or {}).get("desiredSize", 0))
                reservations = ec2.describe_instances(
                    Filters=[
                        {"Name": "tag:eks:nodegroup-name", "Values": [name]},
                        {"Name": "tag:eks:cluster-name", "Values": [cluster]},
                        {"Name": "instance-state-name", "Values": list(ACTIVE_STATES)},
                    ]
                )["Reservations"]
                running = sorted(
                    (i for r in reservations for i in r["Instances"]), key=lambda i: (i["LaunchTime"], i["InstanceId"])
                )
                if len(running) < desired:
                    types = group.get("instanceTypes") or ["m5.large"]
                    spot = group.get("capacityType") == "SPOT"
                    for k in range(desired - len(running)):
                        zone = f"{region}{'abc'[(len(running) + k) % 3]}"
                        _launch_in(ec2, zone, cluster, types[0], 1, spot, name)
                    changes[f"{cluster}/{name}"] = desired - len(running)
                elif len(running) > desired:
                    surplus = [i["InstanceId"] for i in running[desired:]]
                    ec2.terminate_instances(InstanceIds=surplus)
                    changes[f"{cluster}/{name}"] = -len(surplus)
    return changes


SYNCED_TAG = "spotopt-simulated:synced-size"


def _sync_with_auto_scaling_group(eks: Any, autoscaling: Any, cluster: str, name: str, group: dict) -> bool:
    """For a node group whose Auto Scaling group exists (as EKS has it), keep the two sizes as one, as EKS does:
    a change of the node group (``UpdateNodegroupConfig``, e.g. hibernation) goes to the Auto Scaling group, which
    launches or terminates; a change of the Auto Scaling group (a detach with decrement) goes to the node group. The
    size they last agreed on is kept in a tag of the Auto Scaling group. False when the group has none."""
    names = [g["name"] for g in (group.get("resources") or {}).get("autoScalingGroups") or [] if g.get("name")]
    found = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"] if names else []
    if not found:
        return False
    asg = found[0]
    config = group.get("scalingConfig") or {}
    node_group_size = (int(config.get("minSize", 0)), int(config.get("maxSize", 1)), int(config.get("desiredSize", 0)))
    asg_size = (int(asg["MinSize"]), int(asg["MaxSize"]), int(asg["DesiredCapacity"]))
    synced = next((t["Value"] for t in asg.get("Tags", []) if t["Key"] == SYNCED_TAG), "")
    last = tuple(int(v) for v in synced.split(",")) if synced else None
    if node_group_size != asg_size:
        if last is None or node_group_size != last:
            autoscaling.update_auto_scaling_group(
                AutoScalingGroupName=asg["AutoScalingGroupName"],
                MinSize=node_group_size[0],
                MaxSize=node_group_size[1],
                DesiredCapacity=node_group_size[2],
            )
            size = node_group_size
        else:
            eks.update_nodegroup_config(
                clusterName=cluster,
                nodegroupName=name,
                scalingConfig={"minSize": asg_size[0], "maxSize": asg_size[1], "desiredSize": asg_size[2]},
            )
            size = asg_size
    else:
        size = asg_size
    if last != size:
        autoscaling.create_or_update_tags(
            Tags=[
                {
                    "ResourceId": asg["AutoScalingGroupName"],
                    "ResourceType": "auto-scaling-group",
                    "Key": SYNCED_TAG,
                    "Value": ",".join(str(v) for v in size),
                    "PropagateAtLaunch": False,
                }
            ]
        )
    return True


def _launch_in(ec2: Any, zone: str, cluster: str, instance_type: str, count: int, spot: bool, group: str) -> None:
    tags = {f"kubernetes.io/cluster/{cluster}": "owned", "eks:cluster-name": cluster, "eks:nodegroup-name": group}
    params: dict[str, Any] = {
        "ImageId": AMI,
        "MinCount": count,
        "MaxCount": count,
        "InstanceType": instance_type,
        "Placement": {"AvailabilityZone": zone},
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}],
    }
    if spot:
        params["InstanceMarketOptions"] = {"MarketType": "spot"}
    ec2.run_instances(**params)


class Command(BaseCommand):
    help = "Run moto's server as the simulated AWS of the embedded default, with a demo estate linked to the demo org."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=5055)
        parser.add_argument(
            "--demo-email", default="demo@spotoptimizer.com", help="Link the estate to this user's org."
        )
        parser.add_argument("--once", action="store_true", help="Build, link and sync, then stop (for checks).")
        parser.add_argument(
            "--unavailable",
            type=_pool,
            action="append",
            default=[],
            metavar="TYPE:ZONE:CAPACITY",
            help="a pool that answers InsufficientInstanceCapacity (repeatable); change it later with "
            "PUT <endpoint>/_spotopt/capacity",
        )
        parser.add_argument(
            "--set-unavailable",
            metavar="ENDPOINT",
            help="instead of serving: set the unavailable pools (--unavailable, none to clear) of a running one",
        )
        parser.add_argument("--no-auto-optimize", action="store_true", help="leave the demo cluster's policy alone")
        parser.add_argument(
            "--reconcile-seconds",
            type=float,
            default=5.0,
            help="How often EKS node groups' instances are made to match their desired sizes (0: never).",
        )

    def handle(self, *args, host: str, port: int, demo_email: str, once: bool, **options) -> None:
        reconcile_seconds = float(options.get("reconcile_seconds") or 0)
        pools = [{"instance_type": t, "zone": z, "capacity_type": c} for t, z, c in options["unavailable"]]
        if options["set_unavailable"]:
            url = options["set_unavailable"].rstrip("/") + CONTROL_PATH
            response = requests.put(url, json={"unavailable": pools}, timeout=10)
            response.raise_for_status()
            self.stdout.write(f"Unavailable pools now: {response.json()['unavailable']}")
            return
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per AWS call is noise here
        server = SimulatedAws(ip_address=host, port=port, unavailable=options["unavailable"])
        server.start()
        bound_host, bound_port = server.get_host_and_port()
        endpoint = f"http://{bound_host}:{bound_port}"
        settings.AWS_ENDPOINT_URL = endpoint  # this process's own calls go to the server it runs
        self.stdout.write(f"Simulated AWS (moto) at {endpoint}")
        try:
            build_estate(endpoint)
            self._link(demo_email, auto_optimize=not options["no_auto_optimize"])
            if once:
                return
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            signal.signal(signal.SIGINT, lambda *_: stop.set())
            while not stop.wait(reconcile_seconds or None):
                try:
                    reconcile_node_groups(
                        lambda service, region: _client(service, region, endpoint), ("us-east-1", "eu-west-1")
                    )
                except Exception:  # the simulated AWS keeps serving whatever one pass hit
                    logging.getLogger(__name__).exception("node group reconciliation failed")
        finally:
            server.stop()

    def _link(self, demo_email: str, *, auto_optimize: bool = True) -> None:
        user = User.objects.filter(email=demo_email).select_related("organization").first()
        if user is None or user.organization is None:
            self.stdout.write(f"No user {demo_email}: the estate is not linked to any organization.")
            return
        account = CloudAccount.objects.filter(organization=user.organization, name=DEMO_ACCOUNT_NAME).first()
        if account is None:
            account = account_services.cloud_account_create(
                organization=user.organization,
                name=DEMO_ACCOUNT_NAME,
                role_arn=ROLE_ARN,
                regions=["us-east-1", "eu-west-1"],
                actor="system:simulated-aws",
            )
        account = account_services.cloud_account_validate(account=account, actor="system:simulated-aws")
        report = cluster_services.account_sync(account=account)
        found = len(report.discovery.found) if report.discovery else 0
        self.stdout.write(f"Linked {account.name} to {user.organization.name}: {found} clusters discovered.")
        demo = Cluster.objects.filter(cloud_account=account, name="shop-prod").first()
        if demo is not None and auto_optimize:
            # The demo shows a job converting this cluster to spot by itself.
            policy_services.policy_update(
                cluster=demo,
                data={
                    "optimization_enabled": True,
                    "mode": "automatic",
                    "consolidate_after": "1m",
                    "disruption_budgets": [{"nodes": "3"}],
                    "on_demand_base": 0.0,
                    "max_pool_share": 1.0,
                },
                actor="system:simulated-aws",
            )
            self.stdout.write("Demo cluster shop-prod: optimization on, automatic mode.")
