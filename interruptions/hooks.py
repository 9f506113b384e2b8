"""The interruptions app's registrations with the apps below it (the layer order forbids them to import it): the
agent's events come here, the planner reads the blended rates, the cluster page shows the timeline."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string

from agentapi import event_hooks
from clusters import hooks as cluster_hooks
from clusters.models import Cluster
from optimization import hooks as optimization_hooks

from . import rates, services
from .models import Interruption

TIMELINE_LENGTH = 20


def cluster_panel(request: HttpRequest, cluster: Cluster) -> str:
    """The cluster page's timeline of interruptions and rebalance notices and what was done. One query."""
    items = list(
        Interruption.objects.filter(cluster=cluster)
        .select_related("job")
        .order_by("-occurred_at", "-id")[:TIMELINE_LENGTH]
    )
    return render_to_string("interruptions/_cluster_panel.html", {"cluster": cluster, "items": items}, request=request)


def register() -> None:
    event_hooks.register_event_handler(services.agent_event_handle)
    optimization_hooks.register_rate_source("interruptions", rates.apply_to_offerings)
    cluster_hooks.register_detail_panel("interruptions", cluster_panel)
