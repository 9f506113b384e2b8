"""EC2 functions against moto: instances (paginated, spot vs on-demand, cluster tags), types, offerings, prices."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from cloud import AccountSession, AwsCredentials, ec2, errors
from cloud.types import LaunchOverride


@pytest.fixture(scope="module")
def world(moto_module: None) -> dict[str, Any]:
    """Seven instances in us-east-1: 3 spot + 2 on-demand of cluster "prod", 1 of "dev", 1 untagged."""
    client = boto3.client("ec2", region_name="us-east-1")
    ami = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]

    def launch(count: int, tags: dict[str, str], spot: bool = False, instance_type: str = "m5.large") -> list[str]:
        params: dict[str, Any] = {
            "ImageId": ami,
            "MinCount": count,
            "MaxCount": count,
            "InstanceType": instance_type,
            "Placement": {"AvailabilityZone": "us-east-1b"},
        }
        if tags:
            params["TagSpecifications"] = [
                {"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
            ]
        if spot:
            params["InstanceMarketOptions"] = {"MarketType": "spot"}
        return [i["InstanceId"] for i in client.run_instances(**params)["Instances"]]

    prod = {"kubernetes.io/cluster/prod": "owned", "aws:autoscaling:groupName": "prod-workers"}
    return {
        "ami": ami,
        "prod_spot": launch(3, prod, spot=True),
        "prod_od": launch(2, prod, instance_type="c5.xlarge"),
        "dev": launch(1, {"kubernetes.io/cluster/dev": "shared"}),
        "other": launch(1, {}),
    }


def test_describe_instances_follows_pages(session: AccountSession, world: dict[str, Any]) -> None:
    instances = ec2.describe_instances(session, page_size=5)
    assert len(instances) == 7


def test_describe_instances_by_ids(session: AccountSession, world: dict[str, Any]) -> None:
    found = ec2.describe_instances(session, instance_ids=world["prod_od"])
    assert {i.instance_id for i in found} == set(world["prod_od"])


def test_cluster_instances_by_tag_with_lifecycle(session: AccountSession, world: dict[str, Any]) -> None:
    prod = {i.instance_id: i for i in ec2.describe_cluster_instances(session, cluster_name="prod")}
    assert set(prod) == set(world["prod_spot"]) | set(world["prod_od"])
    assert {prod[i].lifecycle for i in world["prod_spot"]} == {"spot"}
    assert {prod[i].lifecycle for i in world["prod_od"]} == {"on-demand"}
    one = prod[world["prod_od"][0]]
    assert one.instance_type == "c5.xlarge"
    assert one.zone == "us-east-1b"
    assert one.state == "running"
    assert one.launch_time is not None and one.launch_time.utcoffset().total_seconds() == 0
    assert one.private_dns_name.endswith(".internal")
    assert one.asg_name == "prod-workers"
    assert one.cluster_names == ("prod",)


def test_all_cluster_instances_by_tag_prefix(session: AccountSession, world: dict[str, Any]) -> None:
    tagged = ec2.describe_cluster_instances(session)
    names = {n for i in tagged for n in i.cluster_names}
    assert names == {"prod", "dev"}
    assert world["other"][0] not in {i.instance_id for i in tagged}


def test_create_tags_and_terminate(session: AccountSession, world: dict[str, Any]) -> None:
    target = world["other"]
    ec2.create_tags(session, resource_ids=target, tags={"spot-optimizer/managed": "true"})
    assert ec2.describe_instances(session, instance_ids=target)[0].tags["spot-optimizer/managed"] == "true"
    changes = ec2.terminate_instances(session, instance_ids=target)
    assert changes[0].instance_id == target[0]
    assert changes[0].current_state in ("shutting-down", "terminated")


def test_terminate_unknown_instance_is_not_found(session: AccountSession, world: dict[str, Any]) -> None:
    with pytest.raises(errors.NotFound):
        ec2.terminate_instances(session, instance_ids=["i-0123456789abcdef0"])


def test_run_spot_instances(session: AccountSession, world: dict[str, Any]) -> None:
    result = ec2.run_instances(
        session, instance_type="t3.small", image_id=world["ami"], zone="us-east-1a", spot=True, tags={"a": "b"}
    )
    launched = ec2.describe_instances(session, instance_ids=result.instance_ids)
    assert launched[0].lifecycle == "spot"
    assert launched[0].zone == "us-east-1a"
    ec2.terminate_instances(session, instance_ids=result.instance_ids)


def test_create_instant_fleet(session: AccountSession, world: dict[str, Any]) -> None:
    client = session.client("ec2")
    template = client.create_launch_template(
        LaunchTemplateName="fleet-lt", LaunchTemplateData={"ImageId": world["ami"]}
    )
    result = ec2.create_fleet(
        session,
        launch_template_id=template["LaunchTemplate"]["LaunchTemplateId"],
        overrides=[LaunchOverride(instance_type="m5.large", zone="us-east-1a")],
        target_capacity=2,
        capacity_type="spot",
    )
    assert len(result.instance_ids) == 2
    assert result.fleet_id.startswith("fleet-")
    ec2.terminate_instances(session, instance_ids=result.instance_ids)


def test_fleet_capacity_errors_are_reported() -> None:
    session = AccountSession.open(AwsCredentials(), endpoint_url="")
    client = session.client("ec2")
    with Stubber(client) as stub:
        stub.add_response(
            "create_fleet",
            {
                "FleetId": "fleet-1",
                "Instances": [{"InstanceIds": ["i-1"], "Lifecycle": "spot"}],
                "Errors": [
                    {
                        "ErrorCode": "InsufficientInstanceCapacity",
                        "ErrorMessage": "no capacity",
                        "Lifecycle": "spot",
                        "LaunchTemplateAndOverrides": {
                            "Overrides": {"InstanceType": "m5.large", "AvailabilityZone": "us-east-1c"}
                        },
                    }
                ],
            },
        )
        result = ec2.create_fleet(
            session, launch_template_id="lt-1", overrides=[LaunchOverride(instance_type="m5.large")], target_capacity=2
        )
    assert result.instance_ids == ("i-1",)
    assert result.errors[0].code == "InsufficientInstanceCapacity"
    assert result.errors[0].zone == "us-east-1c"


def test_describe_regions(session: AccountSession) -> None:
    names = [r.name for r in ec2.describe_regions(session)]
    assert "us-east-1" in names and "eu-west-1" in names
    assert names == sorted(names)


def test_describe_instance_types_with_eni_max_pods(session: AccountSession) -> None:
    (m5,) = ec2.describe_instance_types(session, instance_types=["m5.large"])
    assert (m5.vcpu, m5.memory_mib, m5.arch) == (2, 8192, "x86_64")
    assert m5.max_pods == 29  # EKS's published value for m5.large: 3 ENIs * (10 - 1) + 2
    (graviton,) = ec2.describe_instance_types(session, instance_types=["m6g.large"])
    assert graviton.arch == "arm64"


def test_unknown_instance_type_is_invalid(session: AccountSession) -> None:
    with pytest.raises(errors.CloudError):
        ec2.describe_instance_types(session, instance_types=["zz9.huge"])


def test_instance_type_offerings_per_zone(session: AccountSession) -> None:
    offerings = ec2.describe_instance_type_offerings(session, instance_types=["m5.large"])
    zones = {o.location for o in offerings}
    assert "us-east-1a" in zones
    assert {o.instance_type for o in offerings} == {"m5.large"}


def test_spot_price_history(session: AccountSession) -> None:
    prices = ec2.describe_spot_price_history(session, instance_types=["m5.large"])
    assert prices and all(p.instance_type == "m5.large" for p in prices)
    assert isinstance(prices[0].price, Decimal)
    assert prices[0].timestamp.utcoffset().total_seconds() == 0


def test_availability_zones(session: AccountSession) -> None:
    zones = ec2.describe_availability_zones(session)
    assert zones["us-east-1a"].startswith("use1-az")
