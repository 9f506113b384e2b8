"""Console pages of the agent: every cluster's agent at a glance, and one cluster's agent (status, keys, install
manifest, actions). The status block is a partial that the page includes and that htmx refreshes alone."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from accounts.crypto import DecryptionFailed, decrypt_text, encrypt_text
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


#: Session key under which a just-created API key waits (encrypted) for the one page that shows it.
NEW_KEY_SESSION = "agentapi.new_key"


@login_required
@require_GET
def detail(request: HttpRequest, cluster_id: int) -> HttpResponse:
    cluster = cluster_for_user(request.user, cluster_id)
    if request.htmx:
        return render(
            request, "agentapi/_status.html", {"cluster": cluster, "overview": selectors.agent_overview(cluster)}
        )
    context = _detail_context(request, cluster)
    created = _pop_new_key(request, cluster)
    if created is None:
        return render(request, "agentapi/detail.html", context)
    key, raw = created
    context |= {
        "new_key": key,
        "raw_key": raw,
        "manifest": render_manifest(raw_key=raw, platform_url=platform_url(request), cluster_name=cluster.name),
    }
    response = render(request, "agentapi/detail.html", context)
    response["Cache-Control"] = "no-store"  # the key exists in full only in this response
    return response


def _pop_new_key(request: HttpRequest, cluster: Cluster) -> tuple[ApiKey, str] | None:
    """The key created by the POST that redirected here, once: it leaves the session as it is shown."""
    pending = request.session.pop(NEW_KEY_SESSION, None)
    if not isinstance(pending, dict) or pending.get("cluster_id") != cluster.pk:
        if pending is not None:
            request.session[NEW_KEY_SESSION] = pending  # meant for another cluster's page
        return None
    key = ApiKey.objects.filter(cluster=cluster, pk=pending.get("key_id")).first()
    if key is None:
        return None
    try:
        return key, decrypt_text(pending["raw"])
    except (DecryptionFailed, KeyError, TypeError):
        return None


@login_required
@require_POST
def key_create(request: HttpRequest, cluster_id: int) -> HttpResponse:
    """Create a key, then redirect (a reload creates nothing): the detail page shows the key once."""
    cluster = cluster_for_user(request.user, cluster_id)
    try:
        key, raw = services.api_key_create(cluster=cluster, name=request.POST.get("name", ""), actor=request.user)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("agentapi:detail", cluster_id=cluster.pk)
    request.session[NEW_KEY_SESSION] = {"cluster_id": cluster.pk, "key_id": key.pk, "raw": encrypt_text(raw)}
    return redirect("agentapi:detail", cluster_id=cluster.pk)


@login_required
@require_POST
def key_revoke(request: HttpRequest, cluster_id: int, key_id: int) -> HttpResponse:
    cluster = cluster_for_user(request.user, cluster_id)
    key = get_object_or_404(ApiKey.objects.select_related("cluster"), cluster=cluster, pk=key_id)
    services.api_key_revoke(api_key=key, actor=request.user)
    messages.success(request, f"Key {key.prefix} revoked.")
    return redirect("agentapi:detail", cluster_id=cluster.pk)
