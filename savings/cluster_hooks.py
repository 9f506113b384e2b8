"""The savings section of the cluster page (registered in ``SavingsConfig.ready``; see :mod:`clusters.hooks`): the
cluster's cost against its on-demand baseline, savings by source, spot share, month to date and forecast."""

from __future__ import annotations

from django.http import HttpRequest
from django.template.loader import render_to_string

from clusters import hooks
from clusters.models import Cluster

from . import selectors


def savings_panel(request: HttpRequest, cluster: Cluster) -> str:
    """Six queries (see :func:`savings.selectors.overview`)."""
    context = {"cluster": cluster, "o": selectors.overview(request.user, cluster=cluster)}
    return render_to_string("savings/_cluster_panel.html", context, request=request)


def register() -> None:
    hooks.register_detail_panel("savings", savings_panel)
