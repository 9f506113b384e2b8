"""The ICE cache: offerings that answered "insufficient capacity" are left out of plans for a while.

As Karpenter's ``UnavailableOfferingsTTL``: 3 minutes per (instance type, zone, capacity type), per AWS account and
region, in the database so that every worker sees it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.utils import timezone

from clusters.models import Cluster

from .models import UnavailableOffering

TTL = timedelta(minutes=3)


def _scope(cluster: Cluster) -> dict:
    return {"cloud_account_id": cluster.cloud_account_id, "region": cluster.region}


def unavailable_for(cluster: Cluster, *, now: datetime | None = None) -> list[dict[str, str]]:
    """The problem's ``unavailable`` list for the cluster (one query)."""
    now = now or timezone.now()
    rows = (
        UnavailableOffering.objects.filter(**_scope(cluster), expires_at__gt=now)
        .values_list("instance_type", "zone", "capacity_type")
        .distinct()
    )
    return [{"instance_type": t, "zone": z, "capacity_type": c} for t, z, c in sorted(rows)]


def mark_unavailable(
    *,
    cluster: Cluster,
    offerings: Iterable[tuple[str, str, str]],
    reason: str,
    now: datetime | None = None,
    ttl: timedelta = TTL,
) -> int:
    """Put (type, zone, capacity type) pools in the cache for ``ttl`` (TTL unless said otherwise: an interrupted
    pool that is bursting is avoided for an hour); expired rows of the scope are cleared here."""
    now = now or timezone.now()
    UnavailableOffering.objects.filter(**_scope(cluster), expires_at__lte=now).delete()
    rows = [
        UnavailableOffering(
            **_scope(cluster),
            instance_type=itype,
            zone=zone,
            capacity_type=capacity,
            reason=reason[:255],
            created_at=now,
            expires_at=now + ttl,
        )
        for itype, zone, capacity in set(offerings)
    ]
    UnavailableOffering.objects.bulk_create(rows)
    return len(rows)
