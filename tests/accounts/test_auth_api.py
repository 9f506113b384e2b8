"""The seed's auth API: signup, login, refresh, logout, change-password, me."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.test import override_settings
from django.utils import timezone

from accounts.models import Organization, User
from audit.models import AuditLog

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/auth/signup"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
CHANGE = "/api/v1/auth/change-password"
ME = "/api/v1/auth/me"


def _signup(client, email="ops@acme.test", password="Correct-Horse-42", org="Acme"):
    return client.post(SIGNUP, {"email": email, "password": password, "organization_name": org}, format="json")


def _login(client, email, password):
    return client.post(LOGIN, {"email": email, "password": password}, format="json")


def test_signup_creates_organization_owned_by_new_client(api_client):
    response = _signup(api_client)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"access", "refresh", "user"}
    user = User.objects.get(email="ops@acme.test")
    assert user.role == User.Role.CLIENT
    assert user.organization.name == "Acme"
    assert user.organization.owner == user
    assert body["user"]["organization"]["name"] == "Acme"
    assert user.password.startswith("bcrypt_sha256$")
    assert AuditLog.objects.filter(action="auth.signup", organization=user.organization).count() == 1


def test_signup_duplicate_email_is_400_with_field_error(api_client, user):
    response = _signup(api_client, email=user.email.upper())
    assert response.status_code == 400
    assert "email" in response.json()["error"]["fields"]
    assert Organization.objects.count() == 1  # nothing half-written


def test_signup_weak_password_is_400_and_writes_nothing(api_client):
    response = _signup(api_client, password="password")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert "password" in error["fields"]
    assert not Organization.objects.exists()
    assert not User.objects.filter(email="ops@acme.test").exists()


def test_signup_missing_fields_lists_each_field(api_client):
    response = api_client.post(SIGNUP, {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"email", "password", "organization_name"}


def test_login_returns_tokens_and_user(api_client, user, password):
    response = _login(api_client, user.email, password)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["email"] == user.email
    me = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["email"] == user.email


def test_login_same_message_for_unknown_email_and_wrong_password(api_client, user):
    wrong = _login(api_client, user.email, "not-the-password")
    unknown = _login(api_client, "nobody@example.com", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert AuditLog.objects.filter(action="auth.login_failed").count() == 2


@override_settings(LOGIN_RATE_LIMIT="5/min")
def test_login_failures_are_limited_per_account(api_client, user, password):
    for i in range(5):
        api_client.post(LOGIN, {"email": user.email, "password": "bad"}, format="json", REMOTE_ADDR=f"10.0.0.{i}")
    # A sixth attempt, from yet another address and with the right password, is refused.
    response = api_client.post(
        LOGIN, {"email": user.email, "password": password}, format="json", REMOTE_ADDR="10.0.0.99"
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["error"]["code"] == "throttled"


@override_settings(LOGIN_RATE_LIMIT="5/min", LOGIN_ADDRESS_RATE_LIMIT="8/min")
def test_login_failures_are_limited_per_ip_at_the_address_threshold(api_client, user, password):
    for i in range(8):
        api_client.post(LOGIN, {"email": f"x{i}@example.com", "password": "bad"}, format="json")
    response = _login(api_client, user.email, password)
    assert response.status_code == 429


@override_settings(LOGIN_RATE_LIMIT="5/min", LOGIN_ADDRESS_RATE_LIMIT="50/min")
def test_failures_on_other_accounts_do_not_lock_out_a_shared_address(api_client, user, password):
    """One attacker behind a shared NAT failing on other accounts does not lock out the people behind it."""
    for i in range(20):
        assert _login(api_client, f"x{i}@example.com", "bad").status_code == 401
    assert _login(api_client, user.email, password).status_code == 200


@override_settings(LOGIN_RATE_LIMIT="5/min")
def test_login_limit_window_expires(api_client, user, password):
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        for _ in range(5):
            _login(api_client, user.email, "bad")
        assert _login(api_client, user.email, password).status_code == 429
        traveller.shift(timedelta(seconds=61))
        assert _login(api_client, user.email, password).status_code == 200


def test_refresh_rotates_and_blacklists_old_token(api_client, user, password):
    tokens = _login(api_client, user.email, password).json()
    first = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert first.status_code == 200
    assert set(first.json()) == {"access", "refresh"}
    reused = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json")
    assert reused.status_code == 401
    assert reused.json()["error"]["code"] == "token_not_valid"


def test_tampered_token_is_401(api_client, user, password):
    tokens = _login(api_client, user.email, password).json()
    tampered = tokens["access"][:-3] + ("abc" if not tokens["access"].endswith("abc") else "xyz")
    response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_expired_access_token_is_401(api_client, user, password):
    tokens = _login(api_client, user.email, password).json()
    with time_machine.travel(timezone.now() + timedelta(hours=2)):
        response = api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert response.status_code == 401


def test_logout_blacklists_refresh_token(api_client, user, password):
    tokens = _login(api_client, user.email, password).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    assert api_client.post(LOGOUT, {"refresh": tokens["refresh"]}, format="json").status_code == 204
    api_client.credentials()
    assert api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code == 401
    assert AuditLog.objects.filter(action="auth.logout").count() == 1


def test_logout_requires_authentication(api_client):
    response = api_client.post(LOGOUT, {"refresh": "x"}, format="json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_logout_with_someone_elses_refresh_token_is_400(api_client, user, other_user, password):
    mine = _login(api_client, user.email, password).json()
    theirs = _login(api_client, other_user.email, password).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {mine['access']}")
    assert api_client.post(LOGOUT, {"refresh": theirs["refresh"]}, format="json").status_code == 400
    api_client.credentials()
    assert api_client.post(REFRESH, {"refresh": theirs["refresh"]}, format="json").status_code == 200


def test_change_password_revokes_other_tokens(api_client, user, password):
    session_a = _login(api_client, user.email, password).json()
    session_b = _login(api_client, user.email, password).json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {session_a['access']}")
    response = api_client.post(CHANGE, {"old_password": password, "new_password": "An0ther-Long-Secret"}, format="json")
    assert response.status_code == 200, response.content
    fresh = response.json()
    api_client.credentials()
    # Old refresh tokens of both sessions are dead; the old access token too; the new pair works.
    assert api_client.post(REFRESH, {"refresh": session_b["refresh"]}, format="json").status_code == 401
    assert api_client.post(REFRESH, {"refresh": session_a["refresh"]}, format="json").status_code == 401
    assert api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {session_b['access']}").status_code == 401
    assert api_client.get(ME, HTTP_AUTHORIZATION=f"Bearer {fresh['access']}").status_code == 200
    assert _login(api_client, user.email, "An0ther-Long-Secret").status_code == 200


def test_change_password_wrong_old_password_is_400(auth_client, password):
    response = auth_client.post(CHANGE, {"old_password": "nope", "new_password": "An0ther-Long-Secret"}, format="json")
    assert response.status_code == 400
    assert "old_password" in response.json()["error"]["fields"]


def test_change_password_weak_new_password_is_400(auth_client, password):
    response = auth_client.post(CHANGE, {"old_password": password, "new_password": "12345678"}, format="json")
    assert response.status_code == 400
    assert "new_password" in response.json()["error"]["fields"]


def test_me_requires_token(api_client):
    assert api_client.get(ME).status_code == 401


def test_me_query_count(auth_client, user, django_assert_num_queries):
    # 1: the user of the token (JWT authentication); 2: the user with its organization.
    with django_assert_num_queries(2):
        response = auth_client.get(ME)
    assert response.status_code == 200
    assert response.json()["organization"]["id"] == user.organization_id


@override_settings(ENVIRONMENT="production", PRODUCTION=True)
def test_default_admin_password_refused_in_production(api_client):
    response = _login(api_client, "admin@spotoptimizer.com", "admin123")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "password_change_required"


def test_default_admin_can_log_in_in_development(api_client):
    response = _login(api_client, "admin@spotoptimizer.com", "admin123")
    assert response.status_code == 200
    assert response.json()["user"]["role"] == "SUPER_ADMIN"
