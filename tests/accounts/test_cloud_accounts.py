"""Linking AWS accounts: ExternalId, validation through STS (moto), encrypted keys, tenancy, audit."""

from __future__ import annotations

import json
import logging

import pytest
from botocore.stub import Stubber
from django.db import connection
from django.urls import reverse

from accounts import services
from accounts.models import CloudAccount
from audit.models import AuditLog
from cloud import AccountSession, AwsCredentials
from cloud import sts as cloud_sts
from tests.aws_fixtures import NO_SLEEP, ROLE_ACCOUNT, ROLE_ARN
from tests.conftest import client_for
from tests.factories import CloudAccountFactory, ClusterFactory, UserFactory

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAIOSFODNN7EXAMPLE"

pytestmark = pytest.mark.django_db

LIST_URL = "/api/v1/accounts"


def _url(account: CloudAccount, suffix: str = "") -> str:
    return f"/api/v1/accounts/{account.pk}{suffix}"


def test_create_returns_external_id_and_trust_policy(auth_client, user) -> None:
    response = auth_client.post(
        LIST_URL, {"name": "prod", "role_arn": ROLE_ARN, "regions": ["eu-west-1", "us-east-1"]}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["external_id"].startswith("spotopt-")
    assert body["regions"] == ["eu-west-1", "us-east-1"]
    statement = body["trust_policy"]["Statement"][0]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": body["external_id"]}}
    assert "ec2:DescribeInstances" in json.dumps(body["permission_policy"])
    account = CloudAccount.objects.get(pk=body["id"])
    assert account.organization_id == user.organization_id
    assert AuditLog.objects.filter(action="cloud_account.created", resource_id=str(account.pk)).count() == 1


def test_each_account_gets_its_own_external_id(user) -> None:
    a = services.cloud_account_create(organization=user.organization, name="a", role_arn=ROLE_ARN, actor=user)
    b = services.cloud_account_create(
        organization=user.organization, name="b", role_arn="arn:aws:iam::444455556666:role/SpotOptimizer", actor=user
    )
    assert a.external_id != b.external_id


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x", "regions": ["mars-north-1"]}, "regions"),
        ({"name": "x", "role_arn": "arn:aws:iam::12:user/bob"}, "role_arn"),
        ({"name": "x", "access_key_id": KEY_ID}, "secret_access_key"),
        ({"name": ""}, "name"),
    ],
)
def test_create_rejects_bad_input_with_field_errors(auth_client, payload, field) -> None:
    response = auth_client.post(LIST_URL, payload, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not CloudAccount.objects.exists()


def test_validate_assumes_role_with_the_accounts_external_id(auth_client, user, aws, monkeypatch) -> None:
    account = services.cloud_account_create(
        organization=user.organization, name="prod", role_arn=ROLE_ARN, regions=["us-east-1"], actor=user
    )
    calls: list[dict] = []
    real = cloud_sts.assume_role

    def spy(client, **kwargs):
        calls.append(kwargs)
        return real(client, **kwargs)

    monkeypatch.setattr(cloud_sts, "assume_role", spy)
    response = auth_client.post(_url(account, "/validate"))
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "active"
    assert calls and calls[0]["role_arn"] == ROLE_ARN and calls[0]["external_id"] == account.external_id
    account.refresh_from_db()
    assert account.status == CloudAccount.Status.ACTIVE
    assert account.aws_account_id == ROLE_ACCOUNT
    assert account.last_validated_at is not None
    assert AuditLog.objects.filter(action="cloud_account.validated").count() == 1


def _denied_session(account: CloudAccount) -> AccountSession:
    """A session whose STS AssumeRole answers AccessDenied, as AWS does for a wrong ExternalId."""
    session = AccountSession.open(
        AwsCredentials(role_arn=account.role_arn, external_id=account.external_id), endpoint_url="", retry=NO_SLEEP
    )
    client = session.base_client("sts")
    stub = Stubber(client)
    stub.add_client_error(
        "assume_role",
        service_error_code="AccessDenied",
        service_message=f"User: arn:aws:iam::123456789012:root is not authorized to perform: sts:AssumeRole on "
        f"resource: {account.role_arn}",
        http_status_code=403,
    )
    stub.activate()
    session.base_client = lambda *args, **kwargs: client  # type: ignore[method-assign]
    return session


def test_validate_access_denied_fails_cleanly(auth_client, user, aws, monkeypatch) -> None:
    account = services.cloud_account_create(organization=user.organization, name="prod", role_arn=ROLE_ARN, actor=user)
    monkeypatch.setattr(services, "session_for", lambda acc, region=None: _denied_session(acc))
    response = auth_client.post(_url(account, "/validate"))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "aws_validation_failed"
    assert account.external_id in error["message"] and "not authorized" in error["message"]
    account.refresh_from_db()
    assert account.status == CloudAccount.Status.ERROR
    assert account.aws_account_id == ROLE_ACCOUNT  # named by the role ARN; not proven (the status says so)
    assert "not authorized" in account.last_error
    assert AuditLog.objects.filter(action="cloud_account.validation_failed").count() == 1
    assert not AuditLog.objects.filter(action="cloud_account.validated").exists()


def test_validate_without_credentials_is_400(auth_client, user) -> None:
    account = services.cloud_account_create(organization=user.organization, name="bare", actor=user)
    response = auth_client.post(_url(account, "/validate"))
    assert response.status_code == 400
    assert CloudAccount.objects.get(pk=account.pk).status == CloudAccount.Status.PENDING


def test_access_keys_are_encrypted_and_never_returned_or_logged(auth_client, user, aws, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    response = auth_client.post(
        LIST_URL,
        {"name": "keys", "access_key_id": KEY_ID, "secret_access_key": SECRET, "regions": ["us-east-1"]},
        format="json",
    )
    assert response.status_code == 201
    assert SECRET not in response.content.decode() and KEY_ID not in response.content.decode()
    assert response.json()["has_access_keys"] is True
    account_id = response.json()["id"]

    with connection.cursor() as cursor:
        cursor.execute("SELECT encrypted_access_keys FROM accounts WHERE id = %s", [account_id])
        (stored,) = cursor.fetchone()
    assert stored and SECRET not in stored and KEY_ID not in stored

    validated = auth_client.post(f"/api/v1/accounts/{account_id}/validate")
    assert validated.status_code == 200, validated.content  # moto accepts any keys
    for url in (LIST_URL, f"/api/v1/accounts/{account_id}"):
        text = auth_client.get(url).content.decode()
        assert SECRET not in text and KEY_ID not in text
    audit = json.dumps(list(AuditLog.objects.values("before", "after")), default=str)
    assert SECRET not in audit and KEY_ID not in audit
    assert SECRET not in caplog.text


def test_patch_role_puts_account_back_to_pending(auth_client, user) -> None:
    account = CloudAccountFactory(organization=user.organization, status=CloudAccount.Status.ACTIVE)
    new_arn = "arn:aws:iam::444455556666:role/Other"
    response = auth_client.patch(_url(account), {"role_arn": new_arn, "regions": ["eu-west-1"]}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert response.json()["role_arn"] == new_arn
    entry = AuditLog.objects.get(action="cloud_account.updated")
    assert entry.before["role_arn"] != entry.after["role_arn"]


def test_patch_access_keys_replaces_them_encrypted(auth_client, user) -> None:
    account = CloudAccountFactory(organization=user.organization)
    response = auth_client.patch(_url(account), {"access_key_id": KEY_ID, "secret_access_key": SECRET}, format="json")
    assert response.status_code == 200
    account.refresh_from_db()
    assert account.has_access_keys and SECRET not in account.encrypted_access_keys
    from accounts.aws import credentials_for

    assert credentials_for(account).secret_access_key == SECRET


def test_disable_and_delete(auth_client, user) -> None:
    account = CloudAccountFactory(organization=user.organization)
    cluster = ClusterFactory(organization=user.organization, cloud_account=account, source="discovered")
    assert auth_client.post(_url(account, "/disable")).json()["status"] == "disabled"
    assert auth_client.delete(_url(account)).status_code == 204
    cluster.refresh_from_db()
    assert cluster.cloud_account_id is None and cluster.missing_since is not None
    assert AuditLog.objects.filter(action__in=["cloud_account.disabled", "cloud_account.deleted"]).count() == 2


def test_sync_now_queues_discovery(auth_client, user, monkeypatch, django_capture_on_commit_callbacks) -> None:
    account = CloudAccountFactory(organization=user.organization)
    synced: list[int] = []
    from clusters.services import SyncReport

    def fake_sync(*, account, **kwargs):
        synced.append(account.pk)
        return SyncReport(discovery=None, inventory=None)

    monkeypatch.setattr("clusters.services.account_sync", fake_sync)
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(_url(account, "/sync"))
    assert response.status_code == 202
    assert synced == [account.pk]
    assert AuditLog.objects.filter(action="cloud_account.sync_requested").count() == 1


def test_sync_of_pending_account_is_400(auth_client, user) -> None:
    account = CloudAccountFactory(organization=user.organization, status=CloudAccount.Status.PENDING)
    assert auth_client.post(_url(account, "/sync")).status_code == 400


def test_cloudformation_template_download(auth_client, user) -> None:
    account = CloudAccountFactory(organization=user.organization)
    response = auth_client.get(_url(account, "/cloudformation"))
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    template = json.loads(response.content)
    assert template["Parameters"]["ExternalId"]["Default"] == account.external_id


def test_client_cannot_touch_other_orgs_account(auth_client, user) -> None:
    mine = CloudAccountFactory(organization=user.organization)
    theirs = CloudAccountFactory()
    ids = [a["id"] for a in auth_client.get(LIST_URL).json()["results"]]
    assert ids == [mine.pk]
    assert auth_client.get(_url(theirs)).status_code == 404
    assert auth_client.patch(_url(theirs), {"name": "x"}, format="json").status_code == 404
    assert auth_client.post(_url(theirs, "/validate")).status_code == 404
    assert auth_client.post(_url(theirs, "/sync")).status_code == 404
    assert auth_client.delete(_url(theirs)).status_code == 404
    assert CloudAccount.objects.filter(pk=theirs.pk).exists()


def test_super_admin_sees_all_accounts(admin_client_api) -> None:
    CloudAccountFactory.create_batch(2)
    assert admin_client_api.get(LIST_URL).json()["count"] == 2


def test_account_list_query_count(auth_client, user, django_assert_num_queries) -> None:
    for _ in range(3):
        account = CloudAccountFactory(organization=user.organization)
        ClusterFactory(organization=user.organization, cloud_account=account)
    # 1: the user (JWT authentication); 2: COUNT for pagination; 3: the page of accounts with their cluster counts
    with django_assert_num_queries(3):
        response = auth_client.get(LIST_URL)
    assert response.json()["count"] == 3
    assert {a["cluster_count"] for a in response.json()["results"]} == {1}


def test_other_org_user_with_same_account_name_is_fine(user) -> None:
    other = UserFactory()
    services.cloud_account_create(organization=user.organization, name="prod", actor=user)
    services.cloud_account_create(organization=other.organization, name="prod", actor=other)
    assert CloudAccount.objects.filter(name="prod").count() == 2
    assert reverse("cloud-account-list") == LIST_URL
    assert client_for(other).get(LIST_URL).json()["count"] == 1


def test_validate_rejects_regions_the_account_does_not_have(auth_client, user, aws) -> None:
    account = services.cloud_account_create(
        organization=user.organization,
        name="prod",
        role_arn=ROLE_ARN,
        regions=["us-east-1", "xx-nowhere-9"],
        actor=user,
    )
    response = auth_client.post(_url(account, "/validate"))
    assert response.status_code == 400
    assert "xx-nowhere-9" in response.json()["error"]["message"]
    account.refresh_from_db()
    assert account.status == CloudAccount.Status.ERROR


def test_validate_explains_a_missing_permission_policy(auth_client, user, aws, monkeypatch) -> None:
    from cloud import ec2 as cloud_ec2
    from cloud import errors as cloud_errors

    def refused(session, **kwargs):
        raise cloud_errors.AccessDenied("not authorized to perform ec2:DescribeRegions", code="UnauthorizedOperation")

    monkeypatch.setattr(cloud_ec2, "describe_regions", refused)
    account = services.cloud_account_create(organization=user.organization, name="prod", role_arn=ROLE_ARN, actor=user)
    response = auth_client.post(_url(account, "/validate"))
    assert response.status_code == 400
    assert "permission policy" in response.json()["error"]["message"]
    assert CloudAccount.objects.get(pk=account.pk).status == CloudAccount.Status.ERROR
