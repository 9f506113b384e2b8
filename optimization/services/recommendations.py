"""Recommendations: the latest plan of a cluster, cached (the API, the console and the automatic tick share it).

A plan of a big cluster takes a minute or more, and every agent snapshot makes the cached one stale: where tasks go
through a broker, a read of a stale recommendation (under ``STALE_MAX_AGE``) answers it at once, marked, and queues
its refresh (``optimization.tasks.refresh_recommendation``, one at a time per cluster): stale while it revalidates.
Asked for with ``refresh``, with nothing cached, with an error cached or older than that, it plans in line.

Most snapshots change nothing the planner sees (the same pods on the same nodes, the same prices): each
recommendation keeps the digest of the problem it planned (``problem_digest``), and a cached plan whose problem is
the same as the cluster's problem now *is* the plan of now (the planner is deterministic). Such a recommendation is
confirmed instead of planned again: its snapshot generation and ``computed_at`` move to now, and the tick, a refresh
or a job reuse it. Only the policy or the template saved since (what the problem does not carry: the budget, the
labels) still forces a new plan."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from agentapi.models import AgentStatus
from clusters.models import Cluster
from clusters.policy_services import effective_template, policy_for
from spotopt.errors import ApplicationError

from ..models import Recommendation
from ..planning import ClusterProblem, PlanResult, build_problem, plan_built, problem_digest
from . import evaluation

MAX_AGE = timedelta(minutes=5)
#: A stale recommendation younger than this answers while its refresh runs; an older one is planned again in line.
STALE_MAX_AGE = timedelta(hours=1)


def recommendation_save(
    *, cluster: Cluster, result: PlanResult | None, error: str = "", now: datetime | None = None
) -> Recommendation:
    """Store the cluster's latest plan (or why there is none)."""
    now = now or timezone.now()
    generation = _generation(cluster)
    if result is None:
        values = {
            "plan": {},
            "current_hourly_cost": Decimal(0),
            "planned_hourly_cost": Decimal(0),
            "saving_hourly": Decimal(0),
            "saving_pct": Decimal(0),
            "error": error[:4000],
            "problem_digest": "",
        }
    else:
        values = {
            "plan": {**result.plan, "notes": result.notes},
            "current_hourly_cost": result.built.current_hourly_cost,
            "planned_hourly_cost": result.planned_hourly_cost,
            "saving_hourly": result.saving_hourly,
            "saving_pct": result.saving_pct,
            "error": "",
            "problem_digest": problem_digest(result.built.problem),
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


def _generation(cluster: Cluster) -> int:
    return AgentStatus.objects.filter(cluster=cluster).values_list("snapshot_generation", flat=True).first() or 0


def _as_result(built: ClusterProblem, cached: Recommendation) -> PlanResult:
    return PlanResult(
        built=built,
        plan=cached.plan,
        planned_hourly_cost=cached.planned_hourly_cost,
        saving_hourly=cached.saving_hourly,
        saving_pct=cached.saving_pct,
        notes=list(cached.plan.get("notes") or []),
    )


def _cached_result(built: ClusterProblem, cached: Recommendation | None) -> PlanResult | None:
    """The cached recommendation as the plan of ``built`` when it planned the same problem (and neither the policy
    nor the template was saved since)."""
    if (
        cached is None
        or cached.error
        or not cached.plan
        or not cached.problem_digest
        or cached.problem_digest != problem_digest(built.problem)
        or _settings_changed(built.cluster, cached)
    ):
        return None
    return _as_result(built, cached)


def plan_or_reuse(*, cluster: Cluster, now: datetime | None = None) -> tuple[PlanResult, bool]:
    """The plan of the cluster's problem now: the cached recommendation's when it planned the same problem, else
    planned. Returns (result, reused); raises ApplicationError when the problem cannot be built."""
    built = build_problem(cluster, now=now)
    reused = _cached_result(built, Recommendation.objects.filter(cluster=cluster).first())
    if reused is not None:
        return reused, True
    return plan_built(built), False


def fresh_result(*, cluster: Cluster, now: datetime | None = None) -> PlanResult | None:
    """The cached recommendation as a plan to carry out, when it is fresh (same snapshot, under MAX_AGE, policy and
    template not saved since, no error): what the operator just read is what the job does, without planning it
    again in the request (the job's validation plans again anyway, in the worker)."""
    now = now or timezone.now()
    cached = Recommendation.objects.filter(cluster=cluster).first()
    if cached is None or cached.error or not cached.plan:
        return None
    built = build_problem(cluster, now=now)
    reused = _cached_result(built, cached)
    if reused is not None:
        return reused
    if cached.snapshot_generation != _generation(cluster) or now - cached.computed_at >= MAX_AGE:
        return None
    if _settings_changed(cluster, cached):
        return None
    return _as_result(built, cached)


def recommendation_for(*, cluster: Cluster, refresh: bool = False, now: datetime | None = None) -> Recommendation:
    """The cluster's recommendation: the cached one while it is fresh (same snapshot, under MAX_AGE, policy and
    template not saved since), or confirmed when the cluster's problem is still the one it planned; a stale one
    (under STALE_MAX_AGE) with ``refreshing`` set while a worker plans it again; else planned now. Planning errors
    (no snapshot, no template) propagate as ApplicationError."""
    now = now or timezone.now()
    cached = Recommendation.objects.filter(cluster=cluster).first()
    generation = _generation(cluster)
    built = None
    if cached is not None and not refresh and not cached.error:
        age = now - cached.computed_at
        if cached.snapshot_generation == generation and age < MAX_AGE and not _settings_changed(cluster, cached):
            return cached
        # a new snapshot, or an older plan: still the plan of now when the problem is the same
        try:
            built = build_problem(cluster, now=now)
        except ApplicationError:
            built = None  # planning says why below (or the refresh records it)
        confirmed = _cached_result(built, cached) if built is not None else None
        if confirmed is not None:
            return recommendation_save(cluster=cluster, result=confirmed, now=now)
        if age < STALE_MAX_AGE and evaluation.queues():
            task = evaluation.REFRESH_TASK
            if evaluation.schedule(task, cluster.pk) or evaluation.pending(task, cluster.pk):
                cached.refreshing = True
                return cached
            # Nothing could be queued (cache or broker down): plan in line.
    if built is not None:
        result = plan_built(built)
    else:
        # asked for (``refresh``), nothing cached, an error cached: planned now, unless the cached plan answers
        # the same problem (the same plan, at once)
        result, _ = plan_or_reuse(cluster=cluster, now=now)
    return recommendation_save(cluster=cluster, result=result, now=now)


def recommendation_refresh(*, cluster_id: int, now: datetime | None = None) -> Recommendation | None:
    """Plan the cluster again and store it, the error included (the queued refresh of a stale recommendation)."""
    cluster = Cluster.objects.filter(pk=cluster_id).select_related("organization", "cloud_account").first()
    if cluster is None:
        return None
    try:
        result, _ = plan_or_reuse(cluster=cluster, now=now)
    except ApplicationError as exc:
        return recommendation_save(cluster=cluster, result=None, error=exc.message, now=now)
    return recommendation_save(cluster=cluster, result=result, now=now)
