"""Discovery against moto: EKS and tag-based clusters in several regions; missing clusters marked, not deleted."""

from __future__ import annotations

import boto3
import pytest

from audit.models import AuditLog
from cloud import errors
from clusters import discovery
from clusters.discovery import discover_account
from clusters.models import Cluster
from tests.aws_fixtures import ROLE_ARN, create_eks_cluster, launch, role_session
from tests.factories import CloudAccountFactory, ClusterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def account(aws):
    return CloudAccountFactory(role_arn=ROLE_ARN, regions=["us-east-1", "eu-west-1"])


@pytest.fixture
def estate(aws) -> None:
    """us-east-1: EKS "alpha" (node group, tagged nodes); eu-west-1: self-managed "kops" and EKS "beta"."""
    create_eks_cluster("us-east-1", "alpha", node_group="spot-workers")
    launch("us-east-1", cluster="alpha", count=2, spot=True)
    launch("eu-west-1", cluster="kops", count=2)
    launch("eu-west-1", cluster=None)  # not a Kubernetes node
    create_eks_cluster("eu-west-1", "beta")


def _clusters(account) -> dict[tuple[str, str], Cluster]:
    return {(c.region, c.name): c for c in Cluster.objects.filter(cloud_account=account)}


def test_discovers_eks_and_tagged_clusters_in_several_regions(account, estate) -> None:
    report = discover_account(account=account, session=role_session(account.external_id))
    assert report.ok
    found = _clusters(account)
    assert set(found) == {("us-east-1", "alpha"), ("eu-west-1", "kops"), ("eu-west-1", "beta")}
    alpha = found[("us-east-1", "alpha")]
    assert alpha.kind == Cluster.Kind.EKS
    assert alpha.source == Cluster.Source.DISCOVERED
    assert alpha.kubernetes_version == "1.31"
    assert alpha.arn.startswith("arn:aws:eks:us-east-1:")
    assert alpha.node_groups[0]["name"] == "spot-workers"
    assert alpha.node_groups[0]["capacity_type"] == "SPOT"
    assert alpha.node_groups[0]["desired_size"] == 2
    assert found[("eu-west-1", "kops")].kind == Cluster.Kind.SELF_MANAGED
    assert all(c.organization_id == account.organization_id for c in found.values())
    assert AuditLog.objects.filter(action="cluster.discovered").count() == 3


def test_discovery_is_idempotent(account, estate) -> None:
    session = role_session(account.external_id)
    discover_account(account=account, session=session)
    before = {k: (c.pk, c.kind) for k, c in _clusters(account).items()}
    audit_count = AuditLog.objects.count()
    discover_account(account=account, session=session)
    assert {k: (c.pk, c.kind) for k, c in _clusters(account).items()} == before
    assert AuditLog.objects.count() == audit_count


def test_disappeared_cluster_is_marked_missing_not_deleted(account, estate) -> None:
    session = role_session(account.external_id)
    discover_account(account=account, session=session)
    boto3.client("eks", region_name="eu-west-1").delete_cluster(name="beta")
    report = discover_account(account=account, session=session)
    assert report.missing == ["eu-west-1/beta"]
    beta = _clusters(account)[("eu-west-1", "beta")]
    assert beta.missing_since is not None
    assert _clusters(account)[("us-east-1", "alpha")].missing_since is None
    # It comes back: unmarked.
    create_eks_cluster("eu-west-1", "beta")
    discover_account(account=account, session=session)
    assert _clusters(account)[("eu-west-1", "beta")].missing_since is None
    assert AuditLog.objects.filter(action="cluster.reappeared").count() == 1


def test_manual_clusters_are_never_marked_missing(account, estate) -> None:
    manual = ClusterFactory(
        organization=account.organization, cloud_account=account, region="us-east-1", name="onprem", source="manual"
    )
    discover_account(account=account, session=role_session(account.external_id))
    manual.refresh_from_db()
    assert manual.missing_since is None


def test_failing_region_leaves_its_clusters_alone(account, estate, monkeypatch) -> None:
    session = role_session(account.external_id)
    discover_account(account=account, session=session)
    boto3.client("eks", region_name="eu-west-1").delete_cluster(name="beta")
    real = discovery.find_clusters

    def flaky(region_session):
        if region_session.region == "eu-west-1":
            raise errors.Unavailable("endpoint down", service="eks")
        return real(region_session)

    monkeypatch.setattr(discovery, "find_clusters", flaky)
    report = discover_account(account=account, session=session)
    assert "eu-west-1" in report.errors
    assert _clusters(account)[("eu-west-1", "beta")].missing_since is None  # not seen != gone
