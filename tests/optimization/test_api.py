"""The jobs and recommendation API: shapes, tenancy (another organization's objects are 404), the error shape,
one active job per cluster, approve/cancel rules, and constant queries for lists."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from agentapi.services import api_key_create, snapshot_ingest
from audit.models import AuditLog
from clusters.models import ClusterPolicy
from optimization.models import OptimizationJob
from optimization.services.jobs import job_create
from templates_app.models import NodeTemplate
from tests.factories import ClusterFactory, InstanceFactory
from tests.optimization.test_optimize import _node, _pod
from tests.templates_app.conftest import catalog  # noqa: F401 - the small exact-price catalog fixture

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster(catalog, user):  # noqa: F811
    org = user.organization
    NodeTemplate.objects.create(
        organization=org,
        name="m5",
        architectures=["x86_64"],
        instance_families={"include": ["m5*"], "exclude": []},
        capacity_types=["spot", "on-demand"],
        strategy="lowest-price",
        is_default=True,
    )
    cluster = ClusterFactory(organization=org, region="us-east-1")
    ClusterPolicy.objects.create(
        cluster=cluster, max_pool_share=1.0, headroom_pct=0, disruption_budgets=[{"nodes": "100%"}]
    )
    for i in range(3):
        InstanceFactory(
            cluster=cluster, instance_id=f"i-{i:017d}", instance_type="m5.xlarge", hourly_price=Decimal("0.192000")
        )
    key, _ = api_key_create(cluster=cluster, name="agent")
    snapshot_ingest(
        api_key=key,
        data={
            "nodes": [_node(f"node-{i}", f"i-{i:017d}") for i in range(3)],
            "pods": [_pod(f"web-{i}", f"node-{i % 3}", 500, 1000) for i in range(6)],
        },
    )
    return cluster


def test_recommendation_shape(auth_client, cluster):
    response = auth_client.get(f"/api/v1/clusters/{cluster.pk}/recommendation")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["current_hourly_cost"] == "0.576000"
    assert Decimal(body["planned_hourly_cost"]) < Decimal("0.576")
    assert Decimal(body["saving"]["hourly"]) == Decimal("0.576") - Decimal(body["planned_hourly_cost"])
    assert Decimal(body["saving"]["monthly"]) == (Decimal(body["saving"]["hourly"]) * 730).quantize(Decimal("0.01"))
    assert body["remove"] and set(body["remove"]) <= {f"i-{i:017d}" for i in range(3)}
    assert body["add"] and {"instance_type", "zone", "capacity_type", "price"} == set(body["add"][0])
    assert body["plan"]["remove"] == body["remove"]


def test_recommendation_without_snapshot_is_a_clear_400(auth_client, user, catalog):  # noqa: F811
    cluster = ClusterFactory(organization=user.organization)
    response = auth_client.get(f"/api/v1/clusters/{cluster.pk}/recommendation")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_snapshot"


def test_other_organizations_cluster_and_job_are_404(other_client, cluster):
    job = job_create(cluster=cluster, trigger="manual", actor="system:test")
    for method, url in [
        ("get", f"/api/v1/clusters/{cluster.pk}/recommendation"),
        ("get", f"/api/v1/clusters/{cluster.pk}/jobs"),
        ("post", f"/api/v1/clusters/{cluster.pk}/jobs"),
        ("get", f"/api/v1/jobs/{job.pk}"),
        ("post", f"/api/v1/jobs/{job.pk}/approve"),
        ("post", f"/api/v1/jobs/{job.pk}/cancel"),
    ]:
        response = getattr(other_client, method)(url, {}, format="json")
        assert response.status_code == 404, (url, response.content)
        assert response.json()["error"]["code"] == "not_found"
    assert other_client.get("/api/v1/jobs").json()["count"] == 0
    job.refresh_from_db()
    assert job.state == "planned"


def test_manual_job_then_a_second_one_is_409(auth_client, cluster, user):
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/jobs", {"dry_run": False}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["trigger"], body["state"], body["dry_run"]) == ("manual", "planned", False)
    assert body["cluster"]["id"] == cluster.pk and body["steps"] == []
    assert Decimal(body["projected_saving"]) > 0 and body["realized_saving"] is None
    assert body["started_by_label"] == f"user:{user.email}"
    assert AuditLog.objects.filter(action="optimization_job.created", resource_id=str(body["id"])).exists()
    again = auth_client.post(f"/api/v1/clusters/{cluster.pk}/jobs", {}, format="json")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_active"
    assert OptimizationJob.objects.count() == 1


def test_bad_input_is_400_and_writes_nothing(auth_client, cluster):
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/jobs", {"dry_run": "perhaps"}, format="json")
    assert response.status_code == 400
    assert "dry_run" in response.json()["error"]["fields"]
    assert not OptimizationJob.objects.exists()


def test_database_allows_one_active_exclusive_job_per_cluster(cluster):
    OptimizationJob.objects.create(cluster=cluster, trigger="manual", state="draining")
    with pytest.raises(IntegrityError), transaction.atomic():
        OptimizationJob.objects.create(cluster=cluster, trigger="schedule", state="pending_approval")
    # interruption jobs may run beside it, and finished jobs do not count
    OptimizationJob.objects.create(cluster=cluster, trigger="interruption", state="draining")
    OptimizationJob.objects.create(cluster=cluster, trigger="manual", state="succeeded")


def test_approve_and_cancel(auth_client, cluster):
    job = job_create(cluster=cluster, trigger="schedule", actor="system:schedule", approval_required=True)
    assert job.state == "pending_approval"
    response = auth_client.post(f"/api/v1/jobs/{job.pk}/approve")
    assert response.status_code == 200 and response.json()["state"] == "planned"
    again = auth_client.post(f"/api/v1/jobs/{job.pk}/approve")
    assert again.status_code == 409 and again.json()["error"]["code"] == "not_pending_approval"
    cancel = auth_client.post(f"/api/v1/jobs/{job.pk}/cancel")
    assert cancel.status_code == 200 and cancel.json()["state"] == "cancelled"
    assert auth_client.post(f"/api/v1/jobs/{job.pk}/cancel").status_code == 409
    states = [e.after["state"] for e in AuditLog.objects.filter(action="optimization_job.transition").order_by("id")]
    assert states == ["planned", "cancelled"]


def test_job_lists_keep_a_constant_number_of_queries(auth_client, cluster, django_assert_num_queries):
    for state in ("succeeded", "failed", "cancelled", "rolled_back"):
        OptimizationJob.objects.create(cluster=cluster, trigger="manual", state=state)
    # auth user, count, the page of jobs with their clusters
    with django_assert_num_queries(3):
        response = auth_client.get("/api/v1/jobs?state=failed&state=succeeded")
    assert response.status_code == 200 and response.json()["count"] == 2
    # auth user, the cluster (tenancy), count, the page
    with django_assert_num_queries(4):
        response = auth_client.get(f"/api/v1/clusters/{cluster.pk}/jobs")
    assert [j["state"] for j in response.json()["results"]] == ["rolled_back", "cancelled", "failed", "succeeded"]


def test_no_job_starts_while_the_cluster_is_not_awake(auth_client, cluster):
    type(cluster).objects.filter(pk=cluster.pk).update(hibernation_state="asleep")
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/jobs", {}, format="json")
    assert response.status_code == 409 and response.json()["error"]["code"] == "cluster_not_awake"
    assert not OptimizationJob.objects.exists()


def test_nodes_of_an_eks_managed_node_group_are_protected_only_without_their_group_or_at_its_minimum(cluster):
    from optimization.planning import build_problem

    Instance = type(cluster).instances.rel.related_model
    Instance.objects.filter(cluster=cluster, instance_id__in=["i-00000000000000000", "i-00000000000000001"]).update(
        node_group="general"
    )

    def protected():
        return {n["id"] for n in build_problem(cluster).problem["current_nodes"] if n["protected"]}

    # its Auto Scaling group unknown: terminating it would only have EKS launch it again
    assert protected() == {"i-00000000000000000", "i-00000000000000001"}
    # the group known (discovery), minimum 1: one node stays, the other may go through the group
    type(cluster).objects.filter(pk=cluster.pk).update(
        node_groups=[{"name": "general", "min_size": 1, "desired_size": 2, "autoscaling_groups": ["eks-general-1"]}]
    )
    cluster.refresh_from_db()
    assert len(protected()) == 1
    type(cluster).objects.filter(pk=cluster.pk).update(
        node_groups=[{"name": "general", "min_size": 0, "desired_size": 2, "autoscaling_groups": ["eks-general-1"]}]
    )
    cluster.refresh_from_db()
    assert protected() == set()
    built = build_problem(cluster)
    assert {n.asg_name for n in built.current_nodes if n.id in {"i-00000000000000000", "i-00000000000000001"}} == {
        "eks-general-1"
    }


def test_a_stale_recommendation_answers_at_once_while_a_worker_plans_it_again(
    auth_client, cluster, queue, monkeypatch, django_capture_on_commit_callbacks
):
    from django.db.models import F

    from agentapi.models import AgentStatus, KubePod
    from optimization import planning, tasks
    from optimization.services import evaluation

    url = f"/api/v1/clusters/{cluster.pk}/recommendation"
    first = auth_client.get(url).json()  # nothing cached: planned in line
    assert first["refreshing"] is False
    planned: list[int] = []
    real = planning.run_plan
    monkeypatch.setattr(planning, "run_plan", lambda problem: planned.append(cluster.pk) or real(problem))

    # a snapshot that changes what the planner sees (one pod asks for more CPU)
    pod = KubePod.objects.filter(cluster=cluster, daemonset=False).order_by("pk").first()
    KubePod.objects.filter(pk=pod.pk).update(cpu_m=F("cpu_m") + 100)
    AgentStatus.objects.filter(cluster=cluster).update(snapshot_generation=F("snapshot_generation") + 1)
    with django_capture_on_commit_callbacks(execute=True):
        stale = auth_client.get(url).json()
        again = auth_client.get(url).json()
    assert stale["refreshing"] is True and again["refreshing"] is True
    assert stale["computed_at"] == first["computed_at"] and planned == []  # answered at once
    assert queue == [(evaluation.REFRESH_TASK, [cluster.pk], None)]  # once for the two reads

    tasks.refresh_recommendation(cluster.pk)  # the worker
    assert planned == [cluster.pk]
    fresh = auth_client.get(url).json()
    assert fresh["refreshing"] is False and fresh["computed_at"] > first["computed_at"]
    assert planned == [cluster.pk]

    # Asked for explicitly: the same problem is the same plan, confirmed at once; a changed one is planned in line.
    refreshed = auth_client.get(url + "?refresh=1").json()
    assert refreshed["refreshing"] is False and refreshed["plan"] == fresh["plan"]
    assert refreshed["computed_at"] > fresh["computed_at"] and planned == [cluster.pk]
    KubePod.objects.filter(pk=pod.pk).update(cpu_m=F("cpu_m") + 100)
    assert auth_client.get(url + "?refresh=1").json()["refreshing"] is False
    assert planned == [cluster.pk, cluster.pk]


def test_a_recommendation_too_old_or_a_dead_cache_plans_in_line(auth_client, cluster, queue, monkeypatch):
    from datetime import timedelta

    from django.core.cache import cache
    from django.utils import timezone

    from optimization.models import Recommendation
    from optimization.services import recommendations
    from spotopt.cache import CacheUnavailable

    url = f"/api/v1/clusters/{cluster.pk}/recommendation"
    auth_client.get(url)
    Recommendation.objects.filter(cluster=cluster).update(
        computed_at=timezone.now() - recommendations.STALE_MAX_AGE - timedelta(seconds=1)
    )
    body = auth_client.get(url).json()
    assert body["refreshing"] is False and queue == []
    assert Recommendation.objects.get(cluster=cluster).computed_at > timezone.now() - timedelta(minutes=1)

    Recommendation.objects.filter(cluster=cluster).update(computed_at=timezone.now() - timedelta(minutes=10))

    def dead(*args, **kwargs):
        raise CacheUnavailable("add")

    monkeypatch.setattr(cache, "add", dead)
    body = auth_client.get(url).json()
    assert body["refreshing"] is False and queue == []
    assert Recommendation.objects.get(cluster=cluster).computed_at > timezone.now() - timedelta(minutes=1)


def test_a_policy_or_template_saved_after_the_recommendation_makes_it_stale(auth_client, cluster):
    from datetime import timedelta

    import time_machine
    from django.utils import timezone

    url = f"/api/v1/clusters/{cluster.pk}/recommendation"
    first = auth_client.get(url).json()
    assert auth_client.get(url).json()["computed_at"] == first["computed_at"]  # cached
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=False):
        template = NodeTemplate.objects.get(organization=cluster.organization)
        template.capacity_types = ["on-demand"]
        template.save()
        second = auth_client.get(url).json()
    assert second["computed_at"] > first["computed_at"]
    assert {n["capacity_type"] for n in second["plan"]["nodes"]} == {"on-demand"}  # planned under the new template
    with time_machine.travel(timezone.now() + timedelta(seconds=10), tick=False):
        assert auth_client.get(url).json()["computed_at"] == second["computed_at"]
        policy = cluster.policy
        policy.headroom_pct = 50
        policy.save()
        third = auth_client.get(url).json()
    assert third["computed_at"] > second["computed_at"]


def test_a_dead_cache_does_not_stop_a_job_from_starting_or_being_approved(auth_client, cluster, queue, monkeypatch):
    from django.core.cache import cache

    from spotopt.cache import CacheUnavailable

    def dead(*args, **kwargs):
        raise CacheUnavailable("add")

    monkeypatch.setattr(cache, "add", dead)
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/jobs", {"dry_run": True}, format="json")
    assert response.status_code == 201, response.content  # the tick advances it: no follow-up could be queued
    assert response.json()["state"] == "planned"
    job = OptimizationJob.objects.get(pk=response.json()["id"])
    job_cancel_url = f"/api/v1/jobs/{job.pk}/cancel"
    assert auth_client.post(job_cancel_url).status_code == 200

    cluster.policy.mode = "recommend"
    cluster.policy.save()
    pending = job_create(cluster=cluster, trigger="schedule", actor="system:schedule")
    assert pending.state == "pending_approval"
    response = auth_client.post(f"/api/v1/jobs/{pending.pk}/approve")
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "planned"


def test_a_job_carries_out_the_fresh_recommendation_without_planning_again(auth_client, cluster, monkeypatch):
    from optimization.services import jobs as job_services

    recommendation = auth_client.get(f"/api/v1/clusters/{cluster.pk}/recommendation").json()
    planned: list[int] = []
    real = job_services.plan_cluster
    monkeypatch.setattr(job_services, "plan_cluster", lambda c, **kw: planned.append(c.pk) or real(c, **kw))
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/jobs", {"dry_run": True}, format="json")
    assert response.status_code == 201, response.content
    job = OptimizationJob.objects.get(pk=response.json()["id"])
    assert planned == []  # what the operator read is what the job does
    assert job.plan == recommendation["plan"]
    assert job.planned_hourly_cost == Decimal(recommendation["planned_hourly_cost"])
    assert set(job.current_nodes) == {f"i-{i:017d}" for i in range(3)}
    job_services.job_cancel(job=job, actor="system:test")

    template = NodeTemplate.objects.get(organization=cluster.organization)
    template.capacity_types = ["on-demand"]
    template.save()  # the recommendation is stale now: the job plans anew
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/jobs", {"dry_run": True}, format="json")
    assert response.status_code == 201, response.content
    assert planned == [cluster.pk]
    job = OptimizationJob.objects.get(pk=response.json()["id"])
    assert {n["capacity_type"] for n in job.plan["nodes"]} == {"on-demand"}


def test_confirming_a_recommendation_keeps_a_constant_number_of_queries(auth_client, cluster, monkeypatch):
    """A new snapshot of the same problem is confirmed by building the problem again: a constant number of queries,
    whatever the number of pods and nodes."""
    from django.db import connection
    from django.db.models import F
    from django.test.utils import CaptureQueriesContext

    from agentapi.models import AgentStatus, ApiKey
    from optimization import planning

    url = f"/api/v1/clusters/{cluster.pk}/recommendation"
    key = ApiKey.objects.get(cluster=cluster)
    counts = []
    for pods in (6, 40):
        snapshot_ingest(
            api_key=key,
            data={
                "nodes": [_node(f"node-{i}", f"i-{i:017d}") for i in range(3)],
                "pods": [_pod(f"web-{i}", f"node-{i % 3}", 100, 200) for i in range(pods)],
            },
        )
        assert auth_client.get(url).status_code == 200  # planned
        AgentStatus.objects.filter(cluster=cluster).update(snapshot_generation=F("snapshot_generation") + 1)
        real = planning.run_plan
        monkeypatch.setattr(planning, "run_plan", lambda problem: pytest.fail("planned again"))
        with CaptureQueriesContext(connection) as queries:
            body = auth_client.get(url).json()
        monkeypatch.setattr(planning, "run_plan", real)
        assert body["refreshing"] is False
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_apply_on_a_changed_cluster_queues_its_plan_instead_of_planning_in_the_request(
    auth_client, cluster, queue, monkeypatch, django_capture_on_commit_callbacks
):
    """Where tasks go through a broker, a plan of a big cluster takes minutes, past the web server's timeout: a job
    asked for while the recommendation is not fresh queues the refresh and answers 409 plan_pending; once the
    worker has planned, the job carries out that plan without planning in the request."""
    from django.db.models import F

    from agentapi.models import AgentStatus, KubePod
    from optimization import planning, tasks
    from optimization.services import evaluation

    url = f"/api/v1/clusters/{cluster.pk}/jobs"
    auth_client.get(f"/api/v1/clusters/{cluster.pk}/recommendation")  # nothing cached: planned in line
    pod = KubePod.objects.filter(cluster=cluster, daemonset=False).order_by("pk").first()
    KubePod.objects.filter(pk=pod.pk).update(cpu_m=F("cpu_m") + 100)
    AgentStatus.objects.filter(cluster=cluster).update(snapshot_generation=F("snapshot_generation") + 1)
    planned: list[int] = []
    real = planning.run_plan
    monkeypatch.setattr(planning, "run_plan", lambda problem: planned.append(1) or real(problem))

    with django_capture_on_commit_callbacks(execute=True):
        first = auth_client.post(url, {"dry_run": True}, format="json")
        second = auth_client.post(url, {"dry_run": True}, format="json")
    for response in (first, second):
        assert response.status_code == 409, response.content
        assert response.json()["error"]["code"] == "plan_pending"
    assert planned == [] and not OptimizationJob.objects.filter(cluster=cluster).exists()
    assert queue == [(evaluation.REFRESH_TASK, [cluster.pk], None)]  # once for the two requests

    tasks.refresh_recommendation(cluster.pk)  # the worker
    assert planned == [1]
    response = auth_client.post(url, {"dry_run": True}, format="json")
    assert response.status_code == 201, response.content
    assert planned == [1]


def test_apply_on_a_cluster_that_cannot_be_planned_is_still_a_clear_400(auth_client, user, catalog, queue):  # noqa: F811
    bare = ClusterFactory(organization=user.organization)
    response = auth_client.post(f"/api/v1/clusters/{bare.pk}/jobs", {"dry_run": True}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "no_snapshot"
    assert queue == []


@pytest.mark.parametrize("cpu_m", [200_000, 2**62])
def test_a_pod_that_no_instance_type_of_the_template_holds_is_a_clear_400(auth_client, cluster, cpu_m):
    """The agent reports what the pods request: a pod of 200 CPUs (no m5 holds it), or of 2**62 millicores (past
    what the planner takes), made the planner raise and the recommendation answer 500. It is a 400 that says why,
    for the recommendation and for a job, and nothing is stored."""
    key, _ = api_key_create(cluster=cluster, name="agent-2")
    snapshot_ingest(
        api_key=key,
        data={
            "nodes": [_node(f"node-{i}", f"i-{i:017d}") for i in range(3)],
            "pods": [_pod(f"web-{i}", f"node-{i % 3}", 500, 1000) for i in range(6)] + [_pod("huge", "", cpu_m, 1000)],
        },
    )
    response = auth_client.get(f"/api/v1/clusters/{cluster.pk}/recommendation")
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "unplannable"
    assert "'m5'" in error["message"]
    assert ("fits no offering" if cpu_m == 200_000 else "cpu_m: must be <= 1000000000") in error["message"]
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/jobs", {}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "unplannable"
    assert not OptimizationJob.objects.filter(cluster=cluster).exists()
