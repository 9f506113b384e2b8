"""Steps faster than once per beat minute: a job that waits on something that moves by itself queues a follow-up
``advance_job`` with a short countdown; one at a time per job; the job goes from approval to succeeded on follow-ups
alone (no tick), on the simulated AWS with the simulated agent."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from optimization import tasks
from optimization.models import OptimizationJob
from optimization.services import followup
from optimization.services.jobs import job_create
from optimization.services.runner import tick
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_job_runs_to_the_end_on_follow_ups_alone(world, queue):
    job = job_create(
        cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization)
    )
    assert queue == [(followup.ADVANCE_TASK, [job.pk], 0)]  # a manual job starts at once, not at the next tick
    countdowns = []
    for _ in range(60):
        if not queue:
            break
        name, args, countdown = queue.pop(0)
        countdowns.append(countdown)
        assert name == "optimization.tasks.advance_job" and args == [job.pk]
        world.agent_round()
        tasks.advance_job(*args)  # as the worker runs it once the countdown is over
        assert len(queue) <= 1  # one follow-up at a time per job
    job.refresh_from_db()
    assert job.state == "succeeded", (job.error, job.state)
    assert queue == []  # a finished job queues nothing
    assert countdowns and max(countdowns) <= 10  # never a whole beat minute
    assert world.sim.pending_pods() == []


def test_the_tick_does_not_queue_a_second_follow_up_for_a_job_that_has_one(world, queue):
    world.sim.join_seconds = 10**9  # the new nodes never join: the job keeps waiting
    job = job_create(
        cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization)
    )
    queue.clear()
    cache.clear()
    tick()
    job.refresh_from_db()
    assert job.state == "planned"  # its validation plans: queued as its own task, not run in the tick
    assert queue == [(followup.ADVANCE_TASK, [job.pk], 0)]
    queue.clear()
    tasks.advance_job(job.pk)
    job.refresh_from_db()
    assert job.state == "waiting_ready"
    assert queue == [(followup.ADVANCE_TASK, [job.pk], 5)]
    tick()
    tick()
    assert len(queue) == 1  # the queued follow-up is still pending: the ticks add none
    tasks.advance_job(job.pk)  # it runs, and queues the next one
    assert len(queue) == 2 and queue[-1][2] == 5


def test_an_approved_job_starts_at_once_and_a_broker_outage_leaves_it_to_the_tick(world, monkeypatch, queue):
    from django.utils import timezone

    from optimization.services.jobs import job_approve
    from optimization.services.runner import start_due_jobs

    (job_id,) = start_due_jobs(now=timezone.now())
    assert queue == []  # awaiting approval: nothing to advance
    job = OptimizationJob.objects.get(pk=job_id)

    def broken(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(followup.current_app, "send_task", broken)
    job_approve(job=job, actor=UserFactory(organization=world.cluster.organization))
    job.refresh_from_db()
    assert job.state == "planned"  # approved despite the broker
    assert cache.get(f"optimization:follow-up:{job.pk}") is None  # the tick may queue the next one
    tick()
    job.refresh_from_db()
    assert job.state in ("launching", "waiting_ready", "draining")
