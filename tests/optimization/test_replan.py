"""Planning again after insufficient capacity (the optimizer, the ICE cache as ``unavailable``), without AWS: the
pods of the nodes that could not be launched are placed anew, never on a pool in the cache; a replacement launch that
did not say which pods it was for gets nodes at least as large as the one that could not be launched."""

from __future__ import annotations

import pytest

from optimization import ice
from optimization.models import JobStep
from optimization.planning import build_problem
from optimization.services import replan
from optimization.services.jobs import job_create
from tests.optimization.test_api import cluster  # noqa: F401 - the planned cluster fixture
from tests.templates_app.conftest import catalog  # noqa: F401

pytestmark = pytest.mark.django_db


def _job_with_parts(cluster):  # noqa: F811
    job = job_create(cluster=cluster, trigger="manual")
    built = build_problem(cluster)
    job.plan = {**job.plan, **{k: built.problem[k] for k in replan.PROBLEM_PARTS}}
    job.save()
    return job, built


def _key(o):
    return (o["instance_type"], o["zone"], o["capacity_type"])


def test_the_pods_of_the_missing_nodes_go_to_offerings_outside_the_ice_cache(cluster):  # noqa: F811
    job, built = _job_with_parts(cluster)
    new = [n for n in job.plan["nodes"] if n.get("new")]
    assert new
    offering = next(o for o in built.problem["offerings"] if _key(o) == _key(new[0]))
    same = [n["pods"] for n in new if _key(n) == _key(offering)]
    step = JobStep.objects.create(
        job=job, kind="launch", state="running", params={"offering": offering, "count": len(same), "pods": same}
    )
    ice.mark_unavailable(cluster=cluster, offerings=[_key(offering)], reason="test")
    result = replan.replan_shortfall(job=job, steps=[step], failed=step, launched=0, now=None)
    assert result.unplaced == {} and result.short_nodes == len(same)
    assert result.groups and all(_key(g["offering"]) != _key(offering) for g in result.groups)
    placed = sum(sum(p.values()) for g in result.groups for p in g["pods"])
    assert placed <= sum(sum(p.values()) for p in same)  # kept nodes' free room may take some
    assert placed > 0


def test_a_replacement_without_pods_gets_a_node_at_least_as_large(cluster):  # noqa: F811
    job, built = _job_with_parts(cluster)
    job.plan = {**job.plan, "nodes": [], "remove": []}  # a job that only replaces a node (e.g. an interrupted one)
    spot = [o for o in built.problem["offerings"] if o["capacity_type"] == "spot"]
    offering = max(spot, key=lambda o: o["allocatable_cpu_m"])
    step = JobStep.objects.create(job=job, kind="launch", state="running", params={"offering": offering, "count": 1})
    ice.mark_unavailable(cluster=cluster, offerings=[_key(offering)], reason="test")
    result = replan.replan_shortfall(job=job, steps=[step], failed=step, launched=0, now=None)
    assert result.new_nodes >= 1 and not result.unplaced, result
    got = result.groups[0]["offering"]
    assert _key(got) != _key(offering)
    assert (
        sum(g["offering"]["allocatable_cpu_m"] * g["count"] for g in result.groups)
        >= offering["allocatable_cpu_m"] - built.problem["daemonset"]["cpu_m"]
    )
