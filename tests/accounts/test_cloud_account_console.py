"""Console pages for accounts and clusters: the link wizard, actions, tenancy, query counts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import CloudAccount
from tests.aws_fixtures import ROLE_ARN
from tests.factories import CloudAccountFactory, ClusterFactory, InstanceFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser(client, user):
    client.force_login(user)
    return client


def test_link_wizard_creates_account_and_shows_policies(browser, user) -> None:
    response = browser.post("/accounts/", {"name": "prod", "regions": "us-east-1, eu-west-1", "role_arn": ""})
    account = CloudAccount.objects.get(organization=user.organization, name="prod")
    assert response.status_code == 302 and response["Location"] == f"/accounts/{account.pk}/"
    page = browser.get(f"/accounts/{account.pk}/").content.decode()
    assert account.external_id in page
    assert "sts:ExternalId" in page and "ec2:DescribeInstances" in page
    assert f"/accounts/{account.pk}/cloudformation" in page
    download = browser.get(f"/accounts/{account.pk}/cloudformation")
    assert download.status_code == 200 and account.external_id in download.content.decode()


def test_wizard_saves_role_and_validates(browser, user, aws) -> None:
    account = CloudAccountFactory(organization=user.organization, role_arn="", status="pending")
    browser.post(f"/accounts/{account.pk}/", {"name": account.name, "role_arn": ROLE_ARN, "regions": "us-east-1"})
    account.refresh_from_db()
    assert account.role_arn == ROLE_ARN
    response = browser.post(f"/accounts/{account.pk}/validate", follow=True)
    assert "Linked: AWS account 111122223333" in response.content.decode()
    account.refresh_from_db()
    assert account.status == "active"


def test_wizard_shows_form_errors(browser, user) -> None:
    response = browser.post("/accounts/", {"name": "x", "regions": "nowhere", "role_arn": ""})
    assert response.status_code == 200
    assert "Not an AWS region code" in response.content.decode()
    assert not CloudAccount.objects.exists()


def test_console_hides_other_orgs_accounts_and_clusters(browser, user) -> None:
    theirs = CloudAccountFactory()
    their_cluster = ClusterFactory()
    assert browser.get(f"/accounts/{theirs.pk}/").status_code == 404
    assert browser.post(f"/accounts/{theirs.pk}/validate").status_code == 404
    assert browser.post(f"/accounts/{theirs.pk}/delete").status_code == 404
    assert browser.get(f"/clusters/{their_cluster.pk}/").status_code == 404
    assert theirs.name not in browser.get("/accounts/").content.decode()


def test_account_list_page_query_count(browser, user, django_assert_num_queries) -> None:
    for _ in range(3):
        CloudAccountFactory(organization=user.organization)
    # 1 session, 2 user, 3 accounts with cluster counts, 4 the user's organization (top bar)
    with django_assert_num_queries(4):
        assert browser.get("/accounts/").status_code == 200


def test_cluster_pages(browser, user, django_assert_num_queries) -> None:
    cluster = ClusterFactory(organization=user.organization, name="prod")
    InstanceFactory(cluster=cluster, lifecycle="spot", hourly_price=Decimal("0.04"))
    InstanceFactory(cluster=cluster, lifecycle="on-demand", hourly_price=Decimal("0.096"))
    for _ in range(3):
        InstanceFactory(cluster=ClusterFactory(organization=user.organization), hourly_price=Decimal("0.1"))
    # 1 session, 2 user, 3 clusters with stats (one aggregate query), 4 their running instances, 5 on-demand and
    # 6 spot prices (the one cost rule), 7 the user's organization (top bar)
    with django_assert_num_queries(7):
        page = browser.get("/clusters/").content.decode()
    assert "prod" in page and "50%" in page
    detail = browser.get(f"/clusters/{cluster.pk}/").content.decode()
    assert "0.1360" in detail  # current hourly cost
    assert "50% spot" in detail
    partial = browser.get("/clusters/", {"name": "prod"}, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in partial and "prod" in partial


def test_cluster_page_shows_agent_connection(browser, user) -> None:
    from django.utils import timezone

    from agentapi.models import AgentStatus

    cluster = ClusterFactory(organization=user.organization, name="prod")
    page = browser.get(f"/clusters/{cluster.pk}/").content.decode()
    assert 'data-testid="agent-connection">Never connected' in page
    AgentStatus.objects.create(cluster=cluster, last_seen_at=timezone.now(), agent_version="1.2.3", poll_seconds=30,
                               node_count=4, pod_count=17)
    page = browser.get(f"/clusters/{cluster.pk}/").content.decode()
    assert 'data-testid="agent-connection">Connected' in page
    assert "agent 1.2.3" in page and "4 nodes, 17 pods" in page
