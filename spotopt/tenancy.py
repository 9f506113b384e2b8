"""Tenancy in one place: a CLIENT sees only its organization's rows; a SUPER_ADMIN sees all.

Every model that belongs to an organization exposes ``objects.for_user(user)`` built on :func:`scope`, and console and
API fetch single objects through :func:`get_for_user`, which raises 404 (never 403) for another organization's rows.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import models
from django.http import Http404

M = TypeVar("M", bound=models.Model)


def scope(queryset: models.QuerySet[M], user, *, field: str = "organization") -> models.QuerySet[M]:
    if user is None or not user.is_authenticated:
        return queryset.none()
    if getattr(user, "is_super_admin", False):
        return queryset
    if user.organization_id is None:
        return queryset.none()
    return queryset.filter(**{f"{field}_id": user.organization_id})


class TenantQuerySet(models.QuerySet):
    """QuerySet with ``for_user``; ``tenant_field`` is the path to the organization (``cluster__organization``)."""

    tenant_field = "organization"

    def for_user(self, user):
        return scope(self, user, field=self.tenant_field)


def get_for_user(queryset: models.QuerySet[M], user, **lookup) -> M:
    """One object of the caller's organization, or 404 (also for malformed ids)."""
    qs = queryset.for_user(user) if hasattr(queryset, "for_user") else scope(queryset, user)
    try:
        return qs.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404 from exc
