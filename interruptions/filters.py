"""One FilterSet for interruption lists, shared by the API and the console."""

from __future__ import annotations

import django_filters

from .models import Interruption


class InterruptionFilter(django_filters.FilterSet):
    cluster = django_filters.NumberFilter(field_name="cluster_id", label="Cluster id")
    type = django_filters.ChoiceFilter(
        field_name="kind", choices=Interruption.Kind.choices, label="Kind", empty_label="Any"
    )
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte", label="Since (UTC)")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt", label="Until (UTC)")
    # true / false only: anything else is a 400, not silently "all".
    routed = django_filters.TypedChoiceFilter(
        choices=[("", "Any"), ("true", "true"), ("false", "false")],
        coerce=lambda value: value == "true",
        label="Routed",
    )

    class Meta:
        model = Interruption
        fields = ["cluster", "type", "since", "until", "routed"]
