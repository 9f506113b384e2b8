"""Discovery: find the Kubernetes clusters of a linked account, region by region.

EKS clusters (with their managed node groups) come from the EKS API; self-managed clusters from EC2 instances tagged
``kubernetes.io/cluster/<name>`` that no EKS cluster claims. Clusters that are no longer found are marked
(``missing_since``), never deleted; a region that cannot be read marks nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.aws import session_for
from accounts.models import CloudAccount
from audit.services import record
from cloud import AccountSession, ec2, eks, errors

from .models import Cluster

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FoundCluster:
    """What discovery learned about one cluster in one region."""

    name: str
    kind: str
    arn: str = ""
    version: str = ""
    status: str = ""
    node_groups: list[dict[str, Any]] = field(default_factory=list, hash=False)


@dataclass
class DiscoveryReport:
    account_id: int
    found: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def find_clusters(session: AccountSession) -> dict[str, FoundCluster]:
    """Every cluster visible in the session's region, by name (EKS first; tags for the rest)."""
    found: dict[str, FoundCluster] = {}
    for name in eks.list_clusters(session):
        cluster = eks.describe_cluster(session, name=name)
        groups = [
            {
                "name": g.name,
                "status": g.status,
                "capacity_type": g.capacity_type,
                "instance_types": list(g.instance_types),
                "min_size": g.min_size,
                "max_size": g.max_size,
                "desired_size": g.desired_size,
                "autoscaling_groups": list(g.autoscaling_groups),
            }
            for g in eks.describe_node_groups(session, cluster_name=name)
        ]
        found[name] = FoundCluster(
            name=name,
            kind=Cluster.Kind.EKS,
            arn=cluster.arn,
            version=cluster.version,
            status=cluster.status,
            node_groups=groups,
        )
    for instance in ec2.describe_cluster_instances(session):
        for name in instance.cluster_names:
            if name not in found:
                found[name] = FoundCluster(name=name, kind=Cluster.Kind.SELF_MANAGED, status="ACTIVE")
    return found


def _facts(cluster: Cluster) -> dict[str, Any]:
    return {
        "name": cluster.name,
        "region": cluster.region,
        "kind": cluster.kind,
        "arn": cluster.arn,
        "kubernetes_version": cluster.kubernetes_version,
        "status": cluster.status,
        "node_groups": cluster.node_groups,
    }


def _apply_region(account: CloudAccount, region: str, found: dict[str, FoundCluster], report: DiscoveryReport) -> None:
    now = timezone.now()
    # Serialize discoveries of the same account (beat and "Sync now" may overlap): the second waits here, then sees
    # the first one's rows instead of inserting duplicates.
    CloudAccount.objects.select_for_update().filter(pk=account.pk).first()
    existing = {
        c.name: c
        for c in Cluster.objects.select_for_update().filter(
            organization_id=account.organization_id, cloud_account=account, region=region
        )
    }
    for name, facts in sorted(found.items()):
        report.found.append(f"{region}/{name}")
        cluster = existing.get(name)
        if cluster is None:
            cluster = Cluster.objects.create(
                organization_id=account.organization_id,
                cloud_account=account,
                region=region,
                name=name,
                kind=facts.kind,
                source=Cluster.Source.DISCOVERED,
                arn=facts.arn,
                kubernetes_version=facts.version,
                status=facts.status,
                node_groups=facts.node_groups,
                last_seen_at=now,
            )
            report.created.append(f"{region}/{name}")
            record(
                action="cluster.discovered",
                organization_id=account.organization_id,
                actor="system:discovery",
                resource=cluster,
                after=_facts(cluster),
            )
            continue
        before = _facts(cluster)
        reappeared = cluster.missing_since is not None
        cluster.kind = facts.kind
        cluster.arn = facts.arn or cluster.arn
        cluster.kubernetes_version = facts.version or cluster.kubernetes_version
        cluster.status = facts.status
        cluster.node_groups = facts.node_groups
        cluster.missing_since = None
        cluster.last_seen_at = now
        cluster.save()
        after = _facts(cluster)
        if reappeared or after != before:
            record(
                action="cluster.reappeared" if reappeared else "cluster.updated",
                organization_id=account.organization_id,
                actor="system:discovery",
                resource=cluster,
                before=before,
                after=after,
            )
    for name, cluster in existing.items():
        if name in found or cluster.source != Cluster.Source.DISCOVERED or cluster.missing_since is not None:
            continue
        cluster.missing_since = now
        cluster.save(update_fields=["missing_since", "updated_at"])
        report.missing.append(f"{region}/{name}")
        record(
            action="cluster.missing",
            organization_id=account.organization_id,
            actor="system:discovery",
            resource=cluster,
            after={"missing_since": now},
        )


def discover_account(*, account: CloudAccount, session: AccountSession | None = None) -> DiscoveryReport:
    """Discover the clusters of every enabled region of ``account``. Idempotent; one failing region is reported and
    leaves that region's clusters untouched."""
    report = DiscoveryReport(account_id=account.pk)
    base = session or session_for(account)
    for region in account.regions:
        try:
            found = find_clusters(base.for_region(region))
        except errors.CloudError as exc:
            logger.warning("discovery of account %s in %s failed: %s", account.pk, region, exc)
            report.errors[region] = str(exc)
            if isinstance(exc, errors.AccessDenied):
                break  # the same credentials will be refused in every region
            continue
        with transaction.atomic():
            _apply_region(account, region, found, report)
    return report
