"""EKS and Auto Scaling functions against moto."""

from __future__ import annotations

import boto3
import pytest

from cloud import AccountSession, autoscaling, eks, errors

ROLE = "arn:aws:iam::123456789012:role/eks"


@pytest.fixture(scope="module")
def eks_world(moto_module: None) -> None:
    client = boto3.client("eks", region_name="us-east-1")
    for name in ("alpha", "beta"):
        client.create_cluster(name=name, roleArn=ROLE, resourcesVpcConfig={}, version="1.30", tags={"team": name})
    client.create_nodegroup(
        clusterName="alpha",
        nodegroupName="spot-workers",
        nodeRole=ROLE,
        subnets=["subnet-1"],
        capacityType="SPOT",
        instanceTypes=["m5.large", "m5a.large"],
        scalingConfig={"minSize": 1, "maxSize": 5, "desiredSize": 3},
    )


def test_list_and_describe_clusters(session: AccountSession, eks_world: None) -> None:
    assert sorted(eks.list_clusters(session)) == ["alpha", "beta"]
    alpha = eks.describe_cluster(session, name="alpha")
    assert alpha.version == "1.30"
    assert alpha.status == "ACTIVE"
    assert alpha.tags == {"team": "alpha"}


def test_describe_missing_cluster_is_not_found(session: AccountSession, eks_world: None) -> None:
    with pytest.raises(errors.NotFound):
        eks.describe_cluster(session, name="gone")


def test_node_groups_and_scaling(session: AccountSession, eks_world: None) -> None:
    (group,) = eks.describe_node_groups(session, cluster_name="alpha")
    assert group.capacity_type == "SPOT"
    assert group.instance_types == ("m5.large", "m5a.large")
    assert (group.min_size, group.max_size, group.desired_size) == (1, 5, 3)
    assert group.autoscaling_groups
    eks.update_node_group_scaling(session, cluster_name="alpha", name="spot-workers", desired_size=0, min_size=0)
    group = eks.describe_node_group(session, cluster_name="alpha", name="spot-workers")
    assert (group.min_size, group.desired_size) == (0, 0)


def test_auto_scaling_groups(session: AccountSession) -> None:
    ec2 = boto3.client("ec2", region_name="us-east-1")
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    ec2.create_launch_template(
        LaunchTemplateName="asg-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": "t3.small"}
    )
    boto3.client("autoscaling", region_name="us-east-1").create_auto_scaling_group(
        AutoScalingGroupName="workers",
        LaunchTemplate={"LaunchTemplateName": "asg-lt", "Version": "$Latest"},
        MinSize=0,
        MaxSize=4,
        DesiredCapacity=2,
        AvailabilityZones=["us-east-1a"],
        Tags=[{"Key": "kubernetes.io/cluster/prod", "Value": "owned", "PropagateAtLaunch": True}],
    )
    (group,) = autoscaling.describe_auto_scaling_groups(session, names=["workers"])
    assert group.desired_capacity == 2 and len(group.instance_ids) == 2
    assert group.launch_template_name == "asg-lt"
    assert group.tags["kubernetes.io/cluster/prod"] == "owned"

    autoscaling.detach_instances(session, name="workers", instance_ids=group.instance_ids[:1])
    (group,) = autoscaling.describe_auto_scaling_groups(session, names=["workers"])
    assert group.desired_capacity == 1 and len(group.instance_ids) == 1

    autoscaling.set_desired_capacity(session, name="workers", desired_capacity=3)
    assert autoscaling.describe_auto_scaling_groups(session)[0].desired_capacity == 3
