"""Fixtures for the ``cloud`` tests: fake credentials, one moto mock per test module, a no-sleep retry policy."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto import mock_aws

from cloud import AccountSession, AwsCredentials, RetryPolicy

FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach real AWS: fake credentials and no endpoint override from the developer's shell."""
    for key, value in FAKE_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture(scope="module")
def moto_module() -> Iterator[None]:
    """One moto backend shared by the tests of a module (moto is slow to start)."""
    with mock_aws():
        yield


@pytest.fixture
def no_sleep() -> tuple[RetryPolicy, list[float]]:
    """A retry policy that records its delays instead of sleeping."""
    delays: list[float] = []
    return RetryPolicy(attempts=4, base_delay=0.5, sleep=delays.append), delays


@pytest.fixture
def session(moto_module: None) -> AccountSession:
    """A session with the platform's default credentials in us-east-1, against moto."""
    return AccountSession.open(AwsCredentials(), region="us-east-1", endpoint_url="")
