"""Nodes of an EKS managed node group are removed through the group's Auto Scaling group: detached with a decrement
of its desired capacity, then terminated, never below the group's minimum size (moto, the simulated agent, ticks)."""

from __future__ import annotations

import boto3
import pytest

from clusters.models import ClusterPolicy
from optimization.models import OptimizationJob
from optimization.planning import build_problem
from optimization.services.jobs import job_create
from tests.factories import UserFactory
from tests.optimization.conftest import REGION, make_world
from tests.templates_app.conftest import catalog  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def _group(endpoint: str, name: str) -> dict:
    asg = boto3.client("autoscaling", region_name=REGION, endpoint_url=endpoint)
    return asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]


@pytest.fixture
def node_group_world(aws_server, catalog, live_server, settings):  # noqa: F811
    w = make_world(aws_server, live_server, settings, node_group={"size": 2, "min_size": 1})
    # Every node may go in one batch; 10% headroom leaves the simulated scheduler (most free CPU first, not the
    # plan's packing) room to place every evicted pod.
    ClusterPolicy.objects.filter(pk=w.policy.pk).update(disruption_budgets=[{"nodes": "100%"}], headroom_pct=10)
    return w


def test_node_group_nodes_are_detached_with_decrement_then_terminated(node_group_world):
    w = node_group_world
    asg_name = w.estate["node_group"]["asg_name"]
    members = set(i["InstanceId"] for i in _group(w.server.endpoint, asg_name)["Instances"])
    assert len(members) == 2
    w.cluster.refresh_from_db()
    assert w.cluster.kind == "eks" and w.cluster.node_groups[0]["min_size"] == 1

    built = build_problem(w.cluster)
    by_id = {n.id: n for n in built.current_nodes}
    assert all(by_id[i].asg_name == asg_name for i in members)
    # the group's minimum (1) keeps one of its nodes; the other may go
    protected = {i for i in members if by_id[i].protected}
    assert len(protected) == 1 and "minimum size" in by_id[next(iter(protected))].why_protected

    job = job_create(cluster=w.cluster, trigger="manual", actor=UserFactory(organization=w.cluster.organization))
    removable = members - protected
    assert removable <= set(job.plan["remove"]), "the plan removes the node group's surplus node"
    w.run(lambda: OptimizationJob.objects.get(pk=job.pk).is_final, rounds=40)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error

    group = _group(w.server.endpoint, asg_name)
    assert group["DesiredCapacity"] == 1 and group["MinSize"] == 1  # decremented, never below the minimum
    assert {i["InstanceId"] for i in group["Instances"]} == protected  # detached from the group
    running = {i["InstanceId"] for i in w.instances()}
    assert removable.isdisjoint(running) and protected <= running  # terminated; the protected one kept
    assert w.sim.pending_pods() == []


def test_a_group_at_its_minimum_refuses_the_detach_and_the_job_fails_with_the_node_uncordoned(node_group_world):
    w = node_group_world
    asg_name = w.estate["node_group"]["asg_name"]
    job = job_create(cluster=w.cluster, trigger="manual", actor=UserFactory(organization=w.cluster.organization))
    # Between planning and terminating, the operator raised the group's minimum to its size.
    asg = boto3.client("autoscaling", region_name=REGION, endpoint_url=w.server.endpoint)
    asg.update_auto_scaling_group(AutoScalingGroupName=asg_name, MinSize=2)
    w.run(lambda: OptimizationJob.objects.get(pk=job.pk).is_final, rounds=40)
    job.refresh_from_db()
    assert job.state == "failed" and "minimum size" in job.error
    group = _group(w.server.endpoint, asg_name)
    assert group["DesiredCapacity"] == 2 and len(group["Instances"]) == 2  # untouched
    w.agent_round()
    assert not any(n.unschedulable for n in w.sim.list_nodes())
    assert w.sim.pending_pods() == []
