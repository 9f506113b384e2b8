"""The audit log's filters: one FilterSet for the console page, its CSV export and the API list."""

from __future__ import annotations

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django_filters.fields import IsoDateTimeField

from spotopt.api.values import datetime_error

from .models import AuditLog


class BoundedIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time that a query can use: impossible dates (``2024-02-30``), year 0 and offsets that push
    the instant past what the database holds (``9999-12-31T23:59:59-23:59``) are form errors, not overflows."""

    def to_python(self, value):
        try:
            parsed = super().to_python(value)
        except (ValueError, OverflowError):
            raise ValidationError("Enter a valid date/time.", code="invalid")
        if parsed is not None and (problem := datetime_error(parsed)) is not None:
            raise ValidationError(problem, code="out_of_range")
        return parsed


class BoundedIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


class AuditLogFilter(django_filters.FilterSet):
    """``actor`` (a user/API key id, or part of its label when not all digits), ``actor_type``, ``action`` (prefix),
    ``resource_type``, ``resource_id``, ``request_id``, ``since``/``until`` (ISO 8601; since inclusive, until
    exclusive) and, for super admins, ``org``. The queryset handed in is already scoped to the caller, so ``org``
    cannot widen it."""

    actor = django_filters.CharFilter(method="filter_actor", label="Actor")
    actor_type = django_filters.ChoiceFilter(choices=AuditLog.ActorType.choices, label="Actor type")
    action = django_filters.CharFilter(field_name="action", lookup_expr="startswith", label="Action prefix")
    resource_type = django_filters.CharFilter(field_name="resource_type", label="Resource type")
    resource_id = django_filters.CharFilter(field_name="resource_id", label="Resource id")
    request_id = django_filters.CharFilter(field_name="request_id", label="Request id")
    since = BoundedIsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        label="Since",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    until = BoundedIsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        label="Until",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    org = django_filters.NumberFilter(field_name="organization_id", label="Organization id", min_value=1)

    class Meta:
        model = AuditLog
        fields: list[str] = []

    def filter_actor(self, queryset: QuerySet[AuditLog], name: str, value: str) -> QuerySet[AuditLog]:
        value = value.strip()
        if not value:
            return queryset
        # All digits is an id (user or API key), matched exactly: "2" must not also match every label containing a 2.
        # Anything else is a case-insensitive part of the label (an email, "api-key:ab12").
        if value.isdigit():
            return queryset.filter(actor_id=value)
        return queryset.filter(actor_label__icontains=value)
