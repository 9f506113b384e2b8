"""The Kubernetes manifest that installs the agent in a cluster, shown once with a new key."""

from __future__ import annotations

from django.conf import settings
from django.template.loader import render_to_string

NAMESPACE = "spot-optimizer"


def render_manifest(*, raw_key: str, platform_url: str, cluster_name: str) -> str:
    """Namespace, ServiceAccount, least-privilege ClusterRole and its binding, the key's Secret and the Deployment."""
    return render_to_string(
        "agentapi/manifest.yaml",
        {
            "namespace": NAMESPACE,
            "raw_key": raw_key,
            "platform_url": platform_url.rstrip("/"),
            "cluster_name": cluster_name,
            "image": settings.AGENT_IMAGE,
        },
    )
