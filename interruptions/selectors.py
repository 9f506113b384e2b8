"""Shared reads of the interruptions app, scoped to the caller's organization."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import Interruption


def interruptions_for_user(user) -> QuerySet[Interruption]:
    """The caller's interruption events, newest first, with their cluster and replacement job (one query a page)."""
    return Interruption.objects.for_user(user).select_related("cluster", "job").order_by("-occurred_at", "-id")
