"""A job goes on only once the pods a drain evicted run again: the drained node is not terminated and the next batch
is not cordoned while they are Pending (the scheduler packs them its own way, not as the plan did); past the drain
timeout the job fails, the drained nodes are uncordoned and launched nodes that carry no pods are terminated.

End to end on the simulated AWS with the simulated agent (whose scheduler is held so that evicted pods stay Pending),
and at the level of the runner's rows, without AWS."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from agentapi.models import AgentAction, AgentStatus, KubePod
from optimization.models import JobStep, OptimizationJob
from optimization.services.jobs import job_create
from optimization.services.runner import advance_job, tick
from tests.factories import ClusterFactory, UserFactory


def _job():
    return OptimizationJob.objects.order_by("-id").first()


def _hold_scheduler(world, monkeypatch) -> dict:
    """While ``hold["on"]``, the simulated scheduler places no pod: evicted pods stay Pending."""
    hold = {"on": False}
    place = world.sim._place
    monkeypatch.setattr(world.sim, "_place", lambda pod, free: "" if hold["on"] else place(pod, free))
    return hold


def _drain_done():
    return JobStep.objects.filter(job=_job(), kind="drain", state="succeeded").exists()


def _one_node_at_a_time(world):
    """Once the job has its plan (which replaces two nodes), the budget drains one node at a time."""
    world.policy.disruption_budgets = [{"nodes": "1"}]
    world.policy.save()


@pytest.mark.django_db(transaction=True)
def test_the_next_batch_waits_until_the_evicted_pods_run_again(world, monkeypatch):
    old = {i["InstanceId"] for i in world.instances()}
    hold = _hold_scheduler(world, monkeypatch)
    hold["on"] = True
    job_create(cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization))
    _one_node_at_a_time(world)
    world.run(_drain_done, rounds=30)
    for _ in range(6):
        world.agent_round()
        tick()
    job = _job()
    assert len(job.plan["remove"]) >= 2
    assert world.sim.pending_pods()
    assert job.state == "draining"
    drain = job.steps.get(kind="drain", state="succeeded")
    assert "evicted pod(s) still Pending" in drain.message
    # the next batch was not cordoned and the drained node still runs
    assert job.steps.filter(kind="cordon").count() == 1
    assert not job.steps.filter(kind="terminate").exists()
    assert drain.target in {i["InstanceId"] for i in world.instances()}
    assert AgentAction.objects.filter(type="cordon").count() == 1

    hold["on"] = False  # the scheduler catches up: the job goes on
    world.run(lambda: _job().is_final, rounds=60)
    job = _job()
    assert job.state == "succeeded", (job.error, list(job.steps.values_list("kind", "state", "message")))
    assert world.sim.pending_pods() == []
    assert set(job.plan["remove"]).isdisjoint({i["InstanceId"] for i in world.instances()})
    assert set(job.plan["remove"]) <= old
    assert world.max_cordoned <= 1


@pytest.mark.django_db(transaction=True)
def test_evicted_pods_pending_past_the_drain_timeout_fail_the_job_and_uncordon_the_drained_node(world, monkeypatch):
    old = {i["InstanceId"] for i in world.instances()}
    hold = _hold_scheduler(world, monkeypatch)
    hold["on"] = True
    job_create(cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization))
    _one_node_at_a_time(world)
    world.run(_drain_done, rounds=30)
    launched = {i["InstanceId"] for i in world.instances()} - old
    assert launched
    with time_machine.travel(timezone.now() + timedelta(minutes=16), tick=True):
        world.run(lambda: _job().is_final, rounds=10)
    job = _job()
    assert job.state == "failed"
    assert "evicted pod(s) still Pending" in job.error and "15 min after draining" in job.error
    world.agent_round()  # the agent carries out the uncordon
    assert not any(n.unschedulable for n in world.sim.list_nodes())
    assert AgentAction.objects.filter(type="uncordon", state="succeeded").count() == 1
    # the old nodes all still run; the launched ones carried no pods and were terminated
    running = {i["InstanceId"] for i in world.instances()}
    assert running == old
    assert job.steps.filter(kind="rollback", state="succeeded").get().result["instance_ids"] == sorted(launched)
    hold["on"] = False
    world.agent_round()
    assert world.sim.pending_pods() == []  # back on the uncordoned node


# --- the runner's rows, without AWS -------------------------------------------------------------------------------


@pytest.fixture
def drained(db):
    """A job in ``draining`` whose first node is drained (the agent's drain succeeded a minute ago), with a second
    node waiting for its batch; the cluster has no AWS account, so terminating fails the job with that reason."""
    cluster = ClusterFactory()
    now = timezone.now()
    job = OptimizationJob.objects.create(
        cluster=cluster,
        trigger="manual",
        state="draining",
        plan={"remove": ["i-1", "i-2"], "nodes": []},
        current_nodes={
            "i-1": {"node_name": "node-1", "instance_id": "i-1", "price": "0.2"},
            "i-2": {"node_name": "node-2", "instance_id": "i-2", "price": "0.2"},
        },
    )
    action = AgentAction.objects.create(
        cluster=cluster,
        type="drain",
        target="node-1",
        state="succeeded",
        deadline=now + timedelta(minutes=10),
        finished_at=now - timedelta(minutes=1),
    )
    JobStep.objects.create(job=job, kind="cordon", target="i-1", state="succeeded")
    JobStep.objects.create(
        job=job,
        kind="drain",
        target="i-1",
        state="succeeded",
        params={"owners": [["shop", "ReplicaSet", "web"]]},
        result={"action_id": action.pk, "node": "node-1"},
        started_at=now - timedelta(minutes=2),
        finished_at=now - timedelta(minutes=1),
    )
    AgentStatus.objects.create(cluster=cluster, last_snapshot_at=now)
    return job


def _pod(job, name, *, owner="web", phase="Pending", node=""):
    return KubePod.objects.create(
        cluster=job.cluster,
        namespace="shop",
        name=name,
        node_name=node,
        phase=phase,
        owner_kind="ReplicaSet",
        owner_name=owner,
    )


def test_a_pending_pod_of_a_moved_workload_holds_the_job(drained):
    _pod(drained, "web-r1")
    assert advance_job(job_id=drained.pk, follow_up=False) == "draining"
    assert list(drained.steps.values_list("kind", flat=True).order_by("id")) == ["cordon", "drain"]
    drain = drained.steps.get(kind="drain")
    assert drain.message == "Waiting: 1 evicted pod(s) still Pending (shop/web-r1)."
    assert not AgentAction.objects.filter(type="cordon").exists()


def test_a_snapshot_older_than_the_drain_holds_the_job(drained):
    AgentStatus.objects.filter(cluster=drained.cluster).update(last_snapshot_at=timezone.now() - timedelta(minutes=5))
    assert advance_job(job_id=drained.pk, follow_up=False) == "draining"
    assert drained.steps.get(kind="drain").message == "Waiting: No snapshot from the agent."
    assert not drained.steps.filter(kind="terminate").exists()


def test_a_pending_pod_of_another_workload_does_not_hold_the_job(drained):
    _pod(drained, "batch-1", owner="batch")
    _pod(drained, "web-r1", phase="Running", node="node-3")
    assert advance_job(job_id=drained.pk, follow_up=False) == "failed"
    drained.refresh_from_db()
    # it went on to terminate the drained node, which needs the AWS account this cluster lacks
    assert "no linked AWS account" in drained.error
    assert drained.steps.get(kind="drain").message == ""


def test_past_the_drain_timeout_the_job_fails_and_uncordons_the_drained_node(drained):
    _pod(drained, "web-r1")
    with time_machine.travel(timezone.now() + timedelta(minutes=15), tick=False):
        assert advance_job(job_id=drained.pk, follow_up=False) == "failed"
    drained.refresh_from_db()
    assert drained.error == (
        "1 evicted pod(s) still Pending (shop/web-r1) 15 min after draining node-1: drained nodes uncordoned, "
        "empty launched nodes terminated."
    )
    uncordon = AgentAction.objects.get(type="uncordon")
    assert uncordon.target == "node-1"
    assert drained.steps.filter(kind="uncordon", target="i-1", state="succeeded").exists()
    assert not drained.steps.filter(kind="terminate").exists()
