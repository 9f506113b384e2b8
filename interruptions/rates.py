"""Interruption rates that reflect what the organization saw.

A pool's (instance type, zone) rate is the Spot Instance Advisor's bucket midpoint for the type (the prior) blended
with the interruptions observed over the last 30 days, observations weighted by the spot node-hours the inventory
saw in the pool:

    rate = (prior × W + interruptions × 730) / (W + node_hours)

a monthly rate (730 hours a month). ``W`` (``INTERRUPTION_PRIOR_NODE_HOURS``, default 2,190: three node-months) is
how much the advisor counts, in node-hours, so ten nodes for a day (240 node-hours) move the rate a tenth of the way
to what they saw. Per organization; nothing of another organization is read."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone

from clusters.models import Instance
from templates_app.services.matching import ADVISOR_BUCKET_LABELS, ADVISOR_BUCKET_RATES, spot_interruption_rates

from .models import Interruption

WINDOW = timedelta(days=30)
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class PoolRate:
    instance_type: str
    zone: str
    advisor_rate: float | None
    advisor_bucket: str | None
    interruptions: int
    node_hours: float
    blended_rate: float | None

    @property
    def bucket(self) -> str | None:
        return nearest_bucket(self.blended_rate)

    @property
    def observed_rate(self) -> float | None:
        """Interruptions per node-month observed (None without node-hours)."""
        if self.node_hours <= 0:
            return None
        return self.interruptions * HOURS_PER_MONTH / self.node_hours


def nearest_bucket(rate: float | None) -> str | None:
    """The Spot Advisor label nearest to a blended rate (what shows buckets shows this)."""
    if rate is None:
        return None
    index = min(range(len(ADVISOR_BUCKET_RATES)), key=lambda i: abs(ADVISOR_BUCKET_RATES[i] - rate))
    return ADVISOR_BUCKET_LABELS[index]


def blend(prior: float | None, interruptions: int, node_hours: float) -> float | None:
    weight = float(settings.INTERRUPTION_PRIOR_NODE_HOURS)
    if prior is None:
        if node_hours <= 0:
            return None
        prior = ADVISOR_BUCKET_RATES[len(ADVISOR_BUCKET_RATES) // 2]  # no advisor figure: the middle bucket
    rate = (prior * weight + interruptions * HOURS_PER_MONTH) / (weight + max(0.0, node_hours))
    return round(min(1.0, rate), 6)


def _node_hours(organization_id: int, region: str, since: datetime, now: datetime) -> dict[tuple[str, str], float]:
    """Spot node-hours per pool in the window, from the inventory (one query)."""
    rows = (
        Instance.objects.filter(
            cluster__organization_id=organization_id,
            cluster__region=region,
            lifecycle=Instance.Lifecycle.SPOT,
        )
        .filter(Q(terminated_at__isnull=True) | Q(terminated_at__gt=since))
        .values_list("instance_type", "zone", "launch_time", "created_at", "terminated_at")
    )
    hours: dict[tuple[str, str], float] = defaultdict(float)
    for itype, zone, launched, created, ended in rows:
        start = max(launched or created, since)
        end = min(ended or now, now)
        if end > start:
            hours[(itype, zone)] += (end - start).total_seconds() / 3600
    return hours


def pool_rates(*, organization_id: int, region: str, now: datetime | None = None) -> list[PoolRate]:
    """Every pool of the region the organization ran spot in or saw interrupted in the last 30 days. Two queries."""
    now = now or timezone.now()
    since = now - WINDOW
    observed = {
        (r["instance_type"], r["zone"]): r["n"]
        for r in Interruption.objects.filter(
            organization_id=organization_id,
            region=region,
            kind=Interruption.Kind.SPOT_INTERRUPTION,
            duplicate_of__isnull=True,
            occurred_at__gte=since,
        )
        .exclude(instance_type="")
        .values("instance_type", "zone")
        .annotate(n=Count("ec2_instance_id", distinct=True))
    }
    hours = _node_hours(organization_id, region, since, now)
    advisor = spot_interruption_rates(region)
    out = []
    for itype, zone in sorted(set(observed) | set(hours)):
        prior = advisor.get(itype)
        count = observed.get((itype, zone), 0)
        node_hours = round(hours.get((itype, zone), 0.0), 2)
        out.append(
            PoolRate(
                instance_type=itype,
                zone=zone,
                advisor_rate=prior,
                advisor_bucket=nearest_bucket(prior),
                interruptions=count,
                node_hours=node_hours,
                blended_rate=blend(prior, count, node_hours),
            )
        )
    return out


def apply_to_offerings(cluster, offerings: list[dict]) -> None:
    """The planner's rate source: each spot offering of the cluster's problem gets its pool's blended rate (the
    advisor's own when the organization has not run or seen the pool). Two queries."""
    rates = {
        (p.instance_type, p.zone): p for p in pool_rates(organization_id=cluster.organization_id, region=cluster.region)
    }
    for offering in offerings:
        if offering.get("capacity_type") != "spot":
            continue
        pool = rates.get((offering["instance_type"], offering["zone"]))
        if pool is not None and pool.blended_rate is not None:
            offering["interruption_rate"] = pool.blended_rate
