"""Small helpers for the audit tests."""

from __future__ import annotations

from django.db import connection

from audit.models import AuditLog
from audit.services import record


def append(n: int, *, organization=None, action: str = "thing.update", **kwargs) -> list[AuditLog]:
    return [
        record(
            action=action,
            organization=organization,
            resource_type="thing",
            resource_id=i,
            before={"n": i},
            after={"n": i + 1},
            **kwargs,
        )
        for i in range(n)
    ]


def tamper(sql: str, params: list) -> None:
    """Run ``sql`` against audit_logs behind the model's back. On PostgreSQL the append-only trigger is disabled
    around it, as someone with owner rights on the table could do; SQLite has no trigger to disable."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_logs ENABLE ALWAYS TRIGGER audit_logs_append_only")
