"""Passwords, tokens and keys never reach an audit entry's before/after."""

from __future__ import annotations

import json

import pytest

from audit.models import AuditLog
from audit.services import MASK, MASK_CHANGED, mask_secrets, record

pytestmark = pytest.mark.django_db

SECRETS = {
    "password": "hunter2-password",
    "new_password": "n3w-password-value",
    "refresh": "refresh-token-value",
    "access_token": "access-token-value",
    "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "aws_secret_access_key": "aws-secret-value",
    "session_token": "session-token-value",
    "X-Api-Key": "x-api-key-value",
    "raw_key": "so_live_raw_key_value",
    "private_key": "private-key-value",
    "Authorization": "Bearer abcdefghijklmnop",
    "credentials": {"user": "u", "pass": "credentials-blob"},
}
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"


def _secret_values() -> list[str]:
    return [v for v in SECRETS.values() if isinstance(v, str)] + ["credentials-blob", JWT, PEM, "env-secret-value"]


def test_secrets_are_masked_at_any_depth_and_in_any_spelling(org):
    after = {
        **SECRETS,
        "name": "prod",
        "nested": {"deeper": [{"apiKey": "nested-api-key", "token": JWT}]},
        "note": JWT,  # a JWT under an innocent key
        "ssh": PEM,
        "env": [{"name": "DB_PASSWORD", "value": "env-secret-value"}, {"name": "REGION", "value": "us-east-1"}],
        "taints": [{"key": "spot", "value": "true", "effect": "NoSchedule"}],  # a taint key is not a secret
    }
    entry = record(action="account.update", organization=org, before={"password": "old-password-value"}, after=after)
    stored = AuditLog.objects.get(pk=entry.pk)
    text = json.dumps([stored.before, stored.after])
    for secret in [*_secret_values(), "nested-api-key", "old-password-value"]:
        assert secret not in text
    assert stored.after["name"] == "prod"
    assert stored.after["env"][1] == {"name": "REGION", "value": "us-east-1"}
    assert stored.after["taints"] == [{"key": "spot", "value": "true", "effect": "NoSchedule"}]
    assert stored.before["password"] == MASK
    assert stored.after["password"] == MASK_CHANGED  # a rotation is visible, neither value is
    assert stored.hash == stored.compute_hash()


def test_unchanged_secret_stays_a_plain_mask():
    entry = record(
        action="account.update", before={"token": "same-value", "n": 1}, after={"token": "same-value", "n": 2}
    )
    assert entry.after["token"] == MASK


def test_empty_values_and_counts_stay_visible():
    assert mask_secrets({"password": "", "token": None, "revoked_refresh_tokens": 3, "password_set": True}) == {
        "password": "",
        "token": None,
        "revoked_refresh_tokens": 3,
        "password_set": True,
    }


def test_auth_flows_never_store_a_password_or_token(api_client, auth_client, password):
    api_client.post(
        "/api/v1/auth/signup",
        {"email": "new@example.com", "password": "Very-Secret-Pass-1", "organization_name": "New"},
        format="json",
    )
    api_client.post(
        "/api/v1/auth/login", {"email": "new@example.com", "password": "Wrong-Secret-Pass-2"}, format="json"
    )
    tokens = api_client.post(
        "/api/v1/auth/login", {"email": "new@example.com", "password": "Very-Secret-Pass-1"}, format="json"
    ).json()
    auth_client.post(
        "/api/v1/auth/change-password",
        {"old_password": password, "new_password": "Changed-Secret-Pass-3"},
        format="json",
    )

    entries = list(AuditLog.objects.values_list("action", "before", "after"))
    assert {"auth.signup", "auth.login_failed", "auth.login", "auth.password_change"} <= {a for a, *_ in entries}
    text = json.dumps(entries)
    for secret in (
        "Very-Secret-Pass-1",
        "Wrong-Secret-Pass-2",
        "Changed-Secret-Pass-3",
        password,
        tokens["access"],
        tokens["refresh"],
    ):
        assert secret not in text
