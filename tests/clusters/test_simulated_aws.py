"""The embedded default's simulated AWS: moto's server, a demo estate, linked and synced for the demo org."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from accounts.models import CloudAccount
from clusters.models import Cluster, Instance
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_simulated_aws_links_and_discovers_the_demo_estate(monkeypatch, settings) -> None:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    settings.AWS_ENDPOINT_URL = ""  # through the fixture, so that the command's own override is undone afterwards
    user = UserFactory(email="demo@example.test")
    out = StringIO()
    call_command("simulated_aws", "--port", "0", "--demo-email", user.email, "--once", stdout=out)
    assert "2 clusters discovered" in out.getvalue()
    account = CloudAccount.objects.get(organization=user.organization)
    assert account.status == CloudAccount.Status.ACTIVE
    clusters = {c.name: c for c in Cluster.objects.filter(cloud_account=account)}
    assert clusters["shop-prod"].kind == "eks" and clusters["analytics"].kind == "self-managed"
    instances = Instance.objects.filter(cluster__cloud_account=account)
    assert instances.filter(lifecycle="spot").count() == 3
    assert instances.filter(lifecycle="on-demand").count() == 7
    # the managed node group's two nodes (EKS keeps their number) and three self-managed workers
    assert instances.filter(cluster__name="shop-prod", node_group="general").count() == 2
    # discovery found how to launch nodes: the node group's launch template and its subnets
    config = clusters["shop-prod"].launch_config
    assert config["launch_template_id"].startswith("lt-") and "us-east-1a" in config["subnets"]
    assert clusters["analytics"].launch_config["subnets"].keys() == {"eu-west-1a", "eu-west-1b"}
    # the demo cluster converts itself to spot: optimization on, automatic mode
    policy = clusters["shop-prod"].policy
    assert policy.optimization_enabled and policy.mode == "automatic"
