"""The optimization section of the cluster page (registered in ``OptimizationConfig.ready``; see
:mod:`clusters.hooks`): the cached recommendation with an Apply button, and the cluster's active job."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string

from clusters import hooks
from clusters.models import Cluster

from .models import OptimizationJob, Recommendation
from .serializers import RecommendationSerializer
from .services import evaluation


def optimization_panel(request: HttpRequest, cluster: Cluster) -> str:
    """Two queries: the recommendation and the newest job. Nothing is planned while the page renders."""
    recommendation = Recommendation.objects.filter(cluster=cluster).first()
    job = OptimizationJob.objects.filter(cluster=cluster).order_by("-created_at", "-id").first()
    context = {
        "cluster": cluster,
        "recommendation": recommendation,
        "summary": RecommendationSerializer(recommendation).data
        if recommendation and not recommendation.error
        else None,
        "job": job,
        # A queued or running Recompute (a cache key, no query).
        "planning": evaluation.pending(evaluation.REFRESH_TASK, cluster.pk),
    }
    return render_to_string("optimization/_cluster_panel.html", context, request=request)


def register() -> None:
    hooks.register_detail_panel("optimization", optimization_panel)
