"""Tenancy-scoped reads of clusters and their instances."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Count, DecimalField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from pricing import selectors as prices
from spotopt.tenancy import get_for_user

from .models import Cluster, Instance

#: Instances that run (and cost) right now.
ACTIVE_STATES = ("pending", "running")
_ACTIVE = Q(instances__terminated_at__isnull=True, instances__state__in=ACTIVE_STATES)
_MONEY = DecimalField(max_digits=14, decimal_places=6)


def clusters_with_stats(queryset: QuerySet[Cluster]) -> QuerySet[Cluster]:
    """Annotate node_count, spot_count and hourly_cost (of running instances). Still one query."""
    return queryset.select_related("cloud_account").annotate(
        node_count=Count("instances", filter=_ACTIVE),
        spot_count=Count("instances", filter=_ACTIVE & Q(instances__lifecycle=Instance.Lifecycle.SPOT)),
        hourly_cost=Coalesce(Sum("instances__hourly_price", filter=_ACTIVE), Value(Decimal("0")), output_field=_MONEY),
    )


def clusters_for_user(user) -> QuerySet[Cluster]:
    """The caller's clusters with their stats, ordered by name. One query."""
    return clusters_with_stats(Cluster.objects.for_user(user)).order_by("name", "id")


def get_cluster(user, pk) -> Cluster:
    """One of the caller's clusters (with stats), or 404."""
    return get_for_user(clusters_with_stats(Cluster.objects.all()), user, pk=pk)


def cluster_instances(cluster: Cluster, *, include_closed: bool = False) -> QuerySet[Instance]:
    qs = cluster.instances.all()
    if not include_closed:
        qs = qs.filter(terminated_at__isnull=True)
    return qs.order_by("-launch_time", "instance_id")


def spot_share(cluster: Cluster) -> float:
    node_count = getattr(cluster, "node_count", 0) or 0
    return round((getattr(cluster, "spot_count", 0) or 0) / node_count, 4) if node_count else 0.0


def cost_breakdown(cluster: Cluster, instances: list[Instance]) -> dict[str, object]:
    """Current hourly cost vs the cost of the same instances all on-demand, and the lifecycle mix. One query."""
    running = [i for i in instances if i.terminated_at is None and i.state in ACTIVE_STATES]
    on_demand = prices.on_demand_prices(cluster.region, instance_types={i.instance_type for i in running})
    current = sum((i.hourly_price or Decimal("0") for i in running), Decimal("0"))
    all_on_demand = sum((on_demand.get(i.instance_type) or i.hourly_price or Decimal("0") for i in running), Decimal(0))
    spot = sum(1 for i in running if i.lifecycle == Instance.Lifecycle.SPOT)
    return {
        "nodes": len(running),
        "spot": spot,
        "on_demand": len(running) - spot,
        "hourly_cost": current,
        "all_on_demand_hourly_cost": all_on_demand,
        "hourly_savings": all_on_demand - current,
        "unpriced": sum(1 for i in running if i.hourly_price is None),
    }


def organization_summary(user) -> dict[str, object]:
    """The dashboard's figures for the caller's clusters: hourly cost, what the same instances would cost all
    on-demand, the saving, the spot share, and the clusters by cost with their agent's connection. Three queries
    whatever the number of clusters and instances (clusters with stats, running instances' types, on-demand prices).
    """
    from agentapi.models import connection_state  # the agent status is shown beside each cluster

    clusters = list(clusters_for_user(user).select_related("agent_status"))
    running = list(
        Instance.objects.for_user(user)
        .filter(terminated_at__isnull=True, state__in=ACTIVE_STATES)
        .values_list("cluster__region", "instance_type", "hourly_price")
    )
    regions = {region for region, _, _ in running}
    types = {itype for _, itype, _ in running}
    on_demand = prices.on_demand_prices_by_region(regions, instance_types=types) if running else {}
    hourly = sum((price or Decimal(0) for _, _, price in running), Decimal(0))
    all_on_demand = sum(
        (on_demand.get((region, itype)) or price or Decimal(0) for region, itype, price in running), Decimal(0)
    )
    nodes = sum(c.node_count for c in clusters)
    spot = sum(c.spot_count for c in clusters)
    rows = []
    for c in sorted(clusters, key=lambda c: (-c.hourly_cost, c.name)):
        status = getattr(c, "agent_status", None)
        rows.append(
            {
                "cluster": c,
                "spot_share": spot_share(c),
                "agent": connection_state(status.last_seen_at, status.poll_seconds) if status else "never",
            }
        )
    saving = all_on_demand - hourly
    return {
        "clusters": rows,
        "cluster_count": len(clusters),
        "agents_connected": sum(1 for r in rows if r["agent"] == "connected"),
        "nodes": nodes,
        "spot_nodes": spot,
        "spot_share": round(spot / nodes, 4) if nodes else 0.0,
        "hourly_cost": hourly,
        "all_on_demand_hourly_cost": all_on_demand,
        "hourly_savings": saving,
        "monthly_savings": (saving * 730).quantize(Decimal("0.01")),
        "savings_pct": round(float(saving / all_on_demand) * 100, 1) if all_on_demand else 0.0,
    }
