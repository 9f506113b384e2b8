"""Weak passwords: whitespace only, or made from the account's email address, are refused everywhere a password is
chosen (signup, change-password, set_admin_password)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from accounts.models import User
from accounts.password_validation import NotFromEmailValidator, NotOnlyWhitespaceValidator
from tests.factories import DEFAULT_PASSWORD

pytestmark = pytest.mark.django_db

SIGNUP = "/api/v1/auth/signup"
CHANGE = "/api/v1/auth/change-password"


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("jane.doe@acme.io", "Jane.Doe2024!"),
        ("jane.doe@acme.io", "acme-jane-77"),
        ("ops@acme.test", "Ops-Acme-2024!!"),
        ("ops@acme.test", "test.acme.ops"),
        ("j.smith@corp.example", "SMITHcorp#1990"),
    ],
)
def test_email_derived_passwords_are_refused(email, password):
    with pytest.raises(ValidationError):
        NotFromEmailValidator().validate(password, User(email=email))


@pytest.mark.parametrize(
    ("email", "password"),
    [("jane.doe@acme.io", "Correct-Horse-42"), ("ops@acme.test", "opsrocks-candle-9"), ("x@y.io", "12345!!")],
)
def test_other_passwords_pass_the_email_rule(email, password):
    NotFromEmailValidator().validate(password, User(email=email))


@pytest.mark.parametrize("password", ["        ", "\t\t\t\t\t\t\t\t\t", " \n \n \n \n "])
def test_whitespace_only_passwords_are_refused(password):
    with pytest.raises(ValidationError):
        NotOnlyWhitespaceValidator().validate(password)


@pytest.mark.parametrize("password", [" " * 12, "Ops-Acme-2024!!"])
def test_signup_refuses_weak_passwords(api_client, password):
    response = api_client.post(
        SIGNUP, {"email": "ops@acme.test", "password": password, "organization_name": "Acme"}, format="json"
    )
    assert response.status_code == 400
    assert "password" in response.json()["error"]["fields"]
    assert not User.objects.filter(email="ops@acme.test").exists()


def test_change_password_refuses_weak_passwords(auth_client, user):
    local = user.email.split("@")[0]
    for weak in (" " * 10, f"{local.capitalize()}-Example-99"):
        response = auth_client.post(CHANGE, {"old_password": DEFAULT_PASSWORD, "new_password": weak}, format="json")
        assert response.status_code == 400, weak
        assert "new_password" in response.json()["error"]["fields"]
    user.refresh_from_db()
    assert user.check_password(DEFAULT_PASSWORD)


@pytest.mark.parametrize("password", [" " * 16, "Admin-Spotoptimizer-2024"])
def test_set_admin_password_refuses_weak_passwords(monkeypatch, password):
    monkeypatch.setenv("NEW_ADMIN_PASSWORD", password)
    with pytest.raises(CommandError):
        call_command("set_admin_password", password_env="NEW_ADMIN_PASSWORD")
    assert User.objects.get(email="admin@spotoptimizer.com").check_password("admin123")
