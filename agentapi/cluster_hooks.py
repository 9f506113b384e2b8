"""The agent's contributions to the clusters app's figures and pages (registered in ``AgentapiConfig.ready``; see
:mod:`clusters.hooks`)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string

from clusters import hooks
from clusters.models import Cluster

from .models import AgentStatus, connection_state


def _connection(status: AgentStatus | None) -> str:
    return connection_state(status.last_seen_at, status.poll_seconds) if status else "never"


def agent_column(clusters: list[Cluster]) -> tuple[dict[int, str], dict[str, Any]]:
    """Each cluster's agent connection state, and how many agents are connected. One query."""
    statuses = {s.cluster_id: s for s in AgentStatus.objects.filter(cluster_id__in=[c.pk for c in clusters])}
    states = {c.pk: _connection(statuses.get(c.pk)) for c in clusters}
    return states, {"agents_connected": sum(1 for state in states.values() if state == "connected")}


def agent_panel(request: HttpRequest, cluster: Cluster) -> str:
    """The agent section of the cluster page. One query."""
    status = AgentStatus.objects.filter(cluster=cluster).first()
    context = {"cluster": cluster, "agent": status, "connection": _connection(status)}
    return render_to_string("agentapi/_cluster_panel.html", context, request=request)


def register() -> None:
    hooks.register_summary_column("agent", agent_column)
    hooks.register_detail_panel("agent", agent_panel)
