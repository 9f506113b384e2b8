"""Tenancy-scoped reads of clusters and their instances."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet

from pricing import selectors as prices
from spotopt.tenancy import get_for_user

from . import hooks
from .models import Cluster, Instance

#: Instances that run (and cost) right now.
ACTIVE_STATES = ("pending", "running")
_ACTIVE = Q(instances__terminated_at__isnull=True, instances__state__in=ACTIVE_STATES)
ZERO = Decimal("0")


def clusters_with_stats(queryset: QuerySet[Cluster]) -> QuerySet[Cluster]:
    """Annotate node_count and spot_count (of running instances). Still one query. Costs are not sums of a column:
    :func:`attach_costs` prices the running instances by the one cost rule."""
    return queryset.select_related("cloud_account").annotate(
        node_count=Count("instances", filter=_ACTIVE),
        spot_count=Count("instances", filter=_ACTIVE & Q(instances__lifecycle=Instance.Lifecycle.SPOT)),
    )


def clusters_for_user(user) -> QuerySet[Cluster]:
    """The caller's clusters with their stats, ordered by name. One query."""
    return clusters_with_stats(Cluster.objects.for_user(user)).order_by("name", "id")


def cluster_for_user(user, cluster_id, *, for_update: bool = False) -> Cluster:
    """The one way to fetch a tenant's cluster for a view, an API or a console page: one of the caller's clusters
    with its organization and cloud account, or 404 (another organization's cluster, a missing or malformed id).
    ``for_update`` locks the cluster's row (only), inside the caller's transaction. One query."""
    qs = Cluster.objects.select_related("organization", "cloud_account")
    if for_update:
        qs = qs.select_for_update(of=("self",))
    return get_for_user(qs, user, pk=cluster_id)


def cluster_instances(cluster: Cluster, *, include_closed: bool = False) -> QuerySet[Instance]:
    qs = cluster.instances.annotate(region=F("cluster__region"))
    if not include_closed:
        qs = qs.filter(terminated_at__isnull=True)
    return qs.order_by("-launch_time", "instance_id")


def is_running(instance: Instance) -> bool:
    return instance.terminated_at is None and instance.state in ACTIVE_STATES


def price_instances(instances: Iterable[Instance], *, at: datetime | None = None) -> list[Instance]:
    """Set ``price`` (USD/h at ``at``, default now, by the one cost rule of :mod:`pricing`) and ``on_demand_price`` on
    each instance. An instance that no longer runs keeps the price it was recorded at. Each instance needs a
    ``region`` attribute (``annotate(region=F("cluster__region"))``). Two queries, none when nothing runs."""
    instances = list(instances)
    live = [i for i in instances if is_running(i)]
    book = prices.price_book({(i.region, i.instance_type) for i in live}, at=at)
    for instance in instances:
        if is_running(instance):
            itype, region, recorded = instance.instance_type, instance.region, instance.hourly_price
            instance.price = book.price(itype, instance.zone, instance.lifecycle, region, recorded=recorded)
            instance.on_demand_price = book.on_demand_price(itype, region)
        else:
            instance.price = instance.hourly_price
            instance.on_demand_price = None
    return instances


def _costs(instances: Iterable[Instance]) -> dict[str, object]:
    """Totals of priced running instances: cost now, the same instances all on-demand, and how many are unpriced."""
    running = [i for i in instances if is_running(i)]
    hourly = sum((i.price or ZERO for i in running), ZERO)
    all_on_demand = sum((i.on_demand_price or i.price or ZERO for i in running), ZERO)
    unpriced = sum(1 for i in running if i.price is None)
    return {"hourly_cost": hourly, "all_on_demand_hourly_cost": all_on_demand, "unpriced": unpriced}


def attach_costs(clusters: Iterable[Cluster], *, at: datetime | None = None) -> list[Cluster]:
    """Set ``hourly_cost`` and ``all_on_demand_hourly_cost`` (USD/h at ``at``) on each cluster. Three queries
    whatever the number of clusters and instances (running instances, on-demand prices, spot prices).

    The instances are read as plain rows and each distinct (type, zone, capacity, region, recorded price) is priced
    once by the one cost rule, the same figures as :func:`price_instances` gives instance by instance."""
    clusters = list(clusters)
    totals: dict[int, list] = {c.pk: [ZERO, ZERO, 0] for c in clusters}
    if clusters:
        rows = list(
            Instance.objects.running()
            .filter(cluster_id__in=list(totals), state__in=ACTIVE_STATES)
            .order_by()
            .values_list("cluster_id", "instance_type", "zone", "lifecycle", "cluster__region", "hourly_price")
        )
        book = prices.price_book({(region, itype) for _, itype, _, _, region, _ in rows}, at=at)
        priced: dict[tuple, tuple[Decimal | None, Decimal | None]] = {}
        for cluster_id, itype, zone, lifecycle, region, recorded in rows:
            key = (itype, zone, lifecycle, region, recorded)
            if key not in priced:
                priced[key] = (
                    book.price(itype, zone, lifecycle, region, recorded=recorded),
                    book.on_demand_price(itype, region),
                )
            price, on_demand = priced[key]
            total = totals[cluster_id]
            total[0] += price or ZERO
            total[1] += on_demand or price or ZERO
            total[2] += price is None
    for cluster in clusters:
        cluster.hourly_cost, cluster.all_on_demand_hourly_cost, cluster.unpriced = totals[cluster.pk]
    return clusters


def with_cost(cluster: Cluster, *, at: datetime | None = None) -> Cluster:
    """Set ``cost`` (:func:`cost_breakdown` of its running instances), ``node_count``, ``spot_count`` and
    ``hourly_cost`` on one cluster. Three queries (instances, on-demand and spot prices)."""
    cluster.cost = cost_breakdown(cluster, list(cluster_instances(cluster)), at=at)
    cluster.node_count, cluster.spot_count = cluster.cost["nodes"], cluster.cost["spot"]
    cluster.hourly_cost = cluster.cost["hourly_cost"]
    cluster.all_on_demand_hourly_cost = cluster.cost["all_on_demand_hourly_cost"]
    return cluster


def spot_share(cluster: Cluster) -> float:
    node_count = getattr(cluster, "node_count", 0) or 0
    return round((getattr(cluster, "spot_count", 0) or 0) / node_count, 4) if node_count else 0.0


def cost_breakdown(cluster: Cluster, instances: list[Instance], *, at: datetime | None = None) -> dict[str, object]:
    """Current hourly cost vs the cost of the same instances all on-demand, and the lifecycle mix. Prices the
    instances (see :func:`price_instances`) unless they already are: at most two queries."""
    if any(not hasattr(i, "price") for i in instances):
        price_instances(instances, at=at)
    running = [i for i in instances if is_running(i)]
    spot = sum(1 for i in running if i.lifecycle == Instance.Lifecycle.SPOT)
    costs = _costs(running)
    return {
        "nodes": len(running),
        "spot": spot,
        "on_demand": len(running) - spot,
        "hourly_cost": costs["hourly_cost"],
        "all_on_demand_hourly_cost": costs["all_on_demand_hourly_cost"],
        "hourly_savings": costs["all_on_demand_hourly_cost"] - costs["hourly_cost"],
        "unpriced": costs["unpriced"],
    }


def organization_summary(user) -> dict[str, object]:
    """The dashboard's figures for the caller's clusters: hourly cost, what the same instances would cost all
    on-demand, the saving, the spot share, and the clusters by cost, with the columns that higher apps register in
    :mod:`clusters.hooks` (the agent's connection). Four queries whatever the number of clusters and instances
    (clusters with stats, running instances, on-demand and spot prices), plus the registered columns' own.
    """
    clusters = attach_costs(clusters_for_user(user))
    hourly = sum((c.hourly_cost for c in clusters), ZERO)
    all_on_demand = sum((c.all_on_demand_hourly_cost for c in clusters), ZERO)
    nodes = sum(c.node_count for c in clusters)
    spot = sum(c.spot_count for c in clusters)
    rows = [
        {"cluster": c, "spot_share": spot_share(c)} for c in sorted(clusters, key=lambda c: (-c.hourly_cost, c.name))
    ]
    totals: dict[str, object] = {}
    for name, fetch in hooks.summary_columns().items():
        per_cluster, extra = fetch(clusters)
        for row in rows:
            row[name] = per_cluster.get(row["cluster"].pk)
        totals.update(extra)
    saving = all_on_demand - hourly
    return {
        **totals,
        "clusters": rows,
        "cluster_count": len(clusters),
        "nodes": nodes,
        "spot_nodes": spot,
        "spot_share": round(spot / nodes, 4) if nodes else 0.0,
        "hourly_cost": hourly,
        "all_on_demand_hourly_cost": all_on_demand,
        "hourly_savings": saving,
        "monthly_savings": (saving * 730).quantize(Decimal("0.01")),
        "savings_pct": round(float(saving / all_on_demand) * 100, 1) if all_on_demand else 0.0,
    }
