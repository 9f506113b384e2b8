"""Tenancy-scoped reads of cloud accounts."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from spotopt.tenancy import get_for_user

from .models import CloudAccount


def cloud_accounts_for_user(user) -> QuerySet[CloudAccount]:
    """The caller's accounts with their cluster counts. One query."""
    return (
        CloudAccount.objects.for_user(user)
        .select_related("organization")
        .annotate(cluster_count=Count("clusters"))
        .order_by("name", "id")
    )


def get_cloud_account(user, pk) -> CloudAccount:
    """One of the caller's accounts, or 404."""
    return get_for_user(CloudAccount.objects.select_related("organization"), user, pk=pk)


def enabled_accounts() -> QuerySet[CloudAccount]:
    """Accounts that periodic sync works on (all organizations)."""
    return CloudAccount.objects.filter(status=CloudAccount.Status.ACTIVE).order_by("id")
