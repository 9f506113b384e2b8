"""Recommendations: the latest plan of a cluster, cached (the API, the console and the automatic tick share it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from agentapi.models import AgentStatus
from clusters.models import Cluster

from ..models import Recommendation
from ..planning import PlanResult, plan_cluster

MAX_AGE = timedelta(minutes=5)


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


def recommendation_for(*, cluster: Cluster, refresh: bool = False, now: datetime | None = None) -> Recommendation:
    """The cluster's recommendation: the cached one while it is fresh (same snapshot, under MAX_AGE), else planned
    now. Planning errors (no snapshot, no template) propagate as ApplicationError."""
    now = now or timezone.now()
    cached = Recommendation.objects.filter(cluster=cluster).first()
    generation = AgentStatus.objects.filter(cluster=cluster).values_list("snapshot_generation", flat=True).first() or 0
    if (
        cached is not None
        and not refresh
        and not cached.error
        and cached.snapshot_generation == generation
        and now - cached.computed_at < MAX_AGE
    ):
        return cached
    return recommendation_save(cluster=cluster, result=plan_cluster(cluster, now=now), now=now)
