"""A plan is made once per problem: every agent snapshot bumps the cluster's snapshot generation, but most change
nothing the planner sees. A recommendation keeps the digest of the problem it planned; while the cluster's problem
is the same, the recommendation is confirmed (not planned again, not shown as refreshing) by the API, the tick's
evaluation, the queued refresh and a job. On the simulated AWS with the simulated agent."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from agentapi.models import AgentStatus, KubePod
from optimization import planning, tasks
from optimization.models import OptimizationJob, Recommendation
from optimization.planning import build_problem, problem_digest
from optimization.services import recommendations, runner
from optimization.services.jobs import job_cancel
from templates_app.models import NodeTemplate
from tests.conftest import client_for
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def plans(monkeypatch):
    """Counts the planner's runs (any path), planning as before."""
    made: list[str] = []
    real = planning.run_plan

    def counting(problem):
        made.append(problem_digest(problem))
        return real(problem)

    monkeypatch.setattr(planning, "run_plan", counting)
    return made


def _generation(cluster) -> int:
    return AgentStatus.objects.get(cluster=cluster).snapshot_generation


def test_a_snapshot_that_changes_nothing_confirms_the_recommendation(world, queue, plans):
    world.agent_round()
    user = UserFactory(organization=world.cluster.organization)
    url = f"/api/v1/clusters/{world.cluster.pk}/recommendation"
    first = client_for(user).get(url).json()
    assert len(plans) == 1
    row = Recommendation.objects.get(cluster=world.cluster)
    assert row.problem_digest == problem_digest(build_problem(world.cluster).problem) == plans[0]

    generation = _generation(world.cluster)
    later = timezone.now() + timedelta(minutes=20)  # past MAX_AGE as well
    with time_machine.travel(later, tick=False):
        world.agent_round()  # the same pods on the same nodes
        assert _generation(world.cluster) > generation
        again = client_for(user).get(url).json()  # a new token: the first one has expired
    assert len(plans) == 1 and queue == []  # neither planned nor queued
    assert again["refreshing"] is False
    assert again["plan"] == first["plan"] and again["saving"] == first["saving"]
    row.refresh_from_db()
    assert row.snapshot_generation == _generation(world.cluster)
    assert row.computed_at == later  # confirmed now


def test_a_snapshot_that_changes_the_problem_is_planned_again(world, queue, plans):
    world.agent_round()
    client = client_for(UserFactory(organization=world.cluster.organization))
    url = f"/api/v1/clusters/{world.cluster.pk}/recommendation"
    client.get(url)
    digest = Recommendation.objects.get(cluster=world.cluster).problem_digest

    world.agent_round()
    # a pod asks for more CPU (what an agent reports after a rollout)
    pod = KubePod.objects.filter(cluster=world.cluster, daemonset=False).order_by("pk").first()
    KubePod.objects.filter(pk=pod.pk).update(cpu_m=pod.cpu_m + 250)
    stale = client.get(url).json()
    assert stale["refreshing"] is True and len(plans) == 1  # answered at once, refresh queued
    assert [name for name, _, _ in queue] == ["optimization.tasks.refresh_recommendation"]

    tasks.refresh_recommendation(world.cluster.pk)  # the worker
    assert len(plans) == 2
    row = Recommendation.objects.get(cluster=world.cluster)
    assert row.problem_digest == plans[1] != digest


def test_the_tick_does_not_plan_an_unchanged_cluster_again(world, plans):
    """In recommend mode the cluster's job waits for approval; once it is cancelled, the cluster is due again after
    consolidate_after, and an unchanged cluster gets the same job without a second plan."""
    world.agent_round()
    report = runner.tick()
    (job_id,) = report.started
    assert len(plans) == 1
    job_cancel(job=OptimizationJob.objects.get(pk=job_id), actor="system:test")

    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        world.agent_round()
        report = runner.tick()
        (second_id,) = report.started
    assert len(plans) == 1  # the same problem: the cached plan
    first, second = OptimizationJob.objects.get(pk=job_id), OptimizationJob.objects.get(pk=second_id)
    assert second.plan == first.plan and second.planned_hourly_cost == first.planned_hourly_cost

    # a template saved since: planned again even though the problem may look the same
    job_cancel(job=second, actor="system:test")
    template = NodeTemplate.objects.get(organization=world.cluster.organization)
    with time_machine.travel(timezone.now() + timedelta(minutes=10), tick=False):
        template.save()
        runner.tick()
    assert len(plans) == 2


def test_an_error_is_never_reused(world, plans, monkeypatch):
    world.agent_round()
    real = planning.run_plan
    calls = {"n": 0}

    def broken_once(problem):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("planner bug")
        return real(problem)

    monkeypatch.setattr(planning, "run_plan", broken_once)
    assert runner.evaluate_cluster(cluster_id=world.cluster.pk) is None
    row = Recommendation.objects.get(cluster=world.cluster)
    assert row.error and row.problem_digest == ""
    with time_machine.travel(timezone.now() + timedelta(minutes=5), tick=False):
        assert runner.evaluate_cluster(cluster_id=world.cluster.pk) is not None  # planned, not the error again
    assert calls["n"] == 2
    row.refresh_from_db()
    assert row.error == "" and row.problem_digest == problem_digest(build_problem(world.cluster).problem)


def test_reuse_needs_the_same_problem_byte_for_byte(world):
    world.agent_round()
    built = build_problem(world.cluster)
    result = planning.plan_built(built)
    recommendations.recommendation_save(cluster=world.cluster, result=result)
    cached = Recommendation.objects.get(cluster=world.cluster)
    assert recommendations._cached_result(build_problem(world.cluster), cached) is not None
    changed = build_problem(world.cluster)
    changed.problem["offerings"][0]["price"] = str(float(changed.problem["offerings"][0]["price"]) + 0.0001)
    assert recommendations._cached_result(changed, cached) is None  # a price moved
