"""Console: the Optimization page (filters, constant queries), a job's page (plan before/after, steps, approve,
cancel), the cluster page's recommendation with Apply; another organization's job is a 404."""

from __future__ import annotations

import pytest

from optimization.models import OptimizationJob
from optimization.services.jobs import job_create
from optimization.services.recommendations import recommendation_for
from tests.factories import ClusterFactory
from tests.optimization.test_api import cluster  # noqa: F401 - the planned cluster fixture
from tests.templates_app.conftest import catalog  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def console(client, user):
    client.force_login(user)
    return client


def test_job_list_filters_and_keeps_constant_queries(console, cluster, django_assert_max_num_queries):  # noqa: F811
    for state in ("succeeded", "failed", "cancelled"):
        OptimizationJob.objects.create(cluster=cluster, trigger="manual", state=state)
    OptimizationJob.objects.create(cluster=ClusterFactory(), trigger="manual", state="failed")  # another org's
    # session, user, the page of jobs with clusters (+ the base template's context)
    with django_assert_max_num_queries(6):
        body = console.get("/optimization/?state=failed").content.decode()
    assert body.count('data-testid="job-row"') == 1
    rows = console.get("/optimization/", HTTP_HX_REQUEST="true").content.decode()
    assert rows.count('data-testid="job-row"') == 3 and "<html" not in rows


def test_job_page_approve_and_cancel(console, cluster):  # noqa: F811
    job = job_create(cluster=cluster, trigger="schedule", actor="system:schedule", approval_required=True)
    body = console.get(f"/optimization/jobs/{job.pk}/").content.decode()
    assert 'data-testid="approve"' in body and "Before" in body and "After" in body
    assert console.post(f"/optimization/jobs/{job.pk}/approve/").status_code == 302
    job.refresh_from_db()
    assert job.state == "planned"
    steps = console.get(f"/optimization/jobs/{job.pk}/?part=steps", HTTP_HX_REQUEST="true").content.decode()
    assert 'data-testid="job-steps"' in steps and "<html" not in steps
    console.post(f"/optimization/jobs/{job.pk}/cancel/")
    job.refresh_from_db()
    assert job.state == "cancelled"


def test_another_orgs_job_is_404(console, catalog):  # noqa: F811
    job = OptimizationJob.objects.create(cluster=ClusterFactory(), trigger="manual", state="pending_approval")
    assert console.get(f"/optimization/jobs/{job.pk}/").status_code == 404
    assert console.post(f"/optimization/jobs/{job.pk}/approve/").status_code == 404
    assert console.post(f"/optimization/clusters/{job.cluster_id}/apply/").status_code == 404


def test_cluster_page_shows_the_recommendation_and_apply_starts_a_job(console, cluster):  # noqa: F811
    recommendation_for(cluster=cluster)
    body = console.get(f"/clusters/{cluster.pk}/").content.decode()
    assert 'data-testid="optimization-summary"' in body and "/month" in body and 'data-testid="apply"' in body
    response = console.post(f"/optimization/clusters/{cluster.pk}/apply/")
    job = OptimizationJob.objects.get(cluster=cluster)
    assert response.status_code == 302 and response["Location"] == f"/optimization/jobs/{job.pk}/"
    assert (job.trigger, job.state) == ("manual", "planned")


def test_recompute_is_planned_by_a_worker_where_one_runs_tasks(
    console,
    cluster,  # noqa: F811
    queue,
    django_capture_on_commit_callbacks,
):
    from optimization import tasks
    from optimization.models import Recommendation
    from optimization.services import evaluation

    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(f"/optimization/clusters/{cluster.pk}/recommend/", follow=True)
    body = response.content.decode()
    assert "Planning in the background" in body and 'data-testid="planning"' in body
    assert queue == [(evaluation.REFRESH_TASK, [cluster.pk], None)]
    assert not Recommendation.objects.filter(cluster=cluster).exists()  # nothing planned in the request
    console.post(f"/optimization/clusters/{cluster.pk}/recommend/")  # a second click while it runs: not queued again
    assert len(queue) == 1

    tasks.refresh_recommendation(cluster.pk)  # the worker
    body = console.get(f"/clusters/{cluster.pk}/").content.decode()
    assert 'data-testid="planning"' not in body and "/month" in body


def test_apply_on_a_changed_cluster_says_its_plan_is_on_its_way(
    console,
    cluster,  # noqa: F811
    queue,
    django_capture_on_commit_callbacks,
):
    """Where a worker plans, Apply on a cluster whose recommendation is not fresh queues the plan and says so on
    the cluster page (no job, nothing planned in the request); once planned, Apply starts the job."""
    from django.db.models import F

    from agentapi.models import AgentStatus, KubePod
    from optimization import tasks

    recommendation_for(cluster=cluster)
    KubePod.objects.filter(cluster=cluster, daemonset=False).update(cpu_m=F("cpu_m") + 50)
    AgentStatus.objects.filter(cluster=cluster).update(snapshot_generation=F("snapshot_generation") + 1)
    with django_capture_on_commit_callbacks(execute=True):
        response = console.post(f"/optimization/clusters/{cluster.pk}/apply/", follow=True)
    assert response.redirect_chain[-1][0] == f"/clusters/{cluster.pk}/"
    assert "a new plan is being computed in the background" in response.content.decode()
    assert not OptimizationJob.objects.filter(cluster=cluster).exists() and len(queue) == 1

    tasks.refresh_recommendation(cluster.pk)
    response = console.post(f"/optimization/clusters/{cluster.pk}/apply/")
    job = OptimizationJob.objects.get(cluster=cluster)
    assert response["Location"] == f"/optimization/jobs/{job.pk}/"
