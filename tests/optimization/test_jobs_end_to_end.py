"""Jobs end to end: the simulated AWS (moto's server behind the capacity layer), the reference agent on a simulated
cluster that mirrors it, the platform on a live server, and ticks."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from agent.simulated import PodDisruptionBudget
from agentapi.models import AgentAction
from audit.models import AuditLog
from clusters.models import ClusterPolicy, Instance
from optimization.models import JobStep, OptimizationJob, UnavailableOffering
from optimization.services.jobs import job_approve, job_cancel, job_create
from optimization.services.runner import start_due_jobs, tick
from savings.models import LedgerEntry
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _job():
    return OptimizationJob.objects.order_by("-id").first()


def test_recommend_approve_converts_the_cluster_to_spot(world):
    old = {i["InstanceId"] for i in world.instances()}
    assert len(old) == 3 and all(i.get("InstanceLifecycle") != "spot" for i in world.instances())
    assert world.sim.pending_pods() == []

    # recommend mode: the beat's job waits for approval
    started = start_due_jobs(now=timezone.now())
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
    # the job's realized saving is its savings-ledger entry's, written with the transition to succeeded
    entry = LedgerEntry.objects.get(action_type="optimization_job", action_id=str(job.pk))
    assert (entry.source, entry.started_at) == ("job", job.finished_at)
    assert entry.realized_hourly == job.realized_hourly_saving
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


def _travel(minutes: float):
    return time_machine.travel(timezone.now() + timedelta(minutes=minutes), tick=True)


def test_automatic_mode_starts_and_finishes_a_job_at_most_once_per_consolidate_after(world):
    ClusterPolicy.objects.filter(pk=world.policy.pk).update(mode="automatic")
    world.run(lambda: _job() is not None and _job().is_final, rounds=40)
    job = _job()
    assert (job.trigger, job.state, job.started_by_label) == ("schedule", "succeeded", "system:schedule")
    assert job.approved_by is None and job.approved_at is not None
    tick()
    assert OptimizationJob.objects.count() == 1  # evaluated a moment ago: consolidate_after (1m) not yet over


@pytest.mark.parametrize(
    "setting", [{"consolidate_after": "Never"}, {"consolidation_policy": "when-empty"}, {"optimization_enabled": False}]
)
def test_no_automatic_job_when_the_policy_says_no(world, setting):
    ClusterPolicy.objects.filter(pk=world.policy.pk).update(mode="automatic", **setting)
    tick()
    assert OptimizationJob.objects.count() == 0


def test_insufficient_capacity_in_the_planned_pool_is_replanned_by_the_optimizer_onto_another_spot_pool(world):
    job = job_create(
        cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization)
    )
    first = next(n for n in job.plan["nodes"] if n.get("new"))
    refused = (first["instance_type"], first["zone"], "spot")
    world.server.set_unavailable([refused])
    world.run(lambda: _job().is_final, rounds=40)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    assert not job.fallback and job.restore_after is None  # another spot pool took the pods: no fallback
    assert refused in world.server.layer.refused
    assert UnavailableOffering.objects.filter(instance_type=refused[0], zone=refused[1], capacity_type="spot").exists()
    failed = job.steps.get(kind="launch", params__offering__instance_type=refused[0], params__offering__zone=refused[1])
    assert "re-planned by the optimizer" in failed.message
    replanned = job.steps.filter(kind="launch", params__replaces_step=failed.pk)
    assert replanned.exists() and all(s.state == "succeeded" for s in replanned)
    assert all((s.params["offering"]["instance_type"], s.params["offering"]["zone"]) != refused[:2] for s in replanned)
    assert any("Re-planned after insufficient capacity" in note for note in job.notes)
    new = [i for i in world.instances() if any(t["Key"] == "spotopt.io/job" for t in i.get("Tags", []))]
    assert new and all(i.get("InstanceLifecycle") == "spot" for i in new)
    assert all((i["InstanceType"], i["Placement"]["AvailabilityZone"]) != refused[:2] for i in new)
    # the plan on the job is what was carried out: its new nodes are the launched ones
    assert sum(1 for n in job.plan["nodes"] if n.get("new")) == len(new)
    assert world.sim.pending_pods() == []


def test_insufficient_capacity_falls_back_to_on_demand_then_restores_spot(world):
    spot_pools = [
        ("m5.large", "us-east-1a", "spot"),
        ("m5.large", "us-east-1b", "spot"),
        ("m5.xlarge", "us-east-1a", "spot"),
        ("m5.xlarge", "us-east-1b", "spot"),
    ]
    world.server.set_unavailable(spot_pools)
    job = job_create(
        cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization)
    )
    world.run(lambda: _job().is_final, rounds=40)
    job.refresh_from_db()
    assert job.state == "succeeded", job.error
    assert job.fallback and job.restore_after is not None
    assert world.server.layer.refused  # the simulated AWS did refuse the spot launches
    assert UnavailableOffering.objects.filter(capacity_type="spot").exists()
    failed = job.steps.filter(kind="launch", state="failed")
    assert failed.exists() and "InsufficientInstanceCapacity" in failed.first().message
    launched = [i for i in world.instances() if any(t["Key"] == "spotopt.io/job" for t in i.get("Tags", []))]
    assert launched and all(i.get("InstanceLifecycle") != "spot" for i in launched)
    assert AuditLog.objects.filter(action="optimization_job.fallback", resource_id=str(job.pk)).exists()
    assert world.sim.pending_pods() == []

    # capacity is back; after fallback_restore_minutes a fallback-restore job moves those nodes back to spot
    world.server.set_unavailable([])
    with _travel(31):
        world.run(
            lambda: (
                OptimizationJob.objects.filter(trigger="fallback-restore").exists()
                and OptimizationJob.objects.get(trigger="fallback-restore").is_final
            ),
            rounds=40,
        )
        restore = OptimizationJob.objects.get(trigger="fallback-restore")
        assert restore.state == "succeeded", restore.error
        job.refresh_from_db()
        assert job.restored_by_id == restore.pk
        restored = {i for s in restore.steps.filter(kind="launch", state="succeeded") for i in s.result["instance_ids"]}
        running = {i["InstanceId"]: i for i in world.instances()}
        assert restored and all(running[i].get("InstanceLifecycle") == "spot" for i in restored)
        assert {i["InstanceId"] for i in launched} & set(restore.plan["remove"])


def test_no_capacity_and_no_fallback_fails_cleanly_and_disrupts_nothing(world):
    world.template.spot_fallback = False
    world.template.save()
    world.server.set_unavailable(
        [(t, z, "spot") for t in ("m5.large", "m5.xlarge") for z in ("us-east-1a", "us-east-1b")]
    )
    old = {i["InstanceId"] for i in world.instances()}
    job_create(cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization))
    world.run(lambda: _job().is_final, rounds=20)
    job = _job()
    assert job.state == "failed" and "Nothing was disrupted" in job.error
    assert {i["InstanceId"] for i in world.instances()} == old
    assert not AgentAction.objects.filter(type__in=("cordon", "drain")).exists()


def test_replacement_that_never_becomes_ready_is_rolled_back(world):
    world.sim.join_seconds = 10**9  # launched nodes never become Ready
    old = {i["InstanceId"] for i in world.instances()}
    job_create(cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization))
    world.run(lambda: _job().state == "waiting_ready", rounds=10)
    with _travel(11):
        world.run(lambda: _job().is_final, rounds=5)
        job = _job()
    assert job.state == "rolled_back" and "not Ready" in job.error
    assert {i["InstanceId"] for i in world.instances()} == old  # what was launched is gone, nothing else touched
    assert not AgentAction.objects.filter(type__in=("cordon", "drain")).exists()
    assert job.steps.filter(kind="rollback", state="succeeded").exists()


def test_a_pdb_that_blocks_the_drain_fails_the_job_and_uncordons_the_node(world):
    world.sim.add_pdb(PodDisruptionBudget("shop", "web-all", {"app": "web"}, min_available=6))
    job_create(cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization))
    world.run(
        lambda: _job().state == "draining" and AgentAction.objects.filter(type="drain", state="failed").exists(),
        rounds=20,
    )
    with _travel(16):
        world.run(lambda: _job().is_final, rounds=10)
        job = _job()
    assert job.state == "failed" and "blocked" in job.error
    world.agent_round()  # the agent carries out the uncordons
    assert not any(n.unschedulable for n in world.sim.list_nodes())
    assert AgentAction.objects.filter(type="uncordon", state="succeeded").exists()
    # launched nodes that took no pods were terminated; old nodes all still run
    running = {i["InstanceId"] for i in world.instances()}
    assert set(job.current_nodes) <= running
    assert world.sim.pending_pods() == []


def test_cancel_while_waiting_for_ready_terminates_what_was_launched(world):
    world.sim.join_seconds = 10**9
    old = {i["InstanceId"] for i in world.instances()}
    user = UserFactory(organization=world.cluster.organization)
    job = job_create(cluster=world.cluster, trigger="manual", actor=user)
    world.run(lambda: _job().state == "waiting_ready", rounds=10)
    job_cancel(job=job, actor=user)
    tick()
    job.refresh_from_db()
    assert job.state == "cancelled"
    assert {i["InstanceId"] for i in world.instances()} == old


def test_dry_run_computes_the_steps_and_executes_nothing(world):
    old = {i["InstanceId"] for i in world.instances()}
    job = job_create(
        cluster=world.cluster,
        trigger="manual",
        dry_run=True,
        actor=UserFactory(organization=world.cluster.organization),
    )
    tick()
    job.refresh_from_db()
    assert job.state == "succeeded" and job.dry_run and "Dry run" in job.notes[-1]
    assert job.steps.filter(kind="launch", state="skipped").exists()
    assert job.steps.filter(kind="terminate", state="skipped").count() == len(job.plan["remove"])
    assert {i["InstanceId"] for i in world.instances()} == old
    assert not AgentAction.objects.exists()
