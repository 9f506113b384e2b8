"""A job carries out the plan an operator approved, not a newer one; validation, just before anything is launched,
cancels an approved plan that went stale meanwhile: one that launches an offering the template no longer allows, or
one that no longer saves at today's prices. On the simulated AWS with the simulated agent."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from optimization.models import OptimizationJob
from optimization.services.jobs import job_approve
from optimization.services.runner import start_due_jobs
from pricing.models import SpotPricePoint
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _pending_job(world) -> OptimizationJob:
    (job_id,) = start_due_jobs(now=timezone.now())
    job = OptimizationJob.objects.get(pk=job_id)
    assert job.state == "pending_approval"
    adds = {(n["instance_type"], n["zone"], n["capacity_type"]) for n in job.plan["nodes"] if n.get("new")}
    assert adds == {("m5.large", "us-east-1a", "spot")}  # what the template allows today: the cheapest
    return job


def _approve_and_run(world, job) -> OptimizationJob:
    before = sorted(i["InstanceId"] for i in world.instances())
    job_approve(job=job, actor=UserFactory(organization=world.cluster.organization))
    world.run(lambda: OptimizationJob.objects.get(pk=job.pk).is_final, rounds=10)
    job.refresh_from_db()
    assert sorted(i["InstanceId"] for i in world.instances()) == before  # nothing launched, nothing removed
    assert not job.steps.exists()
    return job


def test_an_approved_plan_outside_the_changed_template_is_cancelled_not_launched(world):
    job = _pending_job(world)
    world.template.min_vcpu = 4  # m5.large (2 vCPUs) no longer allowed; m5.xlarge spot still saves
    world.template.save()
    job = _approve_and_run(world, job)
    assert job.state == "cancelled"
    assert "m5.large us-east-1a spot" in job.error and "no longer allows" in job.error


def test_an_approved_plan_that_no_longer_saves_at_todays_prices_is_cancelled(world):
    job = _pending_job(world)
    SpotPricePoint.objects.create(
        region="us-east-1",
        zone="us-east-1a",
        instance_type="m5.large",
        price=Decimal("0.900000"),
        timestamp=timezone.now(),
    )
    job = _approve_and_run(world, job)
    assert job.state == "cancelled"
    assert job.error.startswith("At today's prices the approved plan saves -"), job.error


def test_an_approved_plan_still_allowed_and_saving_goes_on(world):
    job = _pending_job(world)
    world.template.max_vcpu = 8  # narrower, but the approved offering is still in it
    world.template.save()
    job_approve(job=job, actor=UserFactory(organization=world.cluster.organization))
    world.run(lambda: OptimizationJob.objects.get(pk=job.pk).is_final, rounds=40)
    job.refresh_from_db()
    assert job.state == "succeeded", (job.state, job.error)
    assert ("m5.large", "spot") in {(i["InstanceType"], i.get("InstanceLifecycle")) for i in world.instances()}


def test_an_approved_plan_whose_nodes_no_longer_hold_the_pods_is_cancelled(world):
    job = _pending_job(world)
    kinds = {key[0] for key in world.sim.workloads}
    world.sim.set_replicas("Deployment" if "Deployment" in kinds else sorted(kinds)[0], "shop", "web", 14)
    world.agent_round()  # the platform sees 14 web pods now, 6 when the plan was made
    job = _approve_and_run(world, job)
    assert job.state == "cancelled"
    assert "would not hold" in job.error and "web" in job.error, job.error


def test_an_approved_plan_with_room_for_a_few_more_pods_goes_on(world):
    job = _pending_job(world)
    kinds = {key[0] for key in world.sim.workloads}
    world.sim.set_replicas("Deployment" if "Deployment" in kinds else sorted(kinds)[0], "shop", "web", 5)
    world.agent_round()  # one pod fewer: the approved nodes hold them all the more
    job_approve(job=job, actor=UserFactory(organization=world.cluster.organization))
    world.run(lambda: OptimizationJob.objects.get(pk=job.pk).is_final, rounds=40)
    job.refresh_from_db()
    assert job.state == "succeeded", (job.state, job.error)
