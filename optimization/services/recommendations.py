"""Recommendations: the latest plan of a cluster, cached (the API, the console and the automatic tick share it).

A plan of a big cluster takes a minute or more, and every agent snapshot makes the cached one stale: where tasks go
through a broker, a read of a stale recommendation (under ``STALE_MAX_AGE``) answers it at once, marked, and queues
its refresh (``optimization.tasks.refresh_recommendation``, one at a time per cluster): stale while it revalidates.
Asked for with ``refresh``, with nothing cached, with an error cached or older than that, it plans in line."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from agentapi.models import AgentStatus
from clusters.models import Cluster
from clusters.policy_services import effective_template, policy_for
from spotopt.errors import ApplicationError

from ..models import Recommendation
from ..planning import PlanResult, build_problem, plan_cluster
from . import evaluation

MAX_AGE = timedelta(minutes=5)
#: A stale recommendation younger than this answers while its refresh runs; an older one is planned again in line.
STALE_MAX_AGE = timedelta(hours=1)


def recommendation_save(
    *, cluster: Cluster, result: PlanResult | None, error: str = "", now: datetime | None = None
) -> Recommendation:
    """Store the cluster's latest plan (or why there is none)."""
    now = now or timezone.now()
    generation = AgentStatus.objects.filter(cluster=cluster).values_list("snapshot_generation", flat=True).first() or 0
    if result is None:
        values = {
            "plan": {},
            "current_hourly_cost": Decimal(0),
            "planned_hourly_cost": Decimal(0),
            "saving_hourly": Decimal(0),
            "saving_pct": Decimal(0),
            "error": error[:4000],
        }
    else:
        values = {
            "plan": {**result.plan, "notes": result.notes},
            "current_hourly_cost": result.built.current_hourly_cost,
            "planned_hourly_cost": result.planned_hourly_cost,
            "saving_hourly": result.saving_hourly,
            "saving_pct": result.saving_pct,
            "error": "",
        }
    row, _ = Recommendation.objects.update_or_create(
        cluster=cluster, defaults={**values, "snapshot_generation": generation, "computed_at": now}
    )
    return row


def _settings_changed(cluster: Cluster, cached: Recommendation) -> bool:
    """The cluster's policy or the template it plans with was saved after the recommendation was computed."""
    policy = policy_for(cluster)
    template = effective_template(policy)
    changed = [policy.updated_at] + ([template.updated_at] if template is not None else [])
    return any(at > cached.computed_at for at in changed)


def fresh_result(*, cluster: Cluster, now: datetime | None = None) -> PlanResult | None:
    """The cached recommendation as a plan to carry out, when it is fresh (same snapshot, under MAX_AGE, policy and
    template not saved since, no error): what the operator just read is what the job does, without planning it
    again in the request (the job's validation plans again anyway, in the worker)."""
    now = now or timezone.now()
    cached = Recommendation.objects.filter(cluster=cluster).first()
    generation = AgentStatus.objects.filter(cluster=cluster).values_list("snapshot_generation", flat=True).first() or 0
    if (
        cached is None
        or cached.error
        or not cached.plan
        or cached.snapshot_generation != generation
        or now - cached.computed_at >= MAX_AGE
        or _settings_changed(cluster, cached)
    ):
        return None
    return PlanResult(
        built=build_problem(cluster, now=now),
        plan=cached.plan,
        planned_hourly_cost=cached.planned_hourly_cost,
        saving_hourly=cached.saving_hourly,
        saving_pct=cached.saving_pct,
        notes=list(cached.plan.get("notes") or []),
    )


def recommendation_for(*, cluster: Cluster, refresh: bool = False, now: datetime | None = None) -> Recommendation:
    """The cluster's recommendation: the cached one while it is fresh (same snapshot, under MAX_AGE, policy and
    template not saved since); a stale one
    (under STALE_MAX_AGE) with ``refreshing`` set while a worker plans it again; else planned now. Planning errors
    (no snapshot, no template) propagate as ApplicationError."""
    now = now or timezone.now()
    cached = Recommendation.objects.filter(cluster=cluster).first()
    generation = AgentStatus.objects.filter(cluster=cluster).values_list("snapshot_generation", flat=True).first() or 0
    if cached is not None and not refresh and not cached.error:
        age = now - cached.computed_at
        if cached.snapshot_generation == generation and age < MAX_AGE and not _settings_changed(cluster, cached):
            return cached
        if age < STALE_MAX_AGE and evaluation.queues():
            task = evaluation.REFRESH_TASK
            if evaluation.schedule(task, cluster.pk) or evaluation.pending(task, cluster.pk):
                cached.refreshing = True
                return cached
            # Nothing could be queued (cache or broker down): plan in line.
    return recommendation_save(cluster=cluster, result=plan_cluster(cluster, now=now), now=now)


def recommendation_refresh(*, cluster_id: int, now: datetime | None = None) -> Recommendation | None:
    """Plan the cluster again and store it, the error included (the queued refresh of a stale recommendation)."""
    cluster = Cluster.objects.filter(pk=cluster_id).select_related("organization", "cloud_account").first()
    if cluster is None:
        return None
    try:
        result = plan_cluster(cluster, now=now)
    except ApplicationError as exc:
        return recommendation_save(cluster=cluster, result=None, error=exc.message, now=now)
    return recommendation_save(cluster=cluster, result=result, now=now)
