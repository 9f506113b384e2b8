"""Writes for clusters: registration by hand, and the account sync that runs discovery then inventory."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction

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
