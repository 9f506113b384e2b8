"""Interruption tests: a simulated AWS (moto's server) with one interruption queue per linked account and region,
reached through each account's role (moto keeps each assumed account apart), and the EventBridge rules of the
regional template delivering EC2 events to the queue."""

from __future__ import annotations

import copy
import json
import pathlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from django.utils import timezone

from accounts.models import CloudAccount
from agentapi.models import KubeNode
from clusters.models import Cluster, ClusterPolicy, Instance
from templates_app.models import NodeTemplate
from tests.factories import ClusterFactory, InstanceFactory
from tests.optimization.conftest import aws_server, simulated_aws  # noqa: F401 - the simulated AWS fixtures
from tests.templates_app.conftest import catalog  # noqa: F401 - the small exact-price catalog fixture

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
QUEUE = "spotopt-interruptions"
AMI = "ami-12c6146b"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def event(
    name: str,
    *,
    instance_id: str,
    account: str,
    region: str,
    at: datetime | None = None,
    event_id: str | None = None,
    **detail,
) -> dict:
    """A fixture's real event shape for another instance, account, region and time."""
    body = copy.deepcopy(fixture(name))
    body["id"] = event_id or str(uuid.uuid4())
    body["account"] = account
    body["region"] = region
    body["time"] = (at or timezone.now()).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if body["detail-type"] == "AWS Health Event":
        body["resources"] = [instance_id]
        body["detail"]["affectedEntities"] = [{"entityValue": instance_id}]
    else:
        body["resources"] = [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"]
        body["detail"]["instance-id"] = instance_id
    body["detail"].update(detail)
    return body


@dataclass
class AwsAccount:
    """One AWS account of the simulated world, as the account's own role sees it."""

    aws_id: str
    endpoint: str

    def _credentials(self) -> dict:
        sts = boto3.client("sts", region_name="us-east-1", endpoint_url=self.endpoint)
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{self.aws_id}:role/SpotOptimizer", RoleSessionName="tests")[
            "Credentials"
        ]
        return {
            "aws_access_key_id": c["AccessKeyId"],
            "aws_secret_access_key": c["SecretAccessKey"],
            "aws_session_token": c["SessionToken"],
        }

    def client(self, service: str, region: str):
        return boto3.client(service, region_name=region, endpoint_url=self.endpoint, **self._credentials())

    def create_queue(self, region: str, *, visibility_timeout: int = 30) -> str:
        return self.client("sqs", region).create_queue(
            QueueName=QUEUE, Attributes={"VisibilityTimeout": str(visibility_timeout)}
        )["QueueUrl"]

    def queue_url(self, region: str) -> str:
        return self.client("sqs", region).get_queue_url(QueueName=QUEUE)["QueueUrl"]

    def put(self, region: str, *bodies: dict) -> None:
        sqs = self.client("sqs", region)
        url = self.queue_url(region)
        for body in bodies:
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))

    def waiting(self, region: str) -> int:
        """Messages on the queue, visible or in flight."""
        attrs = self.client("sqs", region).get_queue_attributes(
            QueueUrl=self.queue_url(region),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def link(org, aws: AwsAccount, regions: list[str], name: str | None = None) -> CloudAccount:
    return CloudAccount.objects.create(
        organization=org,
        name=name or f"aws-{aws.aws_id}",
        role_arn=f"arn:aws:iam::{aws.aws_id}:role/SpotOptimizer",
        external_id="ext",
        aws_account_id=aws.aws_id,
        regions=regions,
        status=CloudAccount.Status.ACTIVE,
    )


def spot_node(cluster: Cluster, instance_id: str, *, zone: str = "us-east-1a", itype: str = "m5.large", **kw):
    return InstanceFactory(
        cluster=cluster,
        instance_id=instance_id,
        instance_type=itype,
        zone=zone,
        lifecycle=Instance.Lifecycle.SPOT,
        state="running",
        launch_time=timezone.now() - timedelta(hours=5),
        **kw,
    )


@pytest.fixture
def aws(aws_server, monkeypatch):  # noqa: F811
    """A factory of simulated AWS accounts (each reached through its own role: moto keeps assumed accounts apart
    unless one account is forced for everything)."""
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    return lambda aws_id: AwsAccount(aws_id=aws_id, endpoint=aws_server.endpoint)


def launch_estate(aws: AwsAccount, region: str = "us-east-1") -> dict:
    """A VPC with a subnet in us-east-1a and us-east-1b and a launch template: what a replacement launch needs."""
    ec2 = aws.client("ec2", region)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {
        zone: ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i + 1}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
        for i, zone in enumerate(("us-east-1a", "us-east-1b"))
    }
    template = ec2.create_launch_template(
        LaunchTemplateName="nodes", LaunchTemplateData={"ImageId": AMI, "InstanceType": "m5.large"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    return {"launch_template_id": template, "launch_template_version": "$Latest", "subnets": subnets}


def replaceable_cluster(org, account: CloudAccount, estate: dict, *, on_rebalance: str = "cordon") -> Cluster:
    """A cluster the platform launches nodes for: launch configuration, a spot m5 template with fallback, a policy."""
    cluster = ClusterFactory(organization=org, cloud_account=account, region="us-east-1", name="shop")
    cluster.launch_config = estate
    cluster.save(update_fields=["launch_config"])
    NodeTemplate.objects.create(
        organization=org,
        name="spot m5",
        architectures=["x86_64"],
        instance_families={"include": ["m5*"], "exclude": []},
        capacity_types=["spot"],
        spot_fallback=True,
        strategy="lowest-price",
        is_default=True,
    )
    ClusterPolicy.objects.create(cluster=cluster, on_rebalance=on_rebalance, uncordon_after_minutes=30)
    return cluster


def kube_node(cluster: Cluster, instance: Instance, name: str | None = None):
    return KubeNode.objects.create(
        cluster=cluster,
        name=name or f"node-{instance.instance_id}",
        ec2_instance_id=instance.instance_id,
        instance=instance,
        instance_type=instance.instance_type,
        zone=instance.zone,
        capacity_type=instance.lifecycle,
        ready=True,
    )
