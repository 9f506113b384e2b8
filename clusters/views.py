"""Console pages for clusters: the list (stats per cluster) and the detail (instances, lifecycle mix, cost vs
all-on-demand)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from . import hooks, selectors
from .filters import ClusterFilter


@login_required
def cluster_list(request: HttpRequest) -> HttpResponse:
    filterset = ClusterFilter(request.GET, queryset=selectors.clusters_for_user(request.user))
    clusters = selectors.attach_costs(filterset.qs)
    for cluster in clusters:
        cluster.spot_share_pct = round(selectors.spot_share(cluster) * 100)
    template = "clusters/_cluster_rows.html" if request.htmx else "clusters/cluster_list.html"
    return render(request, template, {"nav": "clusters", "clusters": clusters, "filter": filterset})


@login_required
def cluster_detail(request: HttpRequest, pk: int) -> HttpResponse:
    cluster = selectors.cluster_for_user(request.user, pk)
    instances = list(selectors.cluster_instances(cluster, include_closed=request.GET.get("closed") == "1"))
    cost = selectors.cost_breakdown(cluster, instances)
    context = {
        "nav": "clusters",
        "cluster": cluster,
        "panels": [render_panel(request, cluster) for render_panel in hooks.detail_panels().values()],
        "instances": instances,
        "cost": cost,
        "spot_pct": round(100 * cost["spot"] / cost["nodes"]) if cost["nodes"] else 0,
        "show_closed": request.GET.get("closed") == "1",
    }
    return render(request, "clusters/cluster_detail.html", context)
