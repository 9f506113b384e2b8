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
from cloud import AccountSession, autoscaling, ec2, eks, errors

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
    launch_config: dict[str, Any] = field(default_factory=dict, hash=False)


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
    groups_of: dict[str, set[str]] = {
        name: {g for ng in c.node_groups for g in ng["autoscaling_groups"]} for name, c in found.items()
    }
    for instance in ec2.describe_cluster_instances(session):
        for name in instance.cluster_names:
            if name not in found:
                found[name] = FoundCluster(name=name, kind=Cluster.Kind.SELF_MANAGED, status="ACTIVE")
            if instance.asg_name:
                groups_of.setdefault(name, set()).add(instance.asg_name)
    configs = launch_configs(session, groups_of)
    return {
        name: FoundCluster(**{**c.__dict__, "launch_config": configs.get(name, {})}) for name, c in found.items()
    }


def launch_configs(session: AccountSession, groups_of: dict[str, set[str]]) -> dict[str, dict[str, Any]]:
    """How the platform can launch nodes for each cluster: the launch template and subnets (by zone) of its Auto
    Scaling groups (EKS node groups have one each). Two calls for the whole region."""
    names = sorted({g for groups in groups_of.values() for g in groups})
    if not names:
        return {}
    groups = {g.name: g for g in autoscaling.describe_auto_scaling_groups(session, names=names)}
    subnet_ids = sorted({s for g in groups.values() for s in g.subnet_ids})
    zone_of = ec2.describe_subnets(session, subnet_ids=subnet_ids) if subnet_ids else {}
    configs: dict[str, dict[str, Any]] = {}
    for cluster, group_names in groups_of.items():
        chosen = [groups[n] for n in sorted(group_names) if n in groups and groups[n].launch_template_id]
        if not chosen:
            continue
        subnets: dict[str, str] = {}
        for group in chosen:
            for subnet in group.subnet_ids:
                zone = zone_of.get(subnet)
                if zone and zone not in subnets:
                    subnets[zone] = subnet
        configs[cluster] = {
            "launch_template_id": chosen[0].launch_template_id,
            "launch_template_version": chosen[0].launch_template_version or "$Latest",
            "subnets": subnets,
            "source": "discovered",
            "auto_scaling_group": chosen[0].name,
        }
    return configs


def _facts(cluster: Cluster) -> dict[str, Any]:
    return {
        "name": cluster.name,
        "region": cluster.region,
        "kind": cluster.kind,
        "arn": cluster.arn,
        "kubernetes_version": cluster.kubernetes_version,
        "status": cluster.status,
        "node_groups": cluster.node_groups,
        "launch_config": cluster.launch_config,
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
                launch_config=facts.launch_config,
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
        if facts.launch_config and (cluster.launch_config or {}).get("source") != "manual":
            # An operator's launch configuration wins over what discovery finds.
            cluster.launch_config = facts.launch_config
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
