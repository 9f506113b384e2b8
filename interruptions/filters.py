"""One FilterSet for interruption lists, shared by the API and the console."""

from __future__ import annotations

import django_filters
from django import forms

from audit.filters import BoundedIsoDateTimeFilter

from .models import Interruption

MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A database id: a whole number the column can hold (``1.5``, ``-2e-311`` or twenty digits are a 400)."""

    field_class = forms.IntegerField


class InterruptionFilter(django_filters.FilterSet):
    cluster = IdFilter(field_name="cluster_id", label="Cluster id", min_value=1, max_value=MAX_ID)
    type = django_filters.ChoiceFilter(
        field_name="kind", choices=Interruption.Kind.choices, label="Kind", empty_label="Any"
    )
    since = BoundedIsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte", label="Since (UTC)")
    until = BoundedIsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt", label="Until (UTC)")
    # true / false only: anything else is a 400, not silently "all".
    routed = django_filters.TypedChoiceFilter(
        choices=[("", "Any"), ("true", "true"), ("false", "false")],
        coerce=lambda value: value == "true",
        label="Routed",
    )

    class Meta:
        model = Interruption
        fields = ["cluster", "type", "since", "until", "routed"]
