"""Two ticks racing on PostgreSQL act once: each job is advanced under a row lock taken with SKIP LOCKED, and a
step's launch is looked up by its tag before it is made."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from optimization.models import JobStep, OptimizationJob
from optimization.services.jobs import job_create
from optimization.services.runner import tick
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks with SKIP LOCKED need PostgreSQL")
def test_two_ticks_racing_launch_once(world):
    job = job_create(
        cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization)
    )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            tick()
        except BaseException as exc:  # noqa: BLE001 - any failure in the thread is reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    job.refresh_from_db()
    launches = list(JobStep.objects.filter(job=job, kind="launch"))
    planned = sum(1 for n in job.plan["nodes"] if n.get("new"))
    assert sum(len(s.result.get("instance_ids", [])) for s in launches) == planned
    tagged = [i for i in world.instances() if any(t["Key"] == "spotopt.io/job" for t in i.get("Tags", []))]
    assert len(tagged) == planned  # each new node launched exactly once
    world.run(lambda: OptimizationJob.objects.get(pk=job.pk).is_final, rounds=30)
    assert OptimizationJob.objects.get(pk=job.pk).state == "succeeded"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks with SKIP LOCKED need PostgreSQL")
def test_a_follow_up_racing_the_tick_launches_once(world):
    from optimization import tasks

    job = job_create(
        cluster=world.cluster, trigger="manual", actor=UserFactory(organization=world.cluster.organization)
    )
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def run(work) -> None:
        try:
            barrier.wait()
            work()
        except BaseException as exc:  # noqa: BLE001 - any failure in the thread is reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=run, args=(tick,)),
        threading.Thread(target=run, args=(lambda: tasks.advance_job(job.pk),)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    job.refresh_from_db()
    planned = sum(1 for n in job.plan["nodes"] if n.get("new"))
    tagged = [i for i in world.instances() if any(t["Key"] == "spotopt.io/job" for t in i.get("Tags", []))]
    assert len(tagged) == planned
    assert JobStep.objects.filter(job=job, kind="wait_ready").count() <= 1
