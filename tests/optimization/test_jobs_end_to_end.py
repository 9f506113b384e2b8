"""Jobs end to end: the simulated AWS (moto's server behind the capacity layer), the reference agent on a simulated
cluster that mirrors it, the platform on a live server, and ticks."""

from __future__ import annotations

import pytest

from agentapi.models import AgentAction
from audit.models import AuditLog
from clusters.models import Instance
from optimization.models import JobStep, OptimizationJob
from optimization.services.jobs import job_approve, job_create
from optimization.services.runner import start_due_jobs, tick
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _job():
    return OptimizationJob.objects.order_by("-id").first()


def test_recommend_approve_converts_the_cluster_to_spot(world):
    old = {i["InstanceId"] for i in world.instances()}
    assert len(old) == 3 and all(i.get("InstanceLifecycle") != "spot" for i in world.instances())
    assert world.sim.pending_pods() == []

    # recommend mode: the beat's job waits for approval
    started = start_due_jobs(now=__import__("django.utils.timezone", fromlist=["now"]).now())
    assert len(started) == 1
    job = OptimizationJob.objects.get(pk=started[0])
    assert (job.trigger, job.state) == ("schedule", "pending_approval")
    assert job.projected_hourly_saving > 0
    tick()
    job.refresh_from_db()
    assert job.state == "pending_approval"  # nothing moves before an operator approves

    job_approve(job=job, actor=UserFactory(organization=world.cluster.organization))
    world.run(lambda: _job().is_final, rounds=40)
    job = _job()
    assert job.state == "succeeded", (job.error, list(job.steps.values_list("kind", "state", "message")))

    now_running = world.instances()
    assert {i["InstanceId"] for i in now_running}.isdisjoint(old & {s for s in job.plan["remove"]})
    removed = set(job.plan["remove"])
    assert removed and removed <= old
    assert all(i.get("InstanceLifecycle") == "spot" for i in now_running if i["InstanceId"] not in old)
    # every pod runs, and the PDBs were never broken
    assert world.sim.pending_pods() == []
    for pdb in world.sim.pdbs:
        assert world.sim.min_healthy[f"{pdb.namespace}/{pdb.name}"] >= pdb.min_available
    # never more nodes cordoned at once than the budget allows
    assert world.max_cordoned <= 2
    # launches are tagged with the job and the step; removed ASG instances were detached with decrement
    launched = [i for i in now_running if i["InstanceId"] not in old]
    tags = {t["Key"]: t["Value"] for t in launched[0]["Tags"]}
    assert tags["spotopt.io/job"] == str(job.pk) and tags["kubernetes.io/cluster/shop"] == "owned"
    # the inventory closed the terminated ones
    closed = set(
        Instance.objects.filter(cluster=world.cluster, terminated_at__isnull=False).values_list(
            "instance_id", flat=True
        )
    )
    assert removed <= closed
    assert job.realized_hourly_saving is not None and job.realized_hourly_saving > 0
    transitions = AuditLog.objects.filter(action="optimization_job.transition", resource_id=str(job.pk))
    assert [e.after["state"] for e in transitions.order_by("id")] == [
        "planned",
        "validating",
        "launching",
        "waiting_ready",
        "draining",
        "terminating",
        "succeeded",
    ]
    assert AgentAction.objects.filter(origin__startswith=f"optimization_job:{job.pk}:", type="drain").exists()


def test_worker_killed_between_steps_resumes_without_a_second_launch(world):
    job = job_create(
        cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization)
    )
    tick()  # validates and launches
    job.refresh_from_db()
    launches = list(job.steps.filter(kind=JobStep.Kind.LAUNCH))
    assert launches and all(step.state == "succeeded" for step in launches)
    launch = launches[0]
    all_launched = {i for step in launches for i in step.result["instance_ids"]}
    launched = set(launch.result["instance_ids"])
    # The worker died after AWS answered but before the step was saved: the step forgets what it launched.
    JobStep.objects.filter(pk=launch.pk).update(state="pending", result={})
    OptimizationJob.objects.filter(pk=job.pk).update(state="launching")
    JobStep.objects.filter(job=job, kind=JobStep.Kind.WAIT_READY).delete()
    world.run(lambda: _job().is_final, rounds=40)
    launch.refresh_from_db()
    assert set(launch.result["instance_ids"]) == launched  # found by its tag, not launched twice
    tagged = [i for i in world.instances() if any(t["Key"] == "spotopt.io/job" for t in i.get("Tags", []))]
    assert {i["InstanceId"] for i in tagged} == all_launched
    assert _job().state == "succeeded"
