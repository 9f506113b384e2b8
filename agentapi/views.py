"""Console pages of the agent: every cluster's agent at a glance, and one cluster's agent (status, keys, install
manifest, actions). The status block is a partial that the page includes and that htmx refreshes alone."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from clusters.models import Cluster
from clusters.selectors import cluster_for_user
from spotopt.errors import ApplicationError

from . import selectors, services
from .api import platform_url
from .manifest import render_manifest
from .models import ApiKey


@login_required
@require_GET
def index(request: HttpRequest) -> HttpResponse:
    clusters = selectors.clusters_with_agents(request.user)
    return render(request, "agentapi/index.html", {"nav": "agents", "clusters": clusters})


def _detail_context(request: HttpRequest, cluster: Cluster) -> dict:
    return {
        "nav": "agents",
        "cluster": cluster,
        "overview": selectors.agent_overview(cluster),
        "keys": list(ApiKey.objects.filter(cluster=cluster).order_by("-created_at", "-id")),
        "nodes": list(selectors.cluster_nodes(cluster)[:50]),
    }


@login_required
@require_GET
def detail(request: HttpRequest, cluster_id: int) -> HttpResponse:
    cluster = cluster_for_user(request.user, cluster_id)
    if request.htmx:
        return render(
            request, "agentapi/_status.html", {"cluster": cluster, "overview": selectors.agent_overview(cluster)}
        )
    return render(request, "agentapi/detail.html", _detail_context(request, cluster))


@login_required
@require_POST
def key_create(request: HttpRequest, cluster_id: int) -> HttpResponse:
    cluster = cluster_for_user(request.user, cluster_id)
    try:
        key, raw = services.api_key_create(cluster=cluster, name=request.POST.get("name", ""), actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("agentapi:detail", cluster_id=cluster.pk)
    context = _detail_context(request, cluster) | {
        "new_key": key,
        "raw_key": raw,
        "manifest": render_manifest(raw_key=raw, platform_url=platform_url(request), cluster_name=cluster.name),
    }
    # Rendered, not redirected: the key exists in full only in this response.
    response = render(request, "agentapi/detail.html", context, status=201)
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def key_revoke(request: HttpRequest, cluster_id: int, key_id: int) -> HttpResponse:
    cluster = cluster_for_user(request.user, cluster_id)
    key = get_object_or_404(ApiKey.objects.select_related("cluster"), cluster=cluster, pk=key_id)
    services.api_key_revoke(api_key=key, actor=request.user)
    messages.success(request, f"Key {key.prefix} revoked.")
    return redirect("agentapi:detail", cluster_id=cluster.pk)
