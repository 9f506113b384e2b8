"""moto fixtures for the Django tests (import the ones a module uses).

``aws`` gives each test a fresh in-process moto backend with fake credentials and no endpoint override.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cloud import AccountSession, AwsCredentials, RetryPolicy

ROLE_ACCOUNT = "111122223333"
ROLE_ARN = f"arn:aws:iam::{ROLE_ACCOUNT}:role/SpotOptimizer"
NO_SLEEP = RetryPolicy(attempts=4, sleep=lambda _: None)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, settings) -> Iterator[None]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Everything (the estate the tests build and what the assumed role sees) lives in the role's account.
        "MOTO_ACCOUNT_ID": ROLE_ACCOUNT,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    settings.AWS_ENDPOINT_URL = ""
    with mock_aws():
        yield


#: Any AMI id works for moto's RunInstances; looking one up with DescribeImages costs seconds.
AMI = "ami-12c6146b"


def launch(
    region: str,
    *,
    cluster: str | None,
    count: int = 1,
    spot: bool = False,
    instance_type: str = "m5.large",
    zone: str | None = None,
    extra_tags: dict[str, str] | None = None,
) -> list[str]:
    """Start instances in moto tagged as nodes of ``cluster``."""
    tags = dict(extra_tags or {})
    if cluster:
        tags[f"kubernetes.io/cluster/{cluster}"] = "owned"
    params: dict[str, Any] = {
        "ImageId": AMI,
        "MinCount": count,
        "MaxCount": count,
        "InstanceType": instance_type,
        "Placement": {"AvailabilityZone": zone or f"{region}a"},
    }
    if tags:
        params["TagSpecifications"] = [
            {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    if spot:
        params["InstanceMarketOptions"] = {"MarketType": "spot"}
    response = boto3.client("ec2", region_name=region).run_instances(**params)
    return [i["InstanceId"] for i in response["Instances"]]


def create_eks_cluster(region: str, name: str, *, node_group: str | None = None) -> None:
    client = boto3.client("eks", region_name=region)
    role = f"arn:aws:iam::{ROLE_ACCOUNT}:role/eks"
    client.create_cluster(name=name, roleArn=role, resourcesVpcConfig={}, version="1.31")
    if node_group:
        client.create_nodegroup(
            clusterName=name,
            nodegroupName=node_group,
            nodeRole=role,
            subnets=["subnet-1"],
            capacityType="SPOT",
            instanceTypes=["m5.large"],
            scalingConfig={"minSize": 1, "maxSize": 4, "desiredSize": 2},
        )


def role_session(external_id: str = "ext", region: str = "us-east-1") -> AccountSession:
    return AccountSession.open(
        AwsCredentials(role_arn=ROLE_ARN, external_id=external_id), region=region, endpoint_url="", retry=NO_SLEEP
    )
