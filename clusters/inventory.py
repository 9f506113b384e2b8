"""Inventory: keep ``Instance`` rows in step with the EC2 instances of each cluster.

One ``DescribeInstances`` per (account, region) finds every instance tagged ``kubernetes.io/cluster/*`` (terminated
ones too, while AWS still lists them); each cluster's rows are then created, updated or closed in bulk. Running it
twice changes nothing the second time. Closed rows (``terminated_at``) are kept for cost history.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.aws import session_for
from accounts.models import CloudAccount
from audit.services import record
from cloud import AccountSession, ec2, errors
from cloud.types import Ec2Instance
from pricing.selectors import PriceBook, price_book

from .models import Cluster, Instance

logger = logging.getLogger(__name__)

#: EC2 states after which an instance costs nothing and never comes back.
ENDED_STATES = frozenset({"terminated"})
_SYNCED_FIELDS = (
    "instance_type",
    "zone",
    "lifecycle",
    "state",
    "launch_time",
    "node_group",
    "asg_name",
    "private_dns",
    "hourly_price",
)


@dataclass
class InventoryReport:
    clusters: int = 0
    added: int = 0
    updated: int = 0
    closed: int = 0
    errors: dict[str, str] = field(default_factory=dict)


@dataclass
class ClusterSync:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    # Only the hourly price moved (spot prices change all the time): saved, but not worth an audit entry.
    repriced: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.closed)


def _values(observed: Ec2Instance, price: Decimal | None) -> dict[str, object]:
    return {
        "instance_type": observed.instance_type,
        "zone": observed.zone,
        "lifecycle": Instance.Lifecycle.SPOT if observed.lifecycle == "spot" else Instance.Lifecycle.ON_DEMAND,
        "state": observed.state,
        "launch_time": observed.launch_time,
        "node_group": observed.node_group,
        "asg_name": observed.asg_name,
        "private_dns": observed.private_dns_name,
        "hourly_price": price,
    }


def sync_cluster_instances(
    *,
    cluster: Cluster,
    observed: Iterable[Ec2Instance],
    prices: PriceBook,
    now: datetime | None = None,
) -> ClusterSync:
    """Bring ``cluster``'s rows in line with ``observed`` (everything AWS lists for it). Each instance is priced by
    the one cost rule over ``prices`` (:func:`pricing.selectors.price_book`), so the whole sync is a fixed number of
    queries."""
    now = now or timezone.now()
    result = ClusterSync()
    existing = {i.instance_id: i for i in Instance.objects.filter(cluster=cluster)}
    seen: set[str] = set()
    to_create: list[Instance] = []
    to_update: list[Instance] = []
    for obs in observed:
        seen.add(obs.instance_id)
        ended = obs.state in ENDED_STATES
        capacity = Instance.Lifecycle.SPOT if obs.lifecycle == "spot" else Instance.Lifecycle.ON_DEMAND
        price = prices.price(obs.instance_type, obs.zone, capacity, cluster.region)
        values = _values(obs, price)
        row = existing.get(obs.instance_id)
        if row is None:
            if ended:
                continue  # ended before we ever saw it: no cost to record
            to_create.append(Instance(cluster=cluster, instance_id=obs.instance_id, **values))
            result.added.append(obs.instance_id)
            continue
        if row.terminated_at is not None:
            continue  # closed rows are history
        if ended:
            values["hourly_price"] = row.hourly_price  # keep the price it was running at
        changed = [name for name in _SYNCED_FIELDS if getattr(row, name) != values[name]]
        for name in changed:
            setattr(row, name, values[name])
        if ended:
            row.terminated_at = now
            result.closed.append(obs.instance_id)
            to_update.append(row)
        elif changed == ["hourly_price"]:
            result.repriced.append(obs.instance_id)
            to_update.append(row)
        elif changed:
            result.updated.append(obs.instance_id)
            to_update.append(row)
    for instance_id, row in existing.items():
        if instance_id not in seen and row.terminated_at is None:
            # AWS no longer lists it at all: it ended long enough ago to have been purged.
            row.state = "terminated"
            row.terminated_at = now
            result.closed.append(instance_id)
            to_update.append(row)
    with transaction.atomic():
        if to_create:
            Instance.objects.bulk_create(to_create, ignore_conflicts=True)
        if to_update:
            Instance.objects.bulk_update(to_update, [*_SYNCED_FIELDS, "terminated_at", "updated_at"])
        Cluster.objects.filter(pk=cluster.pk).update(inventory_synced_at=now)
        if result.changed:
            record(
                action="cluster.inventory_synced",
                organization_id=cluster.organization_id,
                actor="system:inventory",
                resource=cluster,
                after={"added": result.added, "updated": result.updated, "closed": result.closed},
            )
    return result


def sync_account_inventory(*, account: CloudAccount, session: AccountSession | None = None) -> InventoryReport:
    """Sync the instances of every present cluster of ``account``; one region failing does not stop the others."""
    report = InventoryReport()
    clusters = list(Cluster.objects.filter(cloud_account=account, missing_since__isnull=True).order_by("region", "id"))
    by_region: dict[str, list[Cluster]] = defaultdict(list)
    for cluster in clusters:
        by_region[cluster.region].append(cluster)
    base = session or session_for(account)
    for region, region_clusters in sorted(by_region.items()):
        try:
            observed = ec2.describe_cluster_instances(base.for_region(region), include_terminated=True)
        except errors.CloudError as exc:
            logger.warning("inventory of account %s in %s failed: %s", account.pk, region, exc)
            report.errors[region] = str(exc)
            continue
        per_cluster: dict[str, list[Ec2Instance]] = defaultdict(list)
        for instance in observed:
            for name in instance.cluster_names:
                per_cluster[name].append(instance)
        types = {i.instance_type for i in observed}
        book = price_book((region, t) for t in types)
        for cluster in region_clusters:
            sync = sync_cluster_instances(cluster=cluster, observed=per_cluster.get(cluster.name, []), prices=book)
            report.clusters += 1
            report.added += len(sync.added)
            report.updated += len(sync.updated)
            report.closed += len(sync.closed)
    return report
