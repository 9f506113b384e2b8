"""Bad input is a 4xx with the error shape on every endpoint, and nothing is written: nesting that would exhaust the
interpreter's recursion, NUL characters, lone surrogates, non-finite numbers, oversized bodies, bad page sizes."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.models import Organization, User
from agentapi.models import AgentEvent, KubeNode
from agentapi.services import api_key_create
from audit.models import AuditLog
from clusters.models import ClusterPolicy
from templates_app.models import NodeTemplate
from tests.factories import ClusterFactory

pytestmark = pytest.mark.django_db

DEEP_LIST = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


@pytest.fixture
def cluster(org):
    return ClusterFactory(organization=org)


@pytest.fixture
def agent_client(cluster) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key_create(cluster=cluster, name='agent')[1]}")
    return client


def _clients(api_client, auth_client, agent_client) -> dict[str, APIClient]:
    return {"anonymous": api_client, "user": auth_client, "agent": agent_client}


# (who, method, path template) — one endpoint of each kind: sign-up and login (anonymous), an operator create,
# update and action, and the agent's intake.
ENDPOINTS = [
    ("anonymous", "post", "/api/v1/auth/signup"),
    ("anonymous", "post", "/api/v1/auth/login"),
    ("anonymous", "post", "/api/v1/auth/refresh"),
    ("user", "post", "/api/v1/auth/change-password"),
    ("user", "post", "/api/v1/templates"),
    ("user", "patch", "/api/v1/clusters/{cluster}/policy"),
    ("user", "post", "/api/v1/clusters/{cluster}/api-keys"),
    ("user", "post", "/api/v1/accounts"),
    ("agent", "post", "/api/v1/agent/snapshot"),
    ("agent", "post", "/api/v1/agent/events"),
]


def _counts() -> dict[str, int]:
    return {
        "users": User.objects.count(),
        "orgs": Organization.objects.count(),
        "templates": NodeTemplate.objects.count(),
        "policies": ClusterPolicy.objects.count(),
        "nodes": KubeNode.objects.count(),
        "events": AgentEvent.objects.count(),
        "audit": AuditLog.objects.count(),
    }


def _send(client: APIClient, method: str, path: str, body: str):
    return getattr(client, method)(path, data=body.encode("utf-8", "surrogatepass"), content_type="application/json")


@pytest.mark.parametrize("body", [DEEP_LIST, DEEP_OBJECT], ids=["list", "object"])
@pytest.mark.parametrize(("who", "method", "path"), ENDPOINTS)
def test_json_nested_a_thousand_deep_is_400_everywhere(
    api_client, auth_client, agent_client, cluster, who, method, path, body
):
    client = _clients(api_client, auth_client, agent_client)[who]
    before = _counts()
    response = _send(client, method, path.format(cluster=cluster.pk), body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "parse_error"
    assert "nested deeper than" in response.json()["error"]["message"]
    assert _counts() == before


# Raw JSON text: NUL and lone surrogates can only arrive as \u escapes.
BAD_STRINGS = [r"\u0000", r"a\u0000b", r"\ud800", r"x\udfffy"]


def _with(bad: str) -> dict[str, str]:
    """A body per endpoint with ``bad`` inside one of its strings (a value, or a key)."""
    return {
        "/api/v1/auth/signup": (
            f'{{"email": "n@example.com", "password": "Long-enough-pass-1", "organization_name": "{bad}"}}'
        ),
        "/api/v1/auth/login": f'{{"email": "n{bad}@example.com", "password": "x"}}',
        "/api/v1/auth/refresh": f'{{"refresh": "{bad}"}}',
        "/api/v1/auth/change-password": f'{{"old_password": "{bad}", "new_password": "Another-long-pass-2"}}',
        "/api/v1/templates": (
            f'{{"name": "t", "architectures": ["x86_64"], "capacity_types": ["spot"], "labels": {{"team": "{bad}"}}}}'
        ),
        "/api/v1/clusters/{cluster}/policy": f'{{"disruption_budgets": [{{"nodes": "1{bad}"}}]}}',
        "/api/v1/clusters/{cluster}/api-keys": f'{{"name": "{bad}"}}',
        "/api/v1/accounts": f'{{"name": "acct", "role_arn": "arn:aws:iam::123456789012:role/{bad}"}}',
        "/api/v1/agent/snapshot": (
            f'{{"nodes": [{{"name": "n1", "labels": {{"{bad}": "v"}}}}], "pods": [{{"namespace": "d", "name": "p"}}]}}'
        ),
        "/api/v1/agent/events": f'{{"events": [{{"type": "node-not-ready", "node": "{bad}"}}]}}',
    }


@pytest.mark.parametrize("bad", BAD_STRINGS)
@pytest.mark.parametrize(("who", "method", "path"), ENDPOINTS)
def test_nul_and_lone_surrogates_are_400_everywhere(
    api_client, auth_client, agent_client, cluster, who, method, path, bad
):
    client = _clients(api_client, auth_client, agent_client)[who]
    before = _counts()
    response = _send(client, method, path.format(cluster=cluster.pk), _with(bad)[path])
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] == "parse_error"
    assert ("NUL" in error["message"]) == ("0000" in bad)
    assert _counts() == before


def test_a_surrogate_pair_is_an_ordinary_character(auth_client):
    body = r'{"name": "emoji \ud83d\ude00", "architectures": ["x86_64"], "capacity_types": ["spot"]}'
    response = _send(auth_client, "post", "/api/v1/templates", body)
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "emoji \U0001f600"


@pytest.mark.parametrize("number", ["1e999", "-1e400"])
def test_numbers_that_parse_to_infinity_are_400(auth_client, cluster, number):
    response = _send(auth_client, "patch", f"/api/v1/clusters/{cluster.pk}/policy", f'{{"on_demand_base": {number}}}')
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
@pytest.mark.parametrize(("who", "method", "path"), ENDPOINTS)
def test_body_over_the_limit_is_413_on_every_endpoint(
    api_client, auth_client, agent_client, cluster, who, method, path
):
    client = _clients(api_client, auth_client, agent_client)[who]
    before = _counts()
    body = json.dumps({"name": "x" * 4096})
    response = _send(client, method, path.format(cluster=cluster.pk), body)
    assert response.status_code == 413, response.content
    assert response.json() == {
        "error": {"code": "payload_too_large", "message": "Request body larger than 2048 bytes."}
    }
    assert _counts() == before


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_body_at_the_limit_is_read(auth_client):
    body = json.dumps({"name": "t", "architectures": ["x86_64"], "capacity_types": ["spot"], "description": ""})
    body = body.replace('"description": ""', '"description": "' + "d" * (2048 - len(body)) + '"')
    assert len(body) == 2048
    assert _send(auth_client, "post", "/api/v1/templates", body).status_code == 201


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=2048)
def test_console_form_over_the_limit_is_413(client, user):
    client.force_login(user)
    response = client.post("/templates/new/", {"name": "x" * 4096})
    assert response.status_code == 413
    assert NodeTemplate.objects.count() == 0


def test_content_length_that_is_not_a_number_is_400(auth_client):
    response = auth_client.generic("POST", "/api/v1/templates", b"{}", "application/json", CONTENT_LENGTH="ten")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


@pytest.mark.parametrize("page_size", ["0", "-1", "abc", "501", "1.5", "99999999999999999999", "٣"])
@pytest.mark.parametrize("path", ["/api/v1/templates", "/api/v1/clusters", "/api/v1/accounts", "/api/v1/audit"])
def test_bad_page_size_is_400(auth_client, path, page_size):
    response = auth_client.get(path, {"page_size": page_size})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["fields"] == {"page_size": ["An integer from 1 to 500."]}


@pytest.mark.parametrize("path", ["/api/v1/templates", "/api/v1/audit"])
def test_good_page_size_is_used(auth_client, org, path):
    from audit.services import record

    for i in range(3):
        record(action="test.entry", organization_id=org.pk, resource_type="t", resource_id=str(i))
        NodeTemplate.objects.create(organization=org, name=f"t{i}")
    response = auth_client.get(path, {"page_size": "2"})
    assert response.status_code == 200
    assert len(response.json()["results"]) == 2
