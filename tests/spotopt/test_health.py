from __future__ import annotations

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_health_is_cheap_liveness(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_detailed_reports_each_component(client):
    response = client.get("/health/detailed")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert set(checks) == {"database", "cache", "broker", "migrations"}
    for check in checks.values():
        assert check["status"] == "ok"
        assert check["latency_ms"] >= 0


@override_settings(
    REDIS_URL="redis://127.0.0.1:1/0",
    CACHES={
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    },
)
def test_health_detailed_is_503_when_redis_is_down(client):
    response = client.get("/health/detailed")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"]["status"] == "down"
    assert body["checks"]["database"]["status"] == "ok"


# --- What /health/detailed tells whom -------------------------------------------------------------------------------

_REDIS_DOWN = {
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "CACHES": {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    },
}


@override_settings(HEALTH_DETAILS_PUBLIC=False, HEALTH_TOKEN="health-token-" + "t" * 32)
def test_production_health_detailed_tells_anonymous_callers_only_each_status(client):
    response = client.get("/health/detailed")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {name: {"status": "ok"} for name in ("database", "cache", "broker", "migrations")},
    }


@override_settings(HEALTH_DETAILS_PUBLIC=False, **_REDIS_DOWN)
def test_production_health_detailed_still_says_503_and_which_dependency_is_down(client):
    response = client.get("/health/detailed")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"] == {"status": "down"}
    assert "127.0.0.1" not in response.content.decode()


@override_settings(HEALTH_DETAILS_PUBLIC=False, HEALTH_TOKEN="health-token-" + "t" * 32)
@pytest.mark.parametrize(
    "headers",
    [
        {"HTTP_X_HEALTH_TOKEN": "health-token-" + "t" * 32},
        {"HTTP_AUTHORIZATION": "Bearer health-token-" + "t" * 32},
    ],
)
def test_the_health_token_gets_the_details(client, headers):
    body = client.get("/health/detailed", **headers).json()
    assert body["environment"] == "development"
    assert body["checks"]["database"]["latency_ms"] >= 0 and "detail" in body["checks"]["database"]


@override_settings(HEALTH_DETAILS_PUBLIC=False, HEALTH_TOKEN="health-token-" + "t" * 32)
@pytest.mark.parametrize(
    "headers",
    [{}, {"HTTP_X_HEALTH_TOKEN": "health-token-" + "x" * 32}, {"HTTP_AUTHORIZATION": "Bearer not-the-token"}],
)
def test_a_wrong_or_missing_health_token_gets_no_details(client, headers):
    body = client.get("/health/detailed", **headers).json()
    assert "environment" not in body and set(body["checks"]["database"]) == {"status"}


@override_settings(HEALTH_DETAILS_PUBLIC=False, HEALTH_TOKEN="")
def test_an_empty_health_token_setting_grants_nothing(client):
    body = client.get("/health/detailed", HTTP_X_HEALTH_TOKEN="", HTTP_AUTHORIZATION="Bearer ").json()
    assert set(body["checks"]["cache"]) == {"status"}


@override_settings(HEALTH_DETAILS_PUBLIC=False)
def test_super_admins_get_the_details_by_session_or_access_token(client, super_admin, user):
    from tests.conftest import client_for

    assert "latency_ms" in client_for(super_admin).get("/health/detailed").json()["checks"]["cache"]
    assert "latency_ms" not in client_for(user).get("/health/detailed").json()["checks"]["cache"]
    client.force_login(user)
    assert "latency_ms" not in client.get("/health/detailed").json()["checks"]["cache"]
    client.force_login(super_admin)
    assert "latency_ms" in client.get("/health/detailed").json()["checks"]["cache"]


@override_settings(HEALTH_DETAILS_PUBLIC=False, **_REDIS_DOWN)
def test_even_a_super_admin_sees_errors_without_hosts_or_ports(client, super_admin):
    client.force_login(super_admin)
    response = client.get("/health/detailed")
    cache_check = response.json()["checks"]["cache"]
    assert cache_check["status"] == "down"
    assert cache_check["error"].startswith("ConnectionError")
    assert "127.0.0.1" not in cache_check["error"] and ":1" not in cache_check["error"]


@pytest.mark.parametrize(
    "message, leaks",
    [
        (
            'connection failed: connection to server at "10.1.2.3", port 5432 failed: FATAL:  database "acme_prod" '
            "does not exist",
            ["10.1.2.3", "5432", "acme_prod"],
        ),
        (
            'connection failed: could not translate host name "db.internal.example.com" to address',
            ["db.internal.example.com", "internal"],
        ),
        ("Error 111 connecting to redis-primary:6380. Connection refused.", ["redis-primary", "6380"]),
        ("Error -2 connecting to cache.prod.svc.cluster.local:6379. Name or service not known.", ["cluster.local"]),
        ("[Errno 111] Connection refused: amqp://spot:pw@[2001:db8::7]:5672//", ["2001:db8", "5672", "pw"]),
        ("connection to server on socket /var/run/postgresql/.s.PGSQL.5432 failed", ["/var/run", "5432"]),
        ("could not connect: host=pg-3 port=5433 dbname=billing user=spot", ["pg-3", "5433", "billing", "spot"]),
    ],
)
def test_sanitize_error_takes_out_hosts_ports_and_names(message, leaks):
    from spotopt.health import sanitize_error

    text = sanitize_error(ConnectionError(message))
    assert text.startswith("ConnectionError: ")
    for leak in leaks:
        assert leak not in text, text


def test_sanitize_error_takes_out_the_configured_database_of_a_real_failure(settings):
    """A real driver error, from the configured PostgreSQL server with a database that does not exist."""
    from django.db import connection

    from spotopt.health import sanitize_error

    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: the driver's own error text is what is checked")
    params = connection.get_connection_params()
    params.pop("database", None)
    params["dbname"] = "spotopt_no_such_database_here"
    with pytest.raises(connection.Database.OperationalError) as failure:
        connection.Database.connect(**params, connect_timeout=3)
    assert "spotopt_no_such_database_here" in str(failure.value)
    text = sanitize_error(failure.value)
    for leak in ("spotopt_no_such_database_here", params.get("host") or "/", str(params.get("port") or 5432)):
        assert leak not in text, text
