"""The platform (a live server) and the reference agent on a simulated cluster: an action is enqueued, leased,
executed and reported; a spot interruption notice turns into a drain."""

from __future__ import annotations

import pytest

from agent.executor import Executor
from agent.platform import PlatformClient
from agent.runner import Agent
from agent.simulated import demo_cluster
from agentapi.models import AgentAction, AgentEvent, AgentStatus, KubeNode, KubePod
from agentapi.services import api_key_create, enqueue_action
from audit.models import AuditLog
from tests.factories import ClusterFactory, InstanceFactory, OrganizationFactory


@pytest.mark.django_db(transaction=True)
def test_enqueued_drain_is_executed_by_the_simulated_agent_and_reported(live_server):
    cluster = ClusterFactory(organization=OrganizationFactory())
    _, raw = api_key_create(cluster=cluster, name="e2e")
    sim = demo_cluster(nodes=3, pods_per_node=5, reschedule_seconds=0)
    node = sim.list_nodes()[0]
    instance = InstanceFactory(cluster=cluster, instance_id=node.provider_id.rsplit("/", 1)[-1])
    agent = Agent(
        PlatformClient(live_server.url, raw),
        sim,
        Executor(sim, eviction_retry_seconds=0.05, wait_poll_seconds=0.05),
    )

    assert agent.run_once() > 0  # snapshot sent, nothing to do: wait for the next poll
    assert KubeNode.objects.filter(cluster=cluster).count() == 3
    assert KubeNode.objects.get(cluster=cluster, name=node.name).instance_id == instance.pk
    assert KubePod.objects.filter(cluster=cluster).count() == 15
    assert AgentStatus.objects.get(cluster=cluster).connection() == "connected"

    drain = enqueue_action(
        cluster=cluster, type="drain", target=node.name, params={"grace_period_seconds": 5, "timeout_seconds": 30}
    )
    label = enqueue_action(
        cluster=cluster, type="label", target=node.name, params={"labels": {"spotopt.io/retiring": "true"}}
    )
    assert agent.run_once() == 0
    drain.refresh_from_db()
    label.refresh_from_db()
    assert (drain.state, drain.attempts) == ("succeeded", 1), drain.result_message
    assert "evicted 3 pod(s)" in drain.result_message
    assert label.state == "succeeded"
    assert sim.get_node(node.name).unschedulable
    assert sim.get_node(node.name).labels["spotopt.io/retiring"] == "true"
    assert all(p.daemonset or p.mirror for p in sim.list_pods(node=node.name))
    assert AuditLog.objects.filter(action="agent_action.succeeded", actor_type="api_key").count() == 2

    # An interruption notice for another node: the platform queues cordon + drain, the agent carries them out.
    other = sim.list_nodes()[1].name
    agent.platform.events([{"type": "spot-interruption", "node": other}])
    assert AgentEvent.objects.filter(cluster=cluster).count() == 1
    agent.run_once()
    assert set(AgentAction.objects.filter(target=other).values_list("type", "state")) == {
        ("cordon", "succeeded"),
        ("drain", "succeeded"),
    }
    assert all(p.daemonset or p.mirror for p in sim.list_pods(node=other))
    assert sim.min_healthy["default/web"] >= sim.pdbs[0].min_available


@pytest.mark.django_db(transaction=True)
def test_demo_agent_command_reports_a_simulated_cluster(live_server, user):
    from io import StringIO

    from django.core.management import call_command

    cluster = ClusterFactory(organization=user.organization)
    instance = InstanceFactory(cluster=cluster, lifecycle="spot")
    out = StringIO()
    call_command("demo_agent", "--url", live_server.url, "--email", user.email, "--once", stdout=out)
    node = KubeNode.objects.get(cluster=cluster)
    assert node.instance_id == instance.pk  # the simulated nodes are the cluster's instances
    assert node.capacity_type == "spot"
    assert AgentStatus.objects.get(cluster=cluster).connection() == "connected"
    # Run again: the previous demo key is revoked, a new one made.
    call_command("demo_agent", "--url", live_server.url, "--email", user.email, "--once", stdout=out)
    assert cluster.api_keys.filter(revoked_at__isnull=True).count() == 1
    assert cluster.api_keys.count() == 2
