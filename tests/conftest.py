"""Fixtures shared by the whole suite."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from tests.factories import DEFAULT_PASSWORD, OrganizationFactory, SuperAdminFactory, UserFactory

# moto fixtures (``aws``) for the tests that talk to AWS; ``admin_web`` for the Django admin tests.
pytest_plugins = ["tests.aws_fixtures", "tests.admin_helpers"]


@pytest.fixture(autouse=True)
def _clear_cache():
    """Throttle counters and cached values must not leak between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True, scope="session")
def _flush_past_audit_trigger():
    """Transactional tests (``django_db(transaction=True)``) end with Django's flush, a TRUNCATE of every table, which
    the audit log's append-only triggers reject on PostgreSQL. The test flush alone lifts the triggers around it, in
    the flush's own transaction; nothing else in the suite (or the product) does."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    guarded = (("audit_logs", "audit_logs_append_only"), ("audit_checkpoints", "audit_checkpoints_append_only"))

    def execute_sql_flush(self, sql_list):
        # Re-enabled ALWAYS, as the migrations leave them: a plain ENABLE would let a replica-role session past them.
        tables = [(table, trigger) for table, trigger in guarded if any(table in sql for sql in sql_list)]
        if tables:
            sql_list = [
                *(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}" for table, trigger in tables),
                *sql_list,
                *(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger}" for table, trigger in tables),
            ]
        return original(self, sql_list)

    with mock.patch.object(DatabaseOperations, "execute_sql_flush", execute_sql_flush):
        yield


@pytest.fixture
def password() -> str:
    return DEFAULT_PASSWORD


@pytest.fixture
def org(db):
    return OrganizationFactory()


@pytest.fixture
def user(org):
    return UserFactory(organization=org)


@pytest.fixture
def other_user(db):
    """A CLIENT of another organization."""
    return UserFactory()


@pytest.fixture
def super_admin(db):
    return SuperAdminFactory()


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client


@pytest.fixture
def auth_client(user) -> APIClient:
    """An API client authenticated as ``user`` with a real JWT."""
    return client_for(user)


@pytest.fixture
def other_client(other_user) -> APIClient:
    return client_for(other_user)


@pytest.fixture
def admin_client_api(super_admin) -> APIClient:
    return client_for(super_admin)
