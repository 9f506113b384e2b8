"""Reads of the audit log shared by the console and the API, scoped to the caller."""

from __future__ import annotations

from django.db.models import QuerySet

from spotopt.tenancy import get_for_user

from .models import AuditLog


def audit_entries_for(user) -> QuerySet[AuditLog]:
    """The entries ``user`` may see, newest first: its organization's (CLIENT) or all of them (SUPER_ADMIN)."""
    return AuditLog.objects.for_user(user).order_by("-created_at", "-id")


def audit_entry_for(user, pk) -> AuditLog:
    """One entry of the caller's organization, or 404 (also for another organization's entry)."""
    return get_for_user(AuditLog.objects.select_related("organization"), user, pk=pk)
