"""One login path: the API, the console and Django admin check credentials through the one accounts backend, so the
limits, the production refusal of the default password and the audit entries apply to all three."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import override_settings

from audit.models import AuditLog
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"
CONSOLE_LOGIN = "/login/"
API_LOGIN = "/api/v1/auth/login"


def _admin_login(client, email, password):
    return client.post(ADMIN_LOGIN, {"username": email, "password": password, "next": "/admin/"})


def _signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_one_backend_checks_every_credential():
    assert settings.AUTHENTICATION_BACKENDS == ["accounts.backends.AccountsBackend"]


def test_admin_login_is_audited(client, super_admin):
    response = _admin_login(client, super_admin.email, DEFAULT_PASSWORD)
    assert response.status_code == 302
    assert _signed_in(client)
    entry = AuditLog.objects.get(action="auth.login")
    assert entry.actor_id == str(super_admin.pk)
    assert client.get("/admin/").status_code == 200


def test_admin_login_failure_is_audited(client, super_admin):
    response = _admin_login(client, super_admin.email, "wrong-password")
    assert response.status_code == 200
    assert not _signed_in(client)
    assert AuditLog.objects.filter(action="auth.login_failed", actor_id=str(super_admin.pk)).count() == 1


@override_settings(LOGIN_RATE_LIMIT="3/min")
def test_admin_login_is_held_to_the_failed_login_limit(client, super_admin):
    for _ in range(3):
        _admin_login(client, super_admin.email, "wrong-password")
    response = _admin_login(client, super_admin.email, DEFAULT_PASSWORD)
    assert response.status_code == 200
    assert "Too many failed login attempts" in response.content.decode()
    assert not _signed_in(client)
    assert not AuditLog.objects.filter(action="auth.login").exists()


@override_settings(ENVIRONMENT="production", PRODUCTION=True)
def test_admin_login_refuses_the_default_password_in_production(client, api_client):
    response = _admin_login(client, settings.DEFAULT_ADMIN_EMAIL, settings.DEFAULT_ADMIN_PASSWORD)
    assert response.status_code == 200
    assert "default administrator password must be changed" in response.content.decode()
    assert not _signed_in(client)
    assert AuditLog.objects.filter(action="auth.login_refused_default_password").count() == 1
    # No session, so the API does not answer either.
    assert client.get("/api/v1/accounts").status_code in (401, 403)


@override_settings(ENVIRONMENT="production", PRODUCTION=True)
def test_console_login_refuses_the_default_password_in_production(client):
    response = client.post(
        CONSOLE_LOGIN, {"email": settings.DEFAULT_ADMIN_EMAIL, "password": settings.DEFAULT_ADMIN_PASSWORD}
    )
    assert response.status_code == 401
    assert not _signed_in(client)
    assert AuditLog.objects.filter(action="auth.login_refused_default_password").count() == 1


def test_admin_logout_is_audited(client, super_admin):
    _admin_login(client, super_admin.email, DEFAULT_PASSWORD)
    response = client.post("/admin/logout/")
    assert response.status_code == 302
    assert not _signed_in(client)
    entry = AuditLog.objects.get(action="auth.logout")
    assert entry.actor_id == str(super_admin.pk)


@override_settings(LOGIN_RATE_LIMIT="5/min")
def test_failures_count_across_every_front_door(client, api_client, user):
    """Two failures in the API, two in the console, one in admin: the account's budget is spent, whatever the door."""
    for _ in range(2):
        api_client.post(API_LOGIN, {"email": user.email, "password": "bad"}, format="json")
        client.post(CONSOLE_LOGIN, {"email": user.email, "password": "bad"})
    _admin_login(client, user.email, "bad")
    assert AuditLog.objects.filter(action="auth.login_failed").count() == 5
    response = api_client.post(API_LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 429
    console = client.post(CONSOLE_LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD})
    assert console.status_code == 429
    assert not _signed_in(client)


def test_audit_entries_carry_the_client_address(api_client, user):
    api_client.post(API_LOGIN, {"email": user.email, "password": "bad"}, format="json", REMOTE_ADDR="198.51.100.7")
    assert AuditLog.objects.get(action="auth.login_failed").ip == "198.51.100.7"


@override_settings(LOGIN_RATE_LIMIT="3/min")
def test_change_password_old_password_check_is_limited(auth_client, user):
    for _ in range(3):
        response = auth_client.post(
            "/api/v1/auth/change-password",
            {"old_password": "wrong", "new_password": "An0ther-Long-Secret"},
            format="json",
        )
        assert response.status_code == 400
    response = auth_client.post(
        "/api/v1/auth/change-password",
        {"old_password": DEFAULT_PASSWORD, "new_password": "An0ther-Long-Secret"},
        format="json",
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)
    assert AuditLog.objects.filter(action="auth.password_change_failed").count() == 3
