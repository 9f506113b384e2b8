"""Settings from the environment: list settings in the comma or the JSON-list form, and AWS_REGION as an alias."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from spotopt.env import env_list

ROOT = Path(__file__).resolve().parents[2]
PRINT_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings; from django.core import checks; "
    "errors = [str(m) for m in checks.run_checks() if m.level >= checks.ERROR]; "
    "print(json.dumps({'cors': settings.CORS_ALLOWED_ORIGINS, 'region': settings.AWS_DEFAULT_REGION, "
    "'errors': errors}))"
)


def _start(**env: str) -> dict:
    """Start Django in a fresh process with ``env`` (the way the server starts), return what it read."""
    base = {k: v for k, v in os.environ.items() if k not in {"CORS_ORIGINS", "AWS_REGION", "AWS_DEFAULT_REGION"}}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_SETTINGS],
        cwd=ROOT,
        env=base | {"DJANGO_SETTINGS_MODULE": "spotopt.settings"} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_cors_origins_json_list_form_starts_and_is_read() -> None:
    started = _start(CORS_ORIGINS='["https://app.example.com", "https://admin.example.com"]')
    assert started["cors"] == ["https://app.example.com", "https://admin.example.com"]
    assert started["errors"] == []


def test_cors_origins_comma_form_still_works() -> None:
    assert _start(CORS_ORIGINS="https://a.example.com, https://b.example.com")["cors"] == [
        "https://a.example.com",
        "https://b.example.com",
    ]


def test_aws_region_is_an_alias_of_aws_default_region() -> None:
    assert _start(AWS_REGION="eu-west-1")["region"] == "eu-west-1"
    assert _start(AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="us-west-2")["region"] == "us-west-2"
    assert _start()["region"] == "us-east-1"


@pytest.mark.parametrize("raw", ['["https://a.example.com"', '["a", 1]', "[1, 2]"])
def test_a_malformed_json_list_is_a_clear_configuration_error(monkeypatch, raw) -> None:
    monkeypatch.setenv("CORS_ORIGINS", raw)
    with pytest.raises(ImproperlyConfigured, match="CORS_ORIGINS"):
        env_list("CORS_ORIGINS")


def test_each_test_process_has_a_redis_database_of_its_own() -> None:
    """Under ``pytest -n`` one process's ``cache.clear()`` (FLUSHDB) must not wipe another's counters."""
    code = (
        "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'spotopt.settings_test'; import django; "
        "django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.REDIS_URL, s.CACHES['default']['LOCATION'], s.CELERY_BROKER_URL]))"
    )

    def urls(**env: str) -> list[str]:
        base = {k: v for k, v in os.environ.items() if k not in {"PYTEST_XDIST_WORKER", "CELERY_BROKER_URL"}}
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=base | env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    redis = "redis://127.0.0.1:6379/4"
    assert urls(REDIS_URL=redis, PYTEST_XDIST_WORKER="gw0") == ["redis://127.0.0.1:6379/6"] * 3
    assert urls(REDIS_URL=redis, PYTEST_XDIST_WORKER="gw1") == ["redis://127.0.0.1:6379/7"] * 3
    assert urls(REDIS_URL=redis) == [redis] * 3  # one process: the URL as given
