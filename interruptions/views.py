"""Console: the Interruptions page (pools heat table per region, observed against the Spot Advisor; recent and
unrouted events). The cluster page's timeline is a panel (``hooks.cluster_panel``)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from clusters.selectors import clusters_for_user

from . import rates, selectors
from .filters import InterruptionFilter
from .models import QueueStatus

RECENT = 100


def _heat(rate: float | None) -> int:
    """0-4: the Spot Advisor bucket index nearest the rate, for the cell's colour."""
    if rate is None:
        return 0
    return min(4, int(rate / 0.05))


@login_required
def index(request: HttpRequest) -> HttpResponse:
    org_id = request.user.organization_id
    regions = sorted(set(clusters_for_user(request.user).values_list("region", flat=True))) if org_id else []
    tables = []
    for region in regions:
        pools = rates.pool_rates(organization_id=org_id, region=region)
        tables.append(
            {
                "region": region,
                "pools": [
                    {"pool": p, "heat": _heat(p.blended_rate), "advisor_heat": _heat(p.advisor_rate)} for p in pools
                ],
            }
        )
    filterset = InterruptionFilter(request.GET, queryset=selectors.interruptions_for_user(request.user))
    events = list(filterset.qs[:RECENT])
    unrouted = list(selectors.interruptions_for_user(request.user).filter(routed=False)[:RECENT])
    queues = list(QueueStatus.objects.for_user(request.user).select_related("cloud_account"))
    if request.htmx:
        return render(request, "interruptions/_rows.html", {"events": events})
    return render(
        request,
        "interruptions/index.html",
        {
            "nav": "interruptions",
            "tables": tables,
            "events": events,
            "unrouted": unrouted,
            "queues": queues,
            "filter": filterset,
        },
    )
