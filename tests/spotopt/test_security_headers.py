"""Console pages carry a Content-Security-Policy; responses with tokens, API keys or tenant data are never stored."""

from __future__ import annotations

import pytest

from tests.factories import DEFAULT_PASSWORD, ClusterFactory

pytestmark = pytest.mark.django_db


def test_login_page_has_a_strict_content_security_policy(client):
    response = client.get("/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self';" in policy
    assert "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy


def test_signed_in_console_pages_are_not_stored(client, user):
    client.force_login(user)
    response = client.get("/")
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_django_admin_pages_have_the_policy(client, super_admin):
    client.force_login(super_admin)
    response = client.get("/admin/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["Cache-Control"]  # Django admin sets its own (never_cache)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/auth/login", {"email": "{email}", "password": DEFAULT_PASSWORD}),
        (
            "/api/v1/auth/signup",
            {"email": "new@acme.test", "password": "Correct-Horse-42", "organization_name": "Acme"},
        ),
    ],
)
def test_token_responses_are_not_stored(api_client, user, path, body):
    body = {k: v.format(email=user.email) for k, v in body.items()}
    response = api_client.post(path, body, format="json")
    assert response.status_code in (200, 201), response.content
    assert "access" in response.json()
    assert response["Cache-Control"] == "no-store"


def test_refresh_and_change_password_responses_are_not_stored(api_client, user):
    tokens = api_client.post(
        "/api/v1/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json"
    ).json()
    refreshed = api_client.post("/api/v1/auth/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert refreshed["Cache-Control"] == "no-store"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {refreshed.json()['access']}")
    changed = api_client.post(
        "/api/v1/auth/change-password",
        {"old_password": DEFAULT_PASSWORD, "new_password": "An0ther-Long-Secret"},
        format="json",
    )
    assert changed.status_code == 200
    assert changed["Cache-Control"] == "no-store"


def test_api_key_responses_are_not_stored(auth_client, client, user):
    cluster = ClusterFactory(organization=user.organization)
    response = auth_client.post(f"/api/v1/clusters/{cluster.pk}/api-keys", {"name": "prod"}, format="json")
    assert response.status_code == 201
    assert "key" in response.json()
    assert response["Cache-Control"] == "no-store"
    # The console page that shows a new key.
    client.force_login(user)
    page = client.post(f"/agents/{cluster.pk}/keys/", {"name": "console"}, follow=True)
    assert page.status_code in (200, 201)
    assert page["Cache-Control"] == "no-store"


def test_api_reference_pages_allow_their_inline_bootstrap_only_from_this_host(client):
    response = client.get("/docs")
    policy = response["Content-Security-Policy"]
    assert "script-src 'self' 'unsafe-inline'" in policy
    assert "https:" not in policy and "*" not in policy
