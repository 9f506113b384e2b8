"""Shared reads of the agent channel, for the API and the console."""

from __future__ import annotations

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from clusters.models import Cluster

from .models import AgentAction, AgentStatus, KubeNode, KubePod, connection_state

RECENT_ACTIONS = 20


def cluster_nodes(cluster: Cluster) -> QuerySet[KubeNode]:
    """The snapshot's nodes with their instance and their pod count, in one query per page."""
    pods = (
        KubePod.objects.filter(cluster_id=OuterRef("cluster_id"), node_name=OuterRef("name"))
        .order_by()
        .values("node_name")
        .annotate(n=Count("id"))
        .values("n")
    )
    return (
        KubeNode.objects.filter(cluster=cluster)
        .select_related("instance")
        .annotate(pod_count=Coalesce(Subquery(pods, output_field=IntegerField()), 0))
        .order_by("name", "id")
    )


def clusters_with_agents(user) -> list[Cluster]:
    """The caller's clusters by name, each with ``connection`` (its agent's state) and ``pending`` (open actions).
    One query."""
    clusters = list(
        Cluster.objects.for_user(user)
        .select_related("agent_status")
        .annotate(pending=Count("agent_actions", filter=Q(agent_actions__state__in=AgentAction.OPEN_STATES)))
        .order_by("name", "id")
    )
    for cluster in clusters:
        status = getattr(cluster, "agent_status", None)
        cluster.connection = connection_state(status.last_seen_at, status.poll_seconds) if status else "never"
    return clusters


def agent_overview(cluster: Cluster) -> dict:
    """Connection state, versions and the pending and recent actions of a cluster's agent (3 queries)."""
    status = AgentStatus.objects.filter(cluster=cluster).first()
    pending = list(AgentAction.objects.filter(cluster=cluster).open().order_by("created_at", "id"))
    recent = list(
        AgentAction.objects.filter(cluster=cluster, state__in=AgentAction.TERMINAL_STATES).order_by(
            "-finished_at", "-id"
        )[:RECENT_ACTIONS]
    )
    return {
        "connection": connection_state(status.last_seen_at, status.poll_seconds) if status else "never",
        "status": status,
        "pending_actions": pending,
        "recent_actions": recent,
    }
