"""Resizing EKS managed node groups and Auto Scaling groups for hibernation, with typed results, against moto."""

from __future__ import annotations

import boto3
import pytest

from cloud import AccountSession, autoscaling, eks, errors
from cloud.types import GroupSize

ROLE = "arn:aws:iam::123456789012:role/eks"


@pytest.fixture(scope="module")
def world(moto_module: None) -> None:
    client = boto3.client("eks", region_name="us-east-1")
    client.create_cluster(name="sleepy", roleArn=ROLE, resourcesVpcConfig={}, version="1.31")
    client.create_nodegroup(
        clusterName="sleepy",
        nodegroupName="general",
        nodeRole=ROLE,
        subnets=["subnet-1"],
        scalingConfig={"minSize": 2, "maxSize": 6, "desiredSize": 3},
    )
    ec2 = boto3.client("ec2", region_name="us-east-1")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName="lt-sleepy", LaunchTemplateData={"ImageId": ami})
    boto3.client("autoscaling", region_name="us-east-1").create_auto_scaling_group(
        AutoScalingGroupName="sleepy-workers",
        LaunchTemplate={"LaunchTemplateName": "lt-sleepy", "Version": "$Latest"},
        MinSize=1,
        MaxSize=5,
        DesiredCapacity=3,
        AvailabilityZones=["us-east-1a"],
    )


def test_node_group_to_zero_and_back(session: AccountSession, world: None) -> None:
    down = eks.resize_node_group(session, cluster_name="sleepy", name="general", min_size=0, max_size=0, desired_size=0)
    assert down.before == GroupSize(2, 6, 3)
    assert down.after == GroupSize(0, 1, 0)  # EKS needs a max of at least 1
    assert down.update_id
    group = eks.describe_node_group(session, cluster_name="sleepy", name="general")
    assert (group.min_size, group.max_size, group.desired_size) == (0, 1, 0)
    up = eks.resize_node_group(session, cluster_name="sleepy", name="general", min_size=2, max_size=6, desired_size=3)
    assert up.before == GroupSize(0, 1, 0) and up.after == GroupSize(2, 6, 3)
    again = eks.resize_node_group(
        session, cluster_name="sleepy", name="general", min_size=2, max_size=6, desired_size=3
    )
    assert again.update_id == ""  # already that size: no update made


def test_missing_node_group_is_not_found(session: AccountSession, world: None) -> None:
    with pytest.raises(errors.NotFound):
        eks.resize_node_group(session, cluster_name="sleepy", name="nope", min_size=0, max_size=1, desired_size=0)


def test_auto_scaling_group_to_zero_and_back(session: AccountSession, world: None) -> None:
    down = autoscaling.resize_group(session, name="sleepy-workers", min_size=0, max_size=5, desired_capacity=0)
    assert down.before == GroupSize(1, 5, 3) and down.after == GroupSize(0, 5, 0)
    (group,) = autoscaling.describe_auto_scaling_groups(session, names=["sleepy-workers"])
    assert (group.min_size, group.desired_capacity, len(group.instance_ids)) == (0, 0, 0)
    up = autoscaling.resize_group(session, name="sleepy-workers", min_size=1, max_size=5, desired_capacity=3)
    assert up.after == GroupSize(1, 5, 3)
    (group,) = autoscaling.describe_auto_scaling_groups(session, names=["sleepy-workers"])
    assert len(group.instance_ids) == 3


def test_missing_auto_scaling_group_is_not_found(session: AccountSession, world: None) -> None:
    with pytest.raises(errors.NotFound):
        autoscaling.resize_group(session, name="nope", min_size=0, max_size=0, desired_capacity=0)
