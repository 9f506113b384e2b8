from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from accounts.models import User
from tests.factories import DEFAULT_PASSWORD

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_client_cannot_use_django_admin(client, user):
    user.is_staff = True  # even a wrongly flagged client stays out
    user.save()
    client.force_login(user)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


@pytest.mark.django_db
def test_super_admin_uses_django_admin(client, super_admin):
    client.force_login(super_admin)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/accounts/user/").status_code == 200


@pytest.mark.django_db
def test_default_super_admin_exists_with_bcrypt_hash():
    admin = User.objects.get(email="admin@spotoptimizer.com")
    assert admin.is_super_admin
    assert admin.check_password("admin123")


@pytest.mark.django_db
def test_set_admin_password_command(monkeypatch):
    monkeypatch.setenv("NEW_ADMIN_PASSWORD", "A-much-better-one-77")
    call_command("set_admin_password", password_env="NEW_ADMIN_PASSWORD")
    admin = User.objects.get(email="admin@spotoptimizer.com")
    assert admin.check_password("A-much-better-one-77")
    assert not admin.check_password("admin123")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=120
    )


def test_production_refuses_to_start_without_secrets(tmp_path):
    result = _run(
        {"ENVIRONMENT": "production", "SECRET_KEY": "", "JWT_SECRET_KEY": "", "VAR_DIR": str(tmp_path)}, "check"
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_check_deploy_reports_only_operator_settings(tmp_path):
    """With production settings, ``check --deploy`` warns only about what the operator decides."""
    env = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "x" * 60 + "-A1b2C3d4",
        "JWT_SECRET_KEY": "y" * 60,
        "FIELD_ENCRYPTION_KEY": "aDB0ZXN0LWtleS1mb3ItZmllbGQtZW5jcnlwdGlvbjA=",
        "AUDIT_SIGNING_KEY": "z" * 48,
        "ALLOWED_HOSTS": "spot.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "VAR_DIR": str(tmp_path),
    }
    migrate = _run(env, "migrate", "-v0")
    assert migrate.returncode == 0, migrate.stderr
    result = _run(env, "check", "--deploy")
    output = result.stdout + result.stderr
    assert "spotopt.W001" in output  # the default admin password is still set
    # W021 (HSTS preload) is the operator's call: submitting a domain to browsers' preload list.
    reported = {line.split("(")[1].split(")")[0] for line in output.splitlines() if line.startswith("?: (")}
    assert reported == {"spotopt.W001", "security.W021"}, output
    env["NEW_PW"] = "Changed-" + DEFAULT_PASSWORD
    assert _run(env, "set_admin_password", "--password-env", "NEW_PW").returncode == 0
    result = _run(env, "check", "--deploy")
    assert result.returncode == 0
    assert "spotopt.W001" not in result.stdout + result.stderr


def _production_env(tmp_path, **overrides: str) -> dict[str, str]:
    env = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": "s" * 40 + "-Q7w9",
        "JWT_SECRET_KEY": "j" * 40 + "-R2t4",
        "AUDIT_SIGNING_KEY": "a" * 40 + "-K8p3",
        "FIELD_ENCRYPTION_KEY": "aDB0ZXN0LWtleS1mb3ItZmllbGQtZW5jcnlwdGlvbjA=",
        "ALLOWED_HOSTS": "spot.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "VAR_DIR": str(tmp_path),
    }
    return env | overrides


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SECRET_KEY": "short-but-not-empty"}, "SECRET_KEY"),
        ({"JWT_SECRET_KEY": "x" * 31}, "JWT_SECRET_KEY"),
        ({"SECRET_KEY": "dev-insecure-secret-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz"}, "SECRET_KEY"),
        (
            {"JWT_SECRET_KEY": "dev-insecure-secret-key-change-me-0123456789-abcdefghijklmnopqrstuvwxyz-jwt"},
            "JWT_SECRET_KEY",
        ),
        ({"FIELD_ENCRYPTION_KEY": "not-a-fernet-key"}, "FIELD_ENCRYPTION_KEY"),
        ({"FIELD_ENCRYPTION_KEY": "aDB0ZXN0LWtleS1mb3ItZmllbGQtZW5jcnlwdGlvbjA=,c2hvcnQ="}, "FIELD_ENCRYPTION_KEY"),
    ],
)
def test_production_refuses_weak_or_default_secrets(tmp_path, overrides, named):
    result = _run(_production_env(tmp_path, **overrides), "check")
    assert result.returncode != 0
    assert named in result.stderr
    assert "ImproperlyConfigured" in result.stderr


def test_production_starts_with_strong_secrets(tmp_path):
    result = _run(_production_env(tmp_path), "check")
    assert result.returncode == 0, result.stderr


def _start_web(env: dict[str, str]) -> subprocess.CompletedProcess:
    """What gunicorn and runserver do first: load the WSGI application."""
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    return subprocess.run(
        [sys.executable, "-c", "import spotopt.wsgi"],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_warns_at_every_start_while_the_default_admin_password_is_set(tmp_path):
    env = _production_env(tmp_path)
    assert _run(env, "migrate", "-v0").returncode == 0
    for _ in range(2):
        started = _start_web(env)
        assert started.returncode == 0, started.stderr
        assert "still has its default password" in started.stderr
    env["NEW_PW"] = "Changed-" + DEFAULT_PASSWORD
    assert _run(env, "set_admin_password", "--password-env", "NEW_PW").returncode == 0
    started = _start_web(env)
    assert started.returncode == 0, started.stderr
    assert "default password" not in started.stderr
