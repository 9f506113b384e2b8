"""Request-rate limits: atomic, keyed by one client address that believes X-Forwarded-For only from trusted proxies,
and failing open (counted, visible in /health/detailed) when the cache is down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connections
from django.test import RequestFactory, override_settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from spotopt import cache as fail_open
from spotopt.middleware import client_ip
from tests.factories import DEFAULT_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
ME = "/api/v1/auth/me"


def _networks(*items: str):
    import ipaddress

    return [ipaddress.ip_network(i, strict=False) for i in items]


def _request(remote: str, xff: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return RequestFactory().get("/", **extra)


# --- client_ip ------------------------------------------------------------------------------------------------------


@override_settings(TRUSTED_PROXY_NETWORKS=[])
def test_forwarded_for_is_ignored_without_trusted_proxies():
    assert client_ip(_request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


@override_settings(TRUSTED_PROXY_NETWORKS=_networks("10.0.0.0/8"))
def test_forwarded_for_is_read_from_a_trusted_proxy():
    assert client_ip(_request("10.1.2.3", "198.51.100.20")) == "198.51.100.20"


@override_settings(TRUSTED_PROXY_NETWORKS=_networks("10.0.0.0/8"))
def test_client_written_hops_left_of_the_proxy_are_not_believed():
    # The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended the address it saw.
    assert client_ip(_request("10.1.2.3", "1.2.3.4, 198.51.100.20")) == "198.51.100.20"


@override_settings(TRUSTED_PROXY_NETWORKS=_networks("10.0.0.0/8", "192.168.1.5"))
def test_chains_of_trusted_proxies_are_walked_from_the_right():
    assert client_ip(_request("10.1.2.3", "1.2.3.4, 198.51.100.20, 192.168.1.5")) == "198.51.100.20"


@override_settings(TRUSTED_PROXY_NETWORKS=_networks("10.0.0.0/8"))
def test_a_malformed_hop_stops_the_walk():
    assert client_ip(_request("10.1.2.3", "198.51.100.20, not-an-ip")) == "10.1.2.3"


@override_settings(TRUSTED_PROXY_NETWORKS=_networks("10.0.0.0/8"))
def test_an_untrusted_peer_with_a_forwarded_header_is_itself_the_client():
    assert client_ip(_request("203.0.113.9", "10.0.0.1")) == "203.0.113.9"


# --- anonymous limits and proxies -------------------------------------------------------------------------------------


def _anonymous(client, forwarded_for: str) -> int:
    """An anonymous API call (a login without a body: 400 while under the limit)."""
    return client.post("/api/v1/auth/login", {}, format="json", HTTP_X_FORWARDED_FOR=forwarded_for).status_code


@pytest.mark.django_db
@override_settings(API_RATE_LIMIT="5/min", TRUSTED_PROXY_NETWORKS=[])
def test_rotating_forwarded_for_does_not_escape_the_anonymous_limit(api_client):
    statuses = [_anonymous(api_client, f"198.51.100.{i}") for i in range(7)]
    assert statuses == [400] * 5 + [429, 429]


@pytest.mark.django_db
@override_settings(API_RATE_LIMIT="5/min", TRUSTED_PROXY_NETWORKS=_networks("127.0.0.1"))
def test_behind_a_trusted_proxy_each_client_has_its_own_limit(api_client):
    assert [_anonymous(api_client, f"198.51.100.{i}") for i in range(6)] == [400] * 6
    # One client behind the proxy, rotating what it writes itself: still one address to the limiter.
    statuses = [_anonymous(api_client, f"1.1.1.{i}, 198.51.100.99") for i in range(7)]
    assert statuses == [400] * 5 + [429, 429]


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_NETWORKS=[])
def test_forwarded_proto_is_ignored_from_an_untrusted_peer(client):
    response = client.get("/login/", HTTP_X_FORWARDED_PROTO="https", REMOTE_ADDR="203.0.113.9")
    assert response.wsgi_request.META.get("HTTP_X_FORWARDED_PROTO") is None


def _settings_of(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    code = f"import django; django.setup(); from django.conf import settings; print({expression})"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=base | {"DJANGO_SETTINGS_MODULE": "spotopt.settings"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_proxy_ssl_header_only_when_proxies_are_trusted(tmp_path):
    none = _settings_of({"TRUSTED_PROXIES": "", "VAR_DIR": str(tmp_path)}, "settings.SECURE_PROXY_SSL_HEADER")
    assert none.stdout.strip() == "None", none.stderr
    some = _settings_of(
        {"TRUSTED_PROXIES": "10.0.0.0/8, 192.168.1.5", "VAR_DIR": str(tmp_path)}, "settings.SECURE_PROXY_SSL_HEADER"
    )
    assert some.stdout.strip() == "('HTTP_X_FORWARDED_PROTO', 'https')", some.stderr


def test_malformed_trusted_proxies_stop_startup(tmp_path):
    result = _settings_of({"TRUSTED_PROXIES": "10.0.0.0/8,not-a-network", "VAR_DIR": str(tmp_path)}, "1")
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr


def test_gunicorn_trusts_the_same_proxies():
    code = "import spotopt.gunicorn_conf as c; print(repr(c.forwarded_allow_ips))"
    for value, expected in (("", "''"), ("10.0.0.0/8, 192.168.1.5", "'10.0.0.0/8,192.168.1.5'")):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=os.environ | {"TRUSTED_PROXIES": value},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.stdout.strip() == expected, result.stderr
    from gunicorn.config import Config

    config = Config()
    config.set("forwarded_allow_ips", "")
    assert config.forwarded_allow_ips == []  # gunicorn then trusts no forwarded header at all
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "python:spotopt.gunicorn_conf" in dockerfile
    assert '"--forwarded-allow-ips", "*"' not in dockerfile


def test_gunicorn_waits_for_a_plan_made_in_the_request():
    code = "import spotopt.gunicorn_conf as c; print(c.timeout)"
    for env, expected in (({}, "120"), ({"GUNICORN_TIMEOUT": "300"}, "300")):
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "GUNICORN_TIMEOUT"} | env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.stdout.strip() == expected, result.stderr


# --- atomic limits ---------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@override_settings(API_RATE_LIMIT="100/min")
def test_concurrent_requests_of_one_user_pass_at_most_the_limit(user):
    """300 requests of one user at once, from 30 threads: the counter is one atomic increment per request (Redis INCR
    when REDIS_URL is set), so no more than 100 pass."""
    access = str(RefreshToken.for_user(user).access_token)
    threads, per_thread = 30, 10
    barrier = threading.Barrier(threads)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
            barrier.wait(timeout=20)
            for _ in range(per_thread):
                statuses.append(client.get(ME).status_code)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)

    assert errors == []
    assert len(statuses) == threads * per_thread
    assert set(statuses) <= {200, 429}
    assert statuses.count(200) == 100


# --- the cache is down ------------------------------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_down():
    location = f"redis://127.0.0.1:{_closed_port()}/0"
    caches = {
        "default": {
            "BACKEND": "spotopt.cache.FailOpenRedisCache",
            "LOCATION": location,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    fail_open.reset_failure_stats()
    with override_settings(REDIS_URL=location, CACHES=caches):
        yield
    fail_open.reset_failure_stats()


@pytest.mark.django_db
@override_settings(API_RATE_LIMIT="2/min")
def test_the_api_keeps_answering_when_redis_is_down(redis_down, auth_client, caplog):
    statuses = [auth_client.get(ME).status_code for _ in range(4)]
    assert statuses == [200] * 4  # the request-rate limit fails open
    stats = fail_open.failure_stats()
    assert stats["failures"] >= 4
    assert stats["last_error"] == "ConnectionError"
    assert "cache unavailable, failing open" in caplog.text


@pytest.mark.django_db
@override_settings(LOGIN_RATE_LIMIT="3/min")
def test_failed_login_limits_hold_when_redis_is_down(redis_down, api_client, user):
    for _ in range(3):
        response = api_client.post("/api/v1/auth/login", {"email": user.email, "password": "bad"}, format="json")
        assert response.status_code == 401
    response = api_client.post("/api/v1/auth/login", {"email": user.email, "password": DEFAULT_PASSWORD}, format="json")
    assert response.status_code == 429


@pytest.mark.django_db
def test_health_detailed_counts_what_failed_open(redis_down, auth_client, client):
    assert auth_client.get(ME).status_code == 200
    response = client.get("/health/detailed")
    assert response.status_code == 503
    cache_check = response.json()["checks"]["cache"]
    assert cache_check["status"] == "down"
    assert cache_check["failed_open"]["failures"] >= 1


@pytest.mark.django_db
def test_cache_reads_fail_open(redis_down):
    assert cache.get("anything", "default") == "default"
    assert cache.get_many(["a", "b"]) == {}
    cache.set("x", 1)  # dropped, not raised
    with pytest.raises(fail_open.CacheUnavailable):
        cache.incr("x")


@pytest.mark.django_db
@override_settings(TRUSTED_PROXY_NETWORKS=_networks("127.0.0.1"))
def test_audit_entries_record_the_client_behind_a_trusted_proxy(client, user):
    from audit.models import AuditLog

    client.force_login(user)
    client.post("/logout/", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.42")
    assert AuditLog.objects.get(action="auth.logout").ip == "198.51.100.42"
