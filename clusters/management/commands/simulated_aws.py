"""``manage.py simulated_aws``: the embedded default's AWS — moto's server with a small demo estate, linked to the
demo organization.

It starts moto's server in this process, builds an EKS cluster (with a managed node group) and a self-managed,
tag-discovered cluster with a mix of spot and on-demand instances, links "Demo AWS (simulated)" to the demo
organization through the same services as the console (create, validate, sync), and then serves until SIGTERM.
The other processes reach it through ``AWS_ENDPOINT_URL`` (``make run`` sets it).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import boto3
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from moto.server import ThreadedMotoServer

from accounts import services as account_services
from accounts.models import CloudAccount, User
from clusters import services as cluster_services

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
    _client("ec2", region, endpoint).run_instances(**params)


def build_estate(endpoint: str) -> None:
    """An EKS cluster in us-east-1 and a self-managed one in eu-west-1, each with spot and on-demand nodes."""
    eks = _client("eks", "us-east-1", endpoint)
    role = f"arn:aws:iam::{SIMULATED_ACCOUNT_ID}:role/eks-cluster"
    eks.create_cluster(name="shop-prod", roleArn=role, resourcesVpcConfig={}, version="1.31")
    eks.create_nodegroup(
        clusterName="shop-prod",
        nodegroupName="general",
        nodeRole=role,
        subnets=["subnet-demo"],
        capacityType="ON_DEMAND",
        instanceTypes=["m5.xlarge"],
        scalingConfig={"minSize": 1, "maxSize": 6, "desiredSize": 2},
    )
    group = {"eks:nodegroup-name": "general", "eks:cluster-name": "shop-prod"}
    _launch(endpoint, "us-east-1", "us-east-1a", "shop-prod", "m5.xlarge", 2, False, **group)
    _launch(endpoint, "us-east-1", "us-east-1b", "shop-prod", "m5.large", 3, True)
    _launch(endpoint, "eu-west-1", "eu-west-1a", "analytics", "c5.xlarge", 2, False)
    _launch(endpoint, "eu-west-1", "eu-west-1b", "analytics", "c5.xlarge", 1, True)


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
        for cluster in eks.list_clusters().get("clusters", []):
            for name in eks.list_nodegroups(clusterName=cluster).get("nodegroups", []):
                group = eks.describe_nodegroup(clusterName=cluster, nodegroupName=name)["nodegroup"]
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
            "--reconcile-seconds",
            type=float,
            default=5.0,
            help="How often EKS node groups' instances are made to match their desired sizes (0: never).",
        )

    def handle(self, *args, host: str, port: int, demo_email: str, once: bool, **options) -> None:
        reconcile_seconds = float(options.get("reconcile_seconds") or 0)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per AWS call is noise here
        server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        server.start()
        bound_host, bound_port = server.get_host_and_port()
        endpoint = f"http://{bound_host}:{bound_port}"
        settings.AWS_ENDPOINT_URL = endpoint  # this process's own calls go to the server it runs
        self.stdout.write(f"Simulated AWS (moto) at {endpoint}")
        try:
            build_estate(endpoint)
            self._link(demo_email)
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

    def _link(self, demo_email: str) -> None:
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
