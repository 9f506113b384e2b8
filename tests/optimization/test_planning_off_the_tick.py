"""Planning runs off the tick when tasks go through a broker: a plan of a big cluster takes minutes, the tick has 50
seconds. The tick queues one ``evaluate_cluster`` per due cluster, one ``restore_fallback`` per due fallback and an
``advance_job`` for jobs to validate, one at a time each; the tasks plan, on the simulated AWS with the simulated
agent."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.utils import timezone

from optimization import planning, tasks
from optimization.models import OptimizationJob, Recommendation
from optimization.services import evaluation, followup, recommendations, runner
from optimization.services.jobs import job_approve
from spotopt.cache import CacheUnavailable
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plans(monkeypatch):
    """Counts the plans made (of any cluster), planning as before."""
    made: list[int] = []
    real = planning.plan_built

    def counting(built):
        made.append(built.cluster.pk)
        return real(built)

    monkeypatch.setattr(planning, "plan_built", counting)
    monkeypatch.setattr(recommendations, "plan_built", counting)
    return made


def test_the_tick_queues_a_due_cluster_once_and_the_task_plans_it(world, queue, plans):
    world.agent_round()
    report = runner.tick()
    assert plans == []  # nothing planned in the tick
    assert report.queued_clusters == [world.cluster.pk] and report.started == []
    assert queue == [(evaluation.EVALUATE_TASK, [world.cluster.pk], None)]
    assert not Recommendation.objects.filter(cluster=world.cluster).exists()

    assert runner.tick().queued_clusters == []  # queued already: not again while it waits or runs
    assert len(queue) == 1

    name, args, _ = queue.pop(0)
    job_id = tasks.evaluate_cluster(*args)  # as the worker runs it
    assert plans == [world.cluster.pk]
    job = OptimizationJob.objects.get(pk=job_id)
    assert (job.trigger, job.state) == ("schedule", "pending_approval")  # recommend mode
    recommendation = Recommendation.objects.get(cluster=world.cluster)
    assert recommendation.saving_pct > 5 and recommendation.error == ""

    # The cluster now has an active job: the next ticks queue nothing for it, and plan nothing.
    assert runner.tick().queued_clusters == []
    assert queue == [] and plans == [world.cluster.pk]


def test_a_cluster_evaluated_since_it_was_queued_is_not_planned_again(world, queue, plans):
    world.agent_round()
    runner.tick()
    (_, args, _), *_ = queue
    runner.start_due_jobs(now=timezone.now())  # planned meanwhile (by an eager path)
    assert len(plans) == 1
    assert tasks.evaluate_cluster(*args) is None  # no longer due: the task returns without planning
    assert len(plans) == 1
    assert cache.add(f"optimization:planning:{evaluation.EVALUATE_TASK}:{world.cluster.pk}", 1)  # released


def test_a_plan_that_crashes_is_recorded_and_waits_like_any_evaluation(world, queue, monkeypatch, caplog):
    world.agent_round()
    runner.tick()
    queue.clear()

    def broken(built):
        raise RuntimeError("planner bug")

    monkeypatch.setattr(recommendations, "plan_built", broken)
    assert tasks.evaluate_cluster(world.cluster.pk) is None
    assert "planner bug" in caplog.text  # the traceback in the worker's log
    assert Recommendation.objects.get(cluster=world.cluster).error == "Planning failed unexpectedly."
    assert runner.tick().queued_clusters == []  # not again at every tick: after consolidate_after
    with time_machine.travel(timezone.now() + timedelta(minutes=2), tick=False):
        assert runner.tick().queued_clusters == [world.cluster.pk]  # the key was released, and it is due again


def test_a_broker_outage_leaves_the_cluster_to_the_next_tick(world, queue, monkeypatch, plans):
    world.agent_round()

    def down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(followup.current_app, "send_task", down)
    runner.tick()  # does not raise
    assert plans == []
    monkeypatch.setattr(followup.current_app, "send_task", lambda name, args=None, **kw: queue.append((name, args)))
    assert runner.tick().queued_clusters == [world.cluster.pk]
    assert queue == [(evaluation.EVALUATE_TASK, [world.cluster.pk])]


def test_a_dead_cache_queues_no_plan_and_the_tick_goes_on(world, queue, monkeypatch, plans):
    world.agent_round()

    def dead(*args, **kwargs):
        raise CacheUnavailable("add")

    monkeypatch.setattr(cache, "add", dead)
    report = runner.tick()
    assert report.queued_clusters == [] and queue == [] and plans == []


def test_validation_plans_in_the_job_task_not_in_the_tick(world, queue, plans):
    world.agent_round()
    runner.tick()
    tasks.evaluate_cluster(world.cluster.pk)
    job = OptimizationJob.objects.get(cluster=world.cluster)
    queue.clear()
    job_approve(job=job, actor=UserFactory(organization=world.cluster.organization))
    queue.clear()  # the approval queued its advance; the tick finds the job planned and due as well
    cache.clear()
    report = runner.tick()
    assert report.advanced == {job.pk: "queued"}
    assert queue == [(followup.ADVANCE_TASK, [job.pk], 0)]
    assert len(plans) == 1  # the tick validated nothing
    job.refresh_from_db()
    assert job.state == "planned"

    tasks.advance_job(job.pk)  # the worker: validation plans again, then the launch
    assert len(plans) == 2
    job.refresh_from_db()
    assert job.state in ("launching", "waiting_ready", "draining", "succeeded"), (job.state, job.error)


def test_a_due_fallback_restore_is_queued_and_planned_by_its_task(world, queue, plans):
    world.agent_round()
    runner.start_due_jobs(now=timezone.now())
    job = OptimizationJob.objects.get(cluster=world.cluster)
    OptimizationJob.objects.filter(pk=job.pk).update(
        state="succeeded",
        fallback=True,
        restore_after=timezone.now() - timedelta(minutes=1),
        plan={**job.plan, "fallback_restore_minutes": 30},
    )
    Recommendation.objects.filter(cluster=world.cluster).update(computed_at=timezone.now())  # not due itself
    plans.clear()
    report = runner.tick()
    assert report.queued_restores == [job.pk] and report.restores == [] and plans == []
    assert queue == [(evaluation.RESTORE_TASK, [job.pk], None)]
    assert runner.tick().queued_restores == []

    restore_id = tasks.restore_fallback(job.pk)
    assert plans == [world.cluster.pk]
    restore = OptimizationJob.objects.get(pk=restore_id)
    assert restore.trigger == "fallback-restore"
    job.refresh_from_db()
    assert job.restored_by_id == restore_id
    assert runner.tick().queued_restores == []  # restored: never again


def test_the_command_queues_the_plans_or_plans_them_itself(world, queue, plans):
    import json
    from io import StringIO

    from django.core.management import call_command

    world.agent_round()
    out = StringIO()
    call_command("optimization_tick", stdout=out)
    assert json.loads(out.getvalue())["queued_clusters"] == [world.cluster.pk] and plans == []
    cache.clear()
    out = StringIO()
    call_command("optimization_tick", "--in-line", stdout=out)
    report = json.loads(out.getvalue())
    assert report["queued_clusters"] == [] and len(report["started"]) == 1 and plans == [world.cluster.pk]


def test_plans_go_to_the_planning_queue_a_deployment_names():
    import os
    import subprocess
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    code = (
        "import django; django.setup(); from celery import current_app as app; "
        "print(*(app.amqp.router.route({}, f'optimization.tasks.{t}')['queue'].name "
        "for t in ('evaluate_cluster', 'restore_fallback', 'refresh_recommendation', 'plan_after_wake', 'tick', "
        "'advance_job')))"
    )
    base = {k: v for k, v in os.environ.items() if k != "CELERY_PLANNING_QUEUE"}
    base["DJANGO_SETTINGS_MODULE"] = "spotopt.settings"
    for env, queue_name in (({}, "celery"), ({"CELERY_PLANNING_QUEUE": "planning"}, "planning")):
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=root, env=base | env, capture_output=True, text=True, timeout=120
        )
        assert result.stdout.split() == [queue_name] * 4 + ["celery", "celery"], result.stderr
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    assert compose["x-app"]["environment"]["CELERY_PLANNING_QUEUE"] == "planning"
    planner = compose["services"]["planner"]["command"]
    assert planner[planner.index("-Q") + 1] == "planning"  # a worker reads the queue the plans go to
    assert "-Q" not in compose["services"]["worker"]["command"]  # and the worker keeps its slots for the ticks


def test_a_job_about_to_be_validated_is_advanced_on_the_planning_queue(world, queue, monkeypatch, settings):
    from optimization.services.jobs import job_create

    settings.CELERY_PLANNING_QUEUE = "planning"
    sent: list[tuple[str, list, str | None]] = []
    monkeypatch.setattr(
        followup.current_app,
        "send_task",
        lambda name, args=None, countdown=None, **kw: sent.append((name, list(args or []), kw.get("queue"))),
    )
    world.agent_round()
    job = job_create(
        cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization)
    )
    assert sent == [(followup.ADVANCE_TASK, [job.pk], "planning")]  # its next move validates: it plans
    sent.clear()
    tasks.advance_job(job.pk)
    job.refresh_from_db()
    assert job.state == "waiting_ready", (job.state, job.error)
    assert sent == [(followup.ADVANCE_TASK, [job.pk], None)]  # waiting for nodes plans nothing: the default queue
