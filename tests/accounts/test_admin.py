"""Organizations, users and cloud accounts in Django admin go through ``accounts.services``: validated (errors on
the form, never a 500), audited with the admin as actor."""

from __future__ import annotations

import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import CloudAccount, Organization, User
from audit.models import AuditLog
from clusters.models import Cluster
from tests.admin_helpers import admin_entry, form_errors, messages_of, post_form
from tests.aws_fixtures import ROLE_ACCOUNT
from tests.factories import DEFAULT_PASSWORD, CloudAccountFactory, ClusterFactory, UserFactory

pytestmark = pytest.mark.django_db

STRONG = "Another-Strong-Pass-42"
ROLE_ARN = f"arn:aws:iam::{ROLE_ACCOUNT}:role/SpotOptimizer"


# --- Organizations ---------------------------------------------------------------------------------------------------


def test_add_and_rename_an_organization(admin_web, super_admin):
    response = post_form(admin_web, "/admin/accounts/organization/add/", {"name": "  Acme  "})
    assert response.status_code == 302, form_errors(response)
    org = Organization.objects.get(name="Acme")
    assert admin_entry("organization.created", super_admin).organization_id == org.pk

    response = post_form(admin_web, f"/admin/accounts/organization/{org.pk}/change/", {"name": "Acme Corp"})
    assert response.status_code == 302, form_errors(response)
    entry = admin_entry("organization.updated", super_admin)
    assert (entry.before["name"], entry.after["name"]) == ("Acme", "Acme Corp")


def test_owner_must_be_a_user_of_the_organization(admin_web, org, other_user):
    response = post_form(admin_web, f"/admin/accounts/organization/{org.pk}/change/", {"owner": other_user.pk})
    assert response.status_code == 200
    assert "owner" in form_errors(response)
    org.refresh_from_db()
    assert org.owner_id is None


def test_organizations_are_not_deleted_from_admin(admin_web, org):
    assert admin_web.get(f"/admin/accounts/organization/{org.pk}/delete/").status_code == 403


# --- Users -----------------------------------------------------------------------------------------------------------


def test_add_a_client_user(admin_web, super_admin, org):
    data = {"email": "New@Example.com", "role": "CLIENT", "organization": org.pk, "password1": STRONG}
    response = post_form(admin_web, "/admin/accounts/user/add/", data | {"password2": STRONG})
    assert response.status_code == 302, form_errors(response)
    user = User.objects.get(email="new@example.com")
    assert user.check_password(STRONG) and not user.is_staff and user.organization == org
    entry = admin_entry("user.created", super_admin)
    assert entry.after["email"] == "new@example.com"
    assert STRONG not in str(entry.after)


def test_weak_password_and_client_without_organization_are_form_errors(admin_web):
    data = {"email": "weak@example.com", "role": "CLIENT", "organization": "", "password1": "123", "password2": "123"}
    response = post_form(admin_web, "/admin/accounts/user/add/", data)
    assert response.status_code == 200
    assert form_errors(response)
    data |= {"password1": STRONG, "password2": STRONG}
    response = post_form(admin_web, "/admin/accounts/user/add/", data)
    assert "organization" in form_errors(response)
    data |= {"organization": "", "role": "SUPER_ADMIN", "password1": "password", "password2": "password"}
    response = post_form(admin_web, "/admin/accounts/user/add/", data)
    assert "password1" in form_errors(response)  # the service's password rules
    assert not User.objects.filter(email="weak@example.com").exists()
    assert not AuditLog.objects.filter(action="user.created").exists()


def test_deactivating_a_user_revokes_its_tokens(admin_web, super_admin, user):
    refresh = RefreshToken.for_user(user)
    response = post_form(admin_web, f"/admin/accounts/user/{user.pk}/change/", {"is_active": None})
    assert response.status_code == 302, form_errors(response)
    user.refresh_from_db()
    assert not user.is_active
    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()
    entry = admin_entry("user.updated", super_admin)
    assert entry.before["is_active"] is True and entry.after["is_active"] is False


def test_promoting_a_user_sets_the_admin_flags(admin_web, super_admin, user):
    response = post_form(admin_web, f"/admin/accounts/user/{user.pk}/change/", {"role": "SUPER_ADMIN"})
    assert response.status_code == 302, form_errors(response)
    user.refresh_from_db()
    assert user.is_super_admin and user.is_staff and user.is_superuser
    assert admin_entry("user.updated", super_admin).after["role"] == "SUPER_ADMIN"


def test_an_admin_cannot_demote_itself(admin_web, super_admin):
    url = f"/admin/accounts/user/{super_admin.pk}/change/"
    response = post_form(admin_web, url, {"role": "CLIENT", "organization": ""})
    assert response.status_code == 200 and form_errors(response)
    super_admin.refresh_from_db()
    assert super_admin.is_super_admin


def test_email_taken_is_a_form_error(admin_web, user, other_user):
    response = post_form(admin_web, f"/admin/accounts/user/{user.pk}/change/", {"email": other_user.email.upper()})
    assert response.status_code == 200
    assert "email" in form_errors(response)


def test_admin_sets_a_password_through_the_service(admin_web, super_admin, user):
    refresh = RefreshToken.for_user(user)
    url = f"/admin/accounts/user/{user.pk}/password/"
    assert admin_web.get(url).status_code == 200
    response = admin_web.post(url, {"password1": STRONG, "password2": STRONG})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(STRONG) and not user.check_password(DEFAULT_PASSWORD)
    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()
    entry = admin_entry("auth.password_set", super_admin)
    assert entry.resource_id == str(user.pk) and entry.after == {"revoked_refresh_tokens": 1}


def test_deactivate_action(admin_web, super_admin, org):
    users = [UserFactory(organization=org) for _ in range(2)]
    response = admin_web.post(
        "/admin/accounts/user/",
        {"action": "deactivate_selected", "_selected_action": [u.pk for u in users]},
        follow=True,
    )
    assert any("Deactivated 2" in m for m in messages_of(response))
    assert not User.objects.filter(pk__in=[u.pk for u in users], is_active=True).exists()
    assert AuditLog.objects.filter(action="user.updated", actor_id=str(super_admin.pk)).count() == 2


def test_users_are_not_deleted_from_admin(admin_web, user):
    assert admin_web.get(f"/admin/accounts/user/{user.pk}/delete/").status_code == 403


# --- Cloud accounts --------------------------------------------------------------------------------------------------

ACCOUNT_ADD = "/admin/accounts/cloudaccount/add/"


def test_link_an_account_in_admin(admin_web, super_admin, org):
    data = {
        "organization": org.pk,
        "name": "prod",
        "role_arn": "arn:aws:iam::123456789012:role/SpotOptimizer",
        "regions": '["eu-west-1"]',
    }
    response = post_form(admin_web, ACCOUNT_ADD, data)
    assert response.status_code == 302, form_errors(response)
    account = CloudAccount.objects.get(organization=org, name="prod")
    assert account.status == CloudAccount.Status.PENDING and account.regions == ["eu-west-1"]
    assert admin_entry("cloud_account.created", super_admin).after["role_arn"] == data["role_arn"]


def test_bad_role_arn_and_region_are_form_errors(admin_web, org):
    data = {"organization": org.pk, "name": "prod", "role_arn": "arn:aws:iam::1:user/x", "regions": '["mars-1"]'}
    response = post_form(admin_web, ACCOUNT_ADD, data)
    assert response.status_code == 200
    assert "role_arn" in form_errors(response)
    response = post_form(admin_web, ACCOUNT_ADD, data | {"role_arn": ""})
    assert "regions" in form_errors(response)
    assert not CloudAccount.objects.exists()


def test_access_keys_are_set_masked_and_never_shown(admin_web, super_admin, org):
    account = CloudAccountFactory(organization=org)
    url = f"/admin/accounts/cloudaccount/{account.pk}/change/"
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    response = post_form(admin_web, url, {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": secret})
    assert response.status_code == 302, form_errors(response)
    account.refresh_from_db()
    assert account.has_access_keys and account.status == CloudAccount.Status.PENDING
    entry = admin_entry("cloud_account.updated", super_admin)
    assert entry.after["has_access_keys"] is True and secret not in str(entry.after)
    page = admin_web.get(url).content.decode()
    assert secret not in page and account.encrypted_access_keys not in page

    response = post_form(admin_web, url, {"remove_access_keys": "on"})
    assert response.status_code == 302, form_errors(response)
    account.refresh_from_db()
    assert not account.has_access_keys


def test_delete_and_disable_accounts_through_the_service(admin_web, super_admin, org):
    account, other = CloudAccountFactory(organization=org), CloudAccountFactory(organization=org)
    cluster = ClusterFactory(organization=org, cloud_account=account, source=Cluster.Source.DISCOVERED)
    response = admin_web.post(f"/admin/accounts/cloudaccount/{account.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not CloudAccount.objects.filter(pk=account.pk).exists()
    cluster.refresh_from_db()
    assert cluster.missing_since is not None  # the service's rule: detached clusters are marked missing
    admin_entry("cloud_account.deleted", super_admin)

    admin_web.post("/admin/accounts/cloudaccount/", {"action": "disable_selected", "_selected_action": [other.pk]})
    other.refresh_from_db()
    assert other.status == CloudAccount.Status.DISABLED
    admin_entry("cloud_account.disabled", super_admin)


def test_validate_action_calls_aws_and_reports_refusals(admin_web, super_admin, org, aws):
    good = CloudAccountFactory(
        organization=org, name="good", role_arn=ROLE_ARN, regions=["us-east-1"], status=CloudAccount.Status.PENDING
    )
    bare = CloudAccountFactory(organization=org, name="bare", role_arn="", status=CloudAccount.Status.PENDING)
    response = admin_web.post(
        "/admin/accounts/cloudaccount/",
        {"action": "validate_selected", "_selected_action": [good.pk, bare.pk]},
        follow=True,
    )
    assert response.status_code == 200
    shown = messages_of(response)
    assert any(m.startswith("bare: ") and "role ARN" in m for m in shown), shown
    assert any("Validated 1 account" in m for m in shown), shown
    good.refresh_from_db()
    bare.refresh_from_db()
    assert good.status == CloudAccount.Status.ACTIVE and good.aws_account_id == ROLE_ACCOUNT
    assert bare.status == CloudAccount.Status.PENDING
    admin_entry("cloud_account.validated", super_admin)


def test_revoked_tokens_cannot_be_unrevoked_in_admin(admin_web, user):
    refresh = RefreshToken.for_user(user)
    refresh.blacklist()
    row = BlacklistedToken.objects.get(token__jti=refresh["jti"])
    assert admin_web.get("/admin/token_blacklist/blacklistedtoken/").status_code == 200
    assert admin_web.get(f"/admin/token_blacklist/blacklistedtoken/{row.pk}/delete/").status_code == 403
    assert admin_web.get("/admin/token_blacklist/blacklistedtoken/add/").status_code == 403
    admin_web.post(
        "/admin/token_blacklist/blacklistedtoken/",
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    assert BlacklistedToken.objects.filter(pk=row.pk).exists()


def test_admins_own_password_change_goes_through_the_service(admin_web, super_admin):
    refresh = RefreshToken.for_user(super_admin)
    url = "/admin/password_change/"
    wrong = admin_web.post(url, {"old_password": "nope", "new_password1": STRONG, "new_password2": STRONG})
    assert wrong.status_code == 200 and "old_password" in wrong.context["form"].errors
    super_admin.refresh_from_db()
    assert super_admin.check_password(DEFAULT_PASSWORD)

    data = {"old_password": DEFAULT_PASSWORD, "new_password1": STRONG, "new_password2": STRONG}
    response = admin_web.post(url, data)
    assert response.status_code == 302
    super_admin.refresh_from_db()
    assert super_admin.check_password(STRONG)
    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()
    admin_entry("auth.password_change", super_admin)
    assert admin_web.get("/admin/").status_code == 200  # still logged in
