"""Token lifecycle: rotation is atomic, a rotated refresh token used again revokes its family, logout ends the
access token it came with. Revocations are database rows, so a cache outage cannot undo them."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import cache
from django.db import connection, connections
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.state import token_backend

from accounts import services
from accounts.models import RevokedAccessToken, RevokedTokenFamily
from accounts.tasks import purge_expired_token_revocations
from audit.models import AuditLog
from tests.factories import DEFAULT_PASSWORD

LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"


def _login(client, user):
    response = client.post(LOGIN, {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def _me(client, access):
    return client.get(ME, HTTP_AUTHORIZATION=f"Bearer {access}")


@pytest.mark.django_db
def test_logout_ends_the_access_token_it_came_with(api_client, user):
    tokens = _login(api_client, user)
    assert _me(api_client, tokens["access"]).status_code == 200
    response = api_client.post(
        LOGOUT, {"refresh": tokens["refresh"]}, format="json", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"
    )
    assert response.status_code == 204
    assert _me(api_client, tokens["access"]).status_code == 401
    assert RevokedAccessToken.objects.filter(user=user).count() == 1
    # Kept in the database: clearing the cache (or losing Redis) does not bring the token back.
    cache.clear()
    assert _me(api_client, tokens["access"]).status_code == 401


@pytest.mark.django_db
def test_logout_leaves_other_sessions_alone(api_client, user):
    first = _login(api_client, user)
    second = _login(api_client, user)
    api_client.post(
        LOGOUT, {"refresh": first["refresh"]}, format="json", HTTP_AUTHORIZATION=f"Bearer {first['access']}"
    )
    assert _me(api_client, second["access"]).status_code == 200
    assert api_client.post(REFRESH, {"refresh": second["refresh"]}, format="json").status_code == 200


@pytest.mark.django_db
def test_logout_ends_earlier_access_tokens_of_the_session(api_client, user):
    tokens = _login(api_client, user)
    rotated = api_client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").json()
    api_client.post(
        LOGOUT, {"refresh": rotated["refresh"]}, format="json", HTTP_AUTHORIZATION=f"Bearer {rotated['access']}"
    )
    # The first access token of the session was not presented at logout, but belongs to the ended family.
    assert _me(api_client, tokens["access"]).status_code == 401


@pytest.mark.django_db
def test_reusing_a_rotated_refresh_token_revokes_its_family(api_client, user):
    first = _login(api_client, user)
    other_session = _login(api_client, user)
    second = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json").json()
    third = api_client.post(REFRESH, {"refresh": second["refresh"]}, format="json").json()
    assert _me(api_client, third["access"]).status_code == 200

    replay = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json")
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "token_not_valid"
    # Every token descended from the replayed one is dead: the latest refresh token and its access token.
    assert api_client.post(REFRESH, {"refresh": third["refresh"]}, format="json").status_code == 401
    assert _me(api_client, third["access"]).status_code == 401
    assert _me(api_client, second["access"]).status_code == 401
    assert RevokedTokenFamily.objects.get().reason == RevokedTokenFamily.Reason.REUSE
    assert AuditLog.objects.filter(action="auth.refresh_token_reused").count() == 1
    # Another login of the same user is another family.
    assert _me(api_client, other_session["access"]).status_code == 200
    assert api_client.post(REFRESH, {"refresh": other_session["refresh"]}, format="json").status_code == 200


@pytest.mark.django_db
def test_refresh_keeps_the_family_claim(api_client, user):
    first = _login(api_client, user)
    second = api_client.post(REFRESH, {"refresh": first["refresh"]}, format="json").json()
    family = token_backend.decode(first["refresh"])["fam"]
    assert family
    assert token_backend.decode(second["refresh"])["fam"] == family
    assert token_backend.decode(second["access"])["fam"] == family


@pytest.mark.django_db
def test_expired_revocations_are_purged(api_client, user):
    tokens = _login(api_client, user)
    api_client.post(
        LOGOUT, {"refresh": tokens["refresh"]}, format="json", HTTP_AUTHORIZATION=f"Bearer {tokens['access']}"
    )
    assert RevokedAccessToken.objects.count() == 1 and RevokedTokenFamily.objects.count() == 1
    assert purge_expired_token_revocations() == {"access_tokens": 0, "families": 0, "login_counters": 0}
    with time_machine.travel(timezone.now() + timedelta(days=8)):
        purged = purge_expired_token_revocations()
    assert purged["access_tokens"] == 1 and purged["families"] == 1
    assert not RevokedAccessToken.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_pg_concurrent_refreshes_of_one_token_let_exactly_one_through(user):
    """Ten clients refresh with the same token at once: the blacklist row is unique, so one rotation wins; the others
    are replays of a rotated token, which revoke the family."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes all writers anyway")
    tokens = services.issue_tokens(user)
    threads = 10
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def refresh() -> None:
        try:
            client = APIClient()
            barrier.wait(timeout=10)
            statuses.append(client.post(REFRESH, {"refresh": tokens["refresh"]}, format="json").status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=refresh) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)

    assert errors == []
    assert sorted(statuses) == [200] + [401] * (threads - 1)
    assert RevokedTokenFamily.objects.filter(reason=RevokedTokenFamily.Reason.REUSE).count() == 1
