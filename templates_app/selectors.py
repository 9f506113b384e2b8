"""Shared reads of node templates, scoped to the caller's organization."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from .models import NodeTemplate


def templates_for(user) -> QuerySet[NodeTemplate]:
    """The caller's templates with ``clusters_count`` (cluster policies naming each). One query."""
    return (
        NodeTemplate.objects.for_user(user)
        .annotate(clusters_count=Count("cluster_policies"))
        .order_by("-is_default", "name", "id")
    )


def default_template(organization_id: int) -> NodeTemplate | None:
    """The organization's default template, or None when it has none. One query."""
    return NodeTemplate.objects.filter(organization_id=organization_id, is_default=True).first()
