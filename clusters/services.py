"""Writes for clusters: registration by hand, and the account sync that runs discovery then inventory."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction
from django.utils import timezone

from accounts.aws import session_for
from accounts.models import CloudAccount, Organization
from accounts.services import cloud_account_record_sync
from audit.services import record
from spotopt.errors import ValidationFailed

from .discovery import DiscoveryReport, discover_account
from .inventory import InventoryReport, sync_account_inventory
from .models import Cluster

logger = logging.getLogger(__name__)

CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}$")


def cluster_snapshot(cluster: Cluster) -> dict[str, Any]:
    return {
        "id": cluster.pk,
        "name": cluster.name,
        "region": cluster.region,
        "kind": cluster.kind,
        "source": cluster.source,
        "cloud_account_id": cluster.cloud_account_id,
    }


def cluster_register(
    *,
    organization: Organization,
    name: str,
    region: str,
    kind: str = Cluster.Kind.SELF_MANAGED,
    cloud_account: CloudAccount | None = None,
    actor: Any = None,
) -> Cluster:
    """Register a cluster by hand (on-premises, or before its account is linked) so that an agent can connect."""
    name = (name or "").strip()
    region = (region or "").strip().lower()
    problems: dict[str, list[str]] = {}
    if not CLUSTER_NAME_RE.match(name):
        problems["name"] = ["1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."]
    if not REGION_RE.match(region):
        problems["region"] = ["Not an AWS region code."]
    if kind not in Cluster.Kind.values:
        problems["kind"] = [f"One of: {', '.join(Cluster.Kind.values)}."]
    if cloud_account is not None and cloud_account.organization_id != organization.pk:
        problems["cloud_account"] = ["Not found."]
    if problems:
        field, messages = next(iter(problems.items()))
        raise ValidationFailed(f"{field}: {messages[0]}", fields=problems)
    duplicate = Cluster.objects.filter(
        organization=organization, cloud_account=cloud_account, region=region, name=name
    ).exists()
    if duplicate:
        raise ValidationFailed(
            "A cluster with this name is already registered in this region.", fields={"name": ["Already registered."]}
        )
    with transaction.atomic():
        cluster = Cluster.objects.create(
            organization=organization,
            cloud_account=cloud_account,
            name=name,
            region=region,
            kind=kind,
            source=Cluster.Source.MANUAL,
        )
        record(
            action="cluster.registered",
            organization=organization,
            actor=actor,
            resource=cluster,
            after=cluster_snapshot(cluster),
        )
    return cluster


_UNSET: Any = object()
# What discovery owns on a discovered cluster; only a cluster registered by hand may change them.
DISCOVERY_OWNED = ("name", "region", "kind")


def cluster_update(
    *,
    cluster: Cluster,
    name: str = _UNSET,
    region: str = _UNSET,
    kind: str = _UNSET,
    time_zone: str = _UNSET,
    actor: Any = None,
) -> Cluster:
    """Change a cluster: its time zone (an IANA name, used by schedules), and for a cluster registered by hand its
    name, region and kind (discovery owns those of a discovered cluster). Audited when anything changed."""
    given = {"name": name, "region": region, "kind": kind, "time_zone": time_zone}
    given = {field: value for field, value in given.items() if value is not _UNSET}
    problems: dict[str, list[str]] = {}
    if "name" in given:
        given["name"] = (given["name"] or "").strip()
        if not CLUSTER_NAME_RE.match(given["name"]):
            problems["name"] = ["1-100 letters, digits, '.', '_' or '-', starting with a letter or digit."]
    if "region" in given:
        given["region"] = (given["region"] or "").strip().lower()
        if not REGION_RE.match(given["region"]):
            problems["region"] = ["Not an AWS region code."]
    if "kind" in given and given["kind"] not in Cluster.Kind.values:
        problems["kind"] = [f"One of: {', '.join(Cluster.Kind.values)}."]
    if "time_zone" in given and not _is_time_zone(given["time_zone"]):
        problems["time_zone"] = ["An IANA time zone name, such as Europe/Paris or UTC."]
    if cluster.source == Cluster.Source.DISCOVERED:
        for field in DISCOVERY_OWNED:
            if field in given and given[field] != getattr(cluster, field):
                problems.setdefault(field, []).append("Set by discovery for a discovered cluster.")
    if problems:
        field, messages = next(iter(problems.items()))
        raise ValidationFailed(f"{field}: {messages[0]}", fields=problems)
    before = cluster_snapshot(cluster) | {"time_zone": cluster.time_zone}
    for field, value in given.items():
        setattr(cluster, field, value)
    after = cluster_snapshot(cluster) | {"time_zone": cluster.time_zone}
    if after == before:
        return cluster
    duplicate = (
        Cluster.objects.filter(
            organization_id=cluster.organization_id,
            cloud_account_id=cluster.cloud_account_id,
            region=cluster.region,
            name=cluster.name,
        )
        .exclude(pk=cluster.pk)
        .exists()
    )
    if duplicate:
        raise ValidationFailed(
            "A cluster with this name is already registered in this region.", fields={"name": ["Already registered."]}
        )
    with transaction.atomic():
        cluster.save()
        record(
            action="cluster.updated",
            organization_id=cluster.organization_id,
            actor=actor,
            resource=cluster,
            before=before,
            after=after,
        )
    return cluster


def _is_time_zone(name: Any) -> bool:
    if not isinstance(name, str) or not name or len(name) > 64:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory of the zone database ("Europe")
        return False
    return True


@dataclass
class SyncReport:
    discovery: DiscoveryReport | None
    inventory: InventoryReport | None

    @property
    def errors(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for part in (self.discovery, self.inventory):
            if part is not None:
                found.update(part.errors)
        return found


def account_sync(*, account: CloudAccount, discovery: bool = True, inventory: bool = True) -> SyncReport:
    """Discovery then inventory for one account. Errors of one region are stored on the account, not raised."""
    session = session_for(account)
    discovered = discover_account(account=account, session=session) if discovery else None
    synced = sync_account_inventory(account=account, session=session) if inventory else None
    report = SyncReport(discovery=discovered, inventory=synced)
    cloud_account_record_sync(account=account, errors=report.errors)
    return report


def clusters_mark_unlinked(*, account: CloudAccount, at: datetime) -> int:
    """The account is being unlinked: its discovered clusters that are still present become missing (they keep
    their cost history; the account link itself is cleared by the foreign key). Returns how many."""
    return Cluster.objects.filter(
        cloud_account=account, missing_since__isnull=True, source=Cluster.Source.DISCOVERED
    ).update(missing_since=at)


#: Audit action of a cluster's hibernation state change.
HIBERNATION_STATE_CHANGED = "cluster.hibernation_state_changed"


def cluster_set_hibernation_state(*, cluster: Cluster, state: str, actor: Any = "system:hibernation") -> bool:
    """Move the cluster to ``state`` (awake, sleeping, asleep, waking); audited. Returns False when it already was
    there. Runs in the caller's transaction, so a failed transition leaves the old state and no entry."""
    if state not in Cluster.HibernationState.values:
        raise ValidationFailed(
            f"Unknown hibernation state {state!r}.",
            fields={"hibernation_state": [f"One of: {', '.join(Cluster.HibernationState.values)}."]},
        )
    before = cluster.hibernation_state
    if before == state:
        return False
    now = timezone.now()
    with transaction.atomic():
        Cluster.objects.filter(pk=cluster.pk).update(hibernation_state=state, hibernation_state_changed_at=now)
        cluster.hibernation_state = state
        cluster.hibernation_state_changed_at = now
        record(
            action=HIBERNATION_STATE_CHANGED,
            organization_id=cluster.organization_id,
            actor=actor,
            resource=cluster,
            before={"hibernation_state": before},
            after={"hibernation_state": state},
        )
    return True
