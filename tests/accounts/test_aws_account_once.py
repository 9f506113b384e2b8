"""An organization links an AWS account once: a second link is a clear 400 as soon as the account id is known (the
role ARN at creation, STS at validation); two organizations may each link the same AWS account."""

from __future__ import annotations

import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction

from accounts import services
from accounts.models import CloudAccount
from audit.models import AuditLog
from clusters.models import Cluster
from tests.aws_fixtures import ROLE_ACCOUNT, ROLE_ARN
from tests.conftest import client_for
from tests.factories import CloudAccountFactory, OrganizationFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/accounts"
OTHER_ARN = "arn:aws:iam::444455556666:role/SpotOptimizer"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


@pytest.fixture
def linked(user):
    """The organization's active link to AWS account ROLE_ACCOUNT."""
    return CloudAccountFactory(organization=user.organization, name="prod", aws_account_id=ROLE_ACCOUNT)


def test_creating_a_second_link_with_the_same_role_account_is_a_400(auth_client, user, linked) -> None:
    before = (CloudAccount.objects.count(), AuditLog.objects.count())
    response = auth_client.post(
        LIST_URL, {"name": "prod again", "role_arn": ROLE_ARN.replace("SpotOptimizer", "Other")}, format="json"
    )
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "aws_account_already_linked"
    assert ROLE_ACCOUNT in error["message"] and "'prod'" in error["message"]
    assert "role_arn" in error["fields"]
    assert (CloudAccount.objects.count(), AuditLog.objects.count()) == before  # nothing written


def test_the_id_is_known_from_the_role_arn_at_creation(user) -> None:
    account = services.cloud_account_create(organization=user.organization, name="a", role_arn=OTHER_ARN)
    assert account.aws_account_id == "444455556666"


def test_changing_the_role_to_an_already_linked_account_is_a_400(auth_client, user, linked) -> None:
    other = services.cloud_account_create(organization=user.organization, name="staging", role_arn=OTHER_ARN)
    response = auth_client.patch(f"{LIST_URL}/{other.pk}", {"role_arn": ROLE_ARN}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "aws_account_already_linked"
    other.refresh_from_db()
    assert (other.role_arn, other.aws_account_id) == (OTHER_ARN, "444455556666")


def test_validating_keys_of_an_already_linked_account_is_a_400_and_syncs_nothing(auth_client, user, linked, aws):
    # Access keys say nothing about the account until STS answers (moto answers for ROLE_ACCOUNT).
    created = auth_client.post(
        LIST_URL,
        {"name": "keys", "access_key_id": KEY_ID, "secret_access_key": SECRET, "regions": ["us-east-1"]},
        format="json",
    )
    assert created.status_code == 201
    account_id = created.json()["id"]
    response = auth_client.post(f"{LIST_URL}/{account_id}/validate")
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "aws_account_already_linked"
    account = CloudAccount.objects.get(pk=account_id)
    assert account.status == CloudAccount.Status.ERROR and account.aws_account_id == ""
    assert ROLE_ACCOUNT in account.last_error
    # Only an active account is synced: no second set of the same clusters.
    assert auth_client.post(f"{LIST_URL}/{account_id}/sync").status_code == 400
    assert not Cluster.objects.filter(cloud_account_id=account_id).exists()
    linked.refresh_from_db()
    assert linked.status == CloudAccount.Status.ACTIVE


def test_two_organizations_may_each_link_the_same_aws_account(auth_client, linked, aws) -> None:
    other = client_for(UserFactory(organization=OrganizationFactory()))
    created = other.post(LIST_URL, {"name": "theirs", "role_arn": ROLE_ARN, "regions": ["us-east-1"]}, format="json")
    assert created.status_code == 201, created.content
    validated = other.post(f"{LIST_URL}/{created.json()['id']}/validate")
    assert validated.status_code == 200, validated.content
    assert validated.json()["aws_account_id"] == ROLE_ACCOUNT


def test_the_database_refuses_a_second_link(user, linked) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        CloudAccount.objects.create(organization=user.organization, name="dup", aws_account_id=ROLE_ACCOUNT)
    # unknown ids ("") do not collide
    CloudAccount.objects.create(organization=user.organization, name="x")
    CloudAccount.objects.create(organization=user.organization, name="y")


@pytest.mark.django_db(transaction=True)
def test_pg_concurrent_links_of_one_aws_account_let_exactly_one_through() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")
    org = OrganizationFactory()
    attempts = 6
    barrier = threading.Barrier(attempts)
    outcomes: list[str] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            services.cloud_account_create(organization=org, name=f"link-{n}", role_arn=ROLE_ARN, actor="test")
            outcomes.append("created")
        except services.ValidationFailed as exc:
            outcomes.append(exc.code)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["aws_account_already_linked"] * (attempts - 1) + ["created"]
    assert CloudAccount.objects.filter(organization=org, aws_account_id=ROLE_ACCOUNT).count() == 1
