"""Error shape, rate limits, docs, CORS, request ids."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import override_settings

pytestmark = pytest.mark.django_db


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not found."}}


def test_wrong_method_is_json_405(auth_client):
    response = auth_client.delete("/api/v1/auth/me")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_malformed_json_is_400(api_client):
    response = api_client.post("/api/v1/auth/login", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_unsupported_media_type_is_415(api_client):
    response = api_client.post("/api/v1/auth/login", data="email=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert "error" in response.json()


@override_settings(API_RATE_LIMIT="3/min")
def test_api_rate_limit_is_429_with_retry_after(auth_client):
    statuses = [auth_client.get("/api/v1/auth/me").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = auth_client.get("/api/v1/auth/me")
    assert int(response["Retry-After"]) >= 1
    assert response.json()["error"]["code"] == "throttled"


@override_settings(API_RATE_LIMIT="2/min")
def test_rate_limit_is_per_user(auth_client, other_client):
    for _ in range(2):
        auth_client.get("/api/v1/auth/me")
    assert auth_client.get("/api/v1/auth/me").status_code == 429
    assert other_client.get("/api/v1/auth/me").status_code == 200


def test_openapi_schema_and_docs_are_served_locally(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200
    assert "/api/v1/auth/login" in json.loads(schema.content)["paths"]
    for page in ("/docs", "/redoc"):
        html = client.get(page).content.decode()
        assert "cdn" not in html.lower()
        assert "/static/drf_spectacular_sidecar/" in html


@override_settings(CORS_ALLOWED_ORIGINS=["https://console.example.com"])
def test_cors_allows_only_whitelisted_origins(client):
    allowed = client.options(
        "/api/v1/auth/login", HTTP_ORIGIN="https://console.example.com", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert allowed["access-control-allow-origin"] == "https://console.example.com"
    denied = client.options(
        "/api/v1/auth/login", HTTP_ORIGIN="https://evil.example.com", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert "access-control-allow-origin" not in denied


def test_request_id_is_echoed_or_generated(client):
    echoed = client.get("/health", HTTP_X_REQUEST_ID="abc-123")
    assert echoed["X-Request-ID"] == "abc-123"
    generated = client.get("/health", HTTP_X_REQUEST_ID="bad id with spaces")
    assert generated["X-Request-ID"] != "bad id with spaces"
    assert len(generated["X-Request-ID"]) == 32


def test_logs_are_json_lines_without_secrets(api_client, user, password, capsys):
    from spotopt.logging import RedactSecretsFilter, RequestIdFilter

    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactSecretsFilter())
    from pythonjsonlogger.json import JsonFormatter

    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s %(request_id)s"))
    logger = logging.getLogger("spotopt.test")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "login with password=%s token: %s", "hunter2-secret", "eyJabc.def.ghi", extra={"api_key": "so_live_123"}
        )
        logger.warning("header Authorization: Bearer eyJhbGciOi.payload.sig")
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    assert len(lines) == 2
    text = json.dumps(lines)
    for secret in ("hunter2-secret", "eyJabc.def.ghi", "so_live_123", "eyJhbGciOi"):
        assert secret not in text
    assert lines[0]["levelname"] == "WARNING"


@pytest.mark.django_db
def test_unsafe_request_to_an_unknown_api_path_with_a_session_cookie_is_a_json_404(client, user):
    client.force_login(user)
    client.handler.enforce_csrf_checks = True
    response = client.delete("/api/v1/accounts/null,null")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_refused_csrf_check_under_the_api_answers_in_the_error_shape(rf):
    from django.conf import settings
    from django.utils.module_loading import import_string

    failure = import_string(settings.CSRF_FAILURE_VIEW)
    api = failure(rf.post("/api/v1/anything"), reason="CSRF cookie not set.")
    assert api.status_code == 403 and json.loads(api.content)["error"]["code"] == "csrf_failed"
    console = failure(rf.post("/templates/new/"), reason="CSRF cookie not set.")
    assert console.status_code == 403 and console["Content-Type"].startswith("text/html")
