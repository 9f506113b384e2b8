"""The embedded default's simulated AWS: moto's server, a demo estate, linked and synced for the demo org."""

from __future__ import annotations

from io import StringIO

import boto3
import pytest
import requests
from django.core.management import call_command

from accounts.models import CloudAccount
from clusters.management.commands.simulated_aws import build_estate, reconcile_node_groups
from clusters.models import Cluster, Instance
from spotopt.simulated_aws import SimulatedAws
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_simulated_aws_links_and_discovers_the_demo_estate(monkeypatch, settings) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    settings.AWS_ENDPOINT_URL = ""  # through the fixture, so that the command's own override is undone afterwards
    user = UserFactory(email="demo@example.test")
    out = StringIO()
    call_command("simulated_aws", "--port", "0", "--demo-email", user.email, "--once", stdout=out)
    assert "2 clusters discovered" in out.getvalue()
    account = CloudAccount.objects.get(organization=user.organization)
    assert account.status == CloudAccount.Status.ACTIVE
    clusters = {c.name: c for c in Cluster.objects.filter(cloud_account=account)}
    assert clusters["shop-prod"].kind == "eks" and clusters["analytics"].kind == "self-managed"
    instances = Instance.objects.filter(cluster__cloud_account=account)
    assert instances.filter(lifecycle="spot").count() == 3
    assert instances.filter(lifecycle="on-demand").count() == 7
    # the managed node group's two nodes (EKS keeps their number) and three self-managed workers
    assert instances.filter(cluster__name="shop-prod", node_group="general").count() == 2
    # discovery found how to launch nodes: the node group's launch template and its subnets
    config = clusters["shop-prod"].launch_config
    assert config["launch_template_id"].startswith("lt-") and "us-east-1a" in config["subnets"]
    assert clusters["analytics"].launch_config["subnets"].keys() == {"eu-west-1a", "eu-west-1b"}
    # the demo cluster converts itself to spot: optimization on, automatic mode
    policy = clusters["shop-prod"].policy
    assert policy.optimization_enabled and policy.mode == "automatic"


def test_the_managed_node_group_runs_its_nodes_in_its_auto_scaling_group_kept_the_same_size(monkeypatch) -> None:
    """As EKS has it: the node group's nodes belong to the Auto Scaling group it names, so that a job can detach them
    (with decrement: the node group follows, nothing is launched again) and a resize of the node group (hibernation)
    launches or terminates through the Auto Scaling group."""
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    server = SimulatedAws(port=0)
    server.start()
    try:
        endpoint = server.endpoint
        requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()  # moto's state is per process
        build_estate(endpoint)

        def client(service: str, region: str = "us-east-1"):
            return boto3.client(service, region_name=region, endpoint_url=endpoint)

        eks, autoscaling, ec2 = client("eks"), client("autoscaling"), client("ec2")

        def reconcile() -> dict[str, int]:
            return reconcile_node_groups(client, ("us-east-1",))

        def sizes() -> tuple[tuple, tuple, set[str], set[str]]:
            config = eks.describe_nodegroup(clusterName="shop-prod", nodegroupName="general")["nodegroup"][
                "scalingConfig"
            ]
            (g,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[asg_name])["AutoScalingGroups"]
            running = {
                i["InstanceId"]
                for r in ec2.describe_instances(
                    Filters=[
                        {"Name": "tag:eks:nodegroup-name", "Values": ["general"]},
                        {"Name": "instance-state-name", "Values": ["pending", "running"]},
                    ]
                )["Reservations"]
                for i in r["Instances"]
            }
            return (
                (config["minSize"], config["maxSize"], config["desiredSize"]),
                (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]),
                {i["InstanceId"] for i in g["Instances"]},
                running,
            )

        group = eks.describe_nodegroup(clusterName="shop-prod", nodegroupName="general")["nodegroup"]
        asg_name = group["resources"]["autoScalingGroups"][0]["name"]
        node_group, asg, members, running = sizes()
        assert node_group == asg == (1, 6, 2)
        assert len(members) == 2 and running == members
        assert reconcile() == {}
        assert sizes()[2] == members

        # a job removes one node: detached with decrement, then terminated; the node group follows
        gone = sorted(members)[0]
        autoscaling.detach_instances(
            InstanceIds=[gone], AutoScalingGroupName=asg_name, ShouldDecrementDesiredCapacity=True
        )
        ec2.terminate_instances(InstanceIds=[gone])
        reconcile()
        reconcile()
        node_group, asg, members_after, running = sizes()
        assert node_group == asg == (1, 6, 1)
        assert members_after == running == members - {gone}  # nothing launched in its place

        # hibernation puts the node group to sleep and wakes it: the Auto Scaling group follows
        eks.update_nodegroup_config(
            clusterName="shop-prod",
            nodegroupName="general",
            scalingConfig={"minSize": 0, "maxSize": 6, "desiredSize": 0},
        )
        reconcile()
        node_group, asg, members_after, running = sizes()
        assert node_group == asg == (0, 6, 0) and members_after == running == set()
        eks.update_nodegroup_config(
            clusterName="shop-prod",
            nodegroupName="general",
            scalingConfig={"minSize": 1, "maxSize": 6, "desiredSize": 2},
        )
        reconcile()
        node_group, asg, members_after, running = sizes()
        assert node_group == asg == (1, 6, 2) and len(members_after) == 2 and running == members_after
    finally:
        server.stop()
