"""The OpenAPI document the fuzzer (``make fuzz``) trusts: valid OpenAPI 3, every operation documents its 4xx answers
in the error shape, the agent's request bodies are described, nullable fields are marked, page_size is bounded."""

from __future__ import annotations

import json

import pytest
from openapi_spec_validator import validate

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    return json.loads(response.content)


def _operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, operation


def test_schema_is_valid_openapi(schema):
    validate(schema)


def test_every_operation_documents_its_errors_in_the_error_shape(schema):
    error_ref = "#/components/schemas/ErrorResponse"
    for path, method, operation in _operations(schema):
        responses = operation["responses"]
        expected = {"400", "401", "403", "404", "429"}
        if method != "get":
            expected |= {"409", "413", "415"}
        assert expected <= set(responses), (method, path)
        for code in expected:
            assert responses[code]["content"]["application/json"]["schema"] == {"$ref": error_ref}, (method, path)
    error = schema["components"]["schemas"]["ErrorDetail"]
    assert set(error["required"]) == {"code", "message"}


def test_agent_request_bodies_are_described(schema):
    components = schema["components"]["schemas"]
    snapshot = schema["paths"]["/api/v1/agent/snapshot"]["post"]["requestBody"]["content"]["application/json"]
    assert snapshot["schema"] == {"$ref": "#/components/schemas/SnapshotInputRequest"}
    body = components["SnapshotInputRequest"]
    assert set(body["required"]) == {"nodes", "pods"}
    node = components["SnapshotNodeRequest"]["properties"]
    assert set(node) >= {"name", "provider_id", "instance_type", "zone", "capacity_type", "labels", "taints"}
    assert components["_AllocatableRequest"]["properties"]["pods"]["maximum"] == 2**31 - 1
    assert components["SnapshotPodRequest"]["properties"]["priority"]["minimum"] == -(2**31)
    events = schema["paths"]["/api/v1/agent/events"]["post"]["requestBody"]["content"]["application/json"]
    assert events["schema"] == {"$ref": "#/components/schemas/EventsInputRequest"}
    assert components["AgentEventRequest"]["properties"]["occurred_at"]["format"] == "date-time"


def test_nullable_fields_are_marked(schema):
    components = schema["components"]["schemas"]
    assert components["CloudAccountDetail"]["properties"]["cluster_count"]["nullable"] is True
    assert components["Cluster"]["properties"]["cloud_account_name"]["nullable"] is True


def test_page_size_is_bounded_in_the_schema(schema):
    for path, _method, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "page_size":
                assert parameter["schema"] == {"type": "integer", "minimum": 1, "maximum": 500}, path
