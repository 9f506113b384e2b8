"""Failed-login limits: counted before the password is checked, atomically, in the database."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache
from django.db import connection, connections
from django.test import override_settings
from rest_framework.test import APIClient

from accounts import throttling
from accounts.models import LoginFailureCounter
from audit.models import AuditLog
from tests.factories import DEFAULT_PASSWORD

LOGIN = "/api/v1/auth/login"


def _login(client, email, password, ip="203.0.113.10"):
    return client.post(LOGIN, {"email": email, "password": password}, format="json", REMOTE_ADDR=ip)


@pytest.mark.django_db
@override_settings(LOGIN_RATE_LIMIT="5/min")
def test_lockout_survives_a_cache_flush(api_client, user):
    """The counters are database rows: a cache outage or flush does not hand an attacker a fresh budget."""
    for _ in range(5):
        assert _login(api_client, user.email, "bad").status_code == 401
    cache.clear()
    assert _login(api_client, user.email, DEFAULT_PASSWORD).status_code == 429


@pytest.mark.django_db
@override_settings(LOGIN_RATE_LIMIT="5/min")
def test_successful_logins_do_not_use_up_the_budget(api_client, user):
    for _ in range(8):
        assert _login(api_client, user.email, DEFAULT_PASSWORD).status_code == 200
    assert _login(api_client, user.email, "bad").status_code == 401


@pytest.mark.django_db
@override_settings(LOGIN_RATE_LIMIT="5/min")
def test_refused_attempts_do_not_count_as_checked(api_client, user):
    for _ in range(5):
        _login(api_client, user.email, "bad")
    for _ in range(10):
        assert _login(api_client, user.email, "bad").status_code == 429
    counter = LoginFailureCounter.objects.get(key=throttling._key("account", user.email))
    assert counter.count == 5
    assert AuditLog.objects.filter(action="auth.login_failed").count() == 5


@pytest.mark.django_db
@override_settings(LOGIN_RATE_LIMIT="5/min", LOGIN_ADDRESS_RATE_LIMIT="50/min")
def test_an_account_is_locked_for_every_address(api_client, user):
    for i in range(5):
        _login(api_client, user.email, "bad", ip=f"198.51.100.{i}")
    assert _login(api_client, user.email, DEFAULT_PASSWORD, ip="192.0.2.200").status_code == 429


@pytest.mark.django_db
@override_settings(LOGIN_RATE_LIMIT="5/min", LOGIN_ADDRESS_RATE_LIMIT="12/min")
def test_the_address_limit_counts_failures_over_all_accounts(api_client, user):
    for i in range(12):
        assert _login(api_client, f"nobody{i}@example.com", "bad").status_code == 401
    assert _login(api_client, user.email, DEFAULT_PASSWORD).status_code == 429
    assert _login(api_client, user.email, DEFAULT_PASSWORD, ip="203.0.113.11").status_code == 200


@pytest.mark.django_db(transaction=True)
@override_settings(LOGIN_RATE_LIMIT="5/min")
def test_pg_concurrent_wrong_passwords_check_at_most_the_limit(user):
    """30 wrong passwords at once: each attempt takes its place in one atomic upsert before the password is checked,
    so exactly the limit is checked (and audited) and the rest are refused unchecked."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: SQLite serializes all writers anyway")
    threads = 30
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def attempt(n: int) -> None:
        try:
            client = APIClient()
            barrier.wait(timeout=10)
            statuses.append(_login(client, user.email, f"wrong-{n}", ip=f"198.51.100.{n}").status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=attempt, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)

    assert errors == []
    assert sorted(statuses) == [401] * 5 + [429] * 25
    assert AuditLog.objects.filter(action="auth.login_failed").count() == 5
