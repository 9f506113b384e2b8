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


LAUNCH_TEMPLATE_RE = re.compile(r"^lt-[0-9a-f]{8,32}$")
SUBNET_RE = re.compile(r"^subnet-[0-9a-f]{8,32}$")
ZONE_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-\d{1,2}[a-z]$")


def cluster_set_launch_config(*, cluster: Cluster, data: Any, actor: Any = None) -> Cluster:
    """Set how the platform launches nodes for ``cluster`` (a hand-registered one, or to override discovery):
    ``{"launch_template_id": "lt-…", "launch_template_version": "$Latest"|"$Default"|"<n>",
    "subnets": {"<zone>": "subnet-…"}}``. Marked ``source: manual`` so that discovery leaves it alone. Audited."""
    problems: dict[str, list[str]] = {}
    if not isinstance(data, dict):
        raise ValidationFailed("Expected an object.", fields={"non_field_errors": ["Expected an object."]})
    unknown = set(data) - {"launch_template_id", "launch_template_version", "subnets"}
    for key in sorted(unknown):
        problems[key] = ["Unknown field."]
    template = data.get("launch_template_id")
    if not isinstance(template, str) or not LAUNCH_TEMPLATE_RE.match(template):
        problems["launch_template_id"] = ["A launch template id such as lt-0abc1234def567890."]
    version = data.get("launch_template_version", "$Latest")
    if not isinstance(version, str) or not (version in ("$Latest", "$Default") or version.isdigit()):
        problems["launch_template_version"] = ['"$Latest", "$Default" or a version number.']
    subnets = data.get("subnets")
    if (
        not isinstance(subnets, dict)
        or not subnets
        or not all(isinstance(z, str) and ZONE_RE.match(z) for z in subnets)
        or not all(isinstance(s, str) and SUBNET_RE.match(s) for s in subnets.values())
    ):
        problems["subnets"] = ['{"<zone>": "subnet-…"}, at least one.']
    elif not all(z.startswith(cluster.region) for z in subnets):
        problems["subnets"] = [f"Zones of {cluster.region} only."]
    if problems:
        field, messages = next(iter(problems.items()))
        raise ValidationFailed(f"{field}: {messages[0]}", fields=problems)
    config = {
        "launch_template_id": template,
        "launch_template_version": version,
        "subnets": dict(subnets),
        "source": "manual",
    }
    with transaction.atomic():
        locked = Cluster.objects.select_for_update().get(pk=cluster.pk)
        before = locked.launch_config
        locked.launch_config = config
        locked.save(update_fields=["launch_config", "updated_at"])
        record(
            action="cluster.launch_config_updated",
            organization_id=locked.organization_id,
            actor=actor,
            resource=locked,
            before={"launch_config": before},
            after={"launch_config": config},
        )
    cluster.launch_config = config
    return cluster


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
