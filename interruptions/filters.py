"""One FilterSet for interruption lists, shared by the API and the console."""

from __future__ import annotations

import django_filters

from .models import Interruption


class InterruptionFilter(django_filters.FilterSet):
    cluster = django_filters.NumberFilter(field_name="cluster_id")
    type = django_filters.ChoiceFilter(field_name="kind", choices=Interruption.Kind.choices)
    since = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = django_filters.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lt")
    # true / false only: anything else is a 400, not silently "all".
    routed = django_filters.TypedChoiceFilter(
        choices=[("true", "true"), ("false", "false")], coerce=lambda value: value == "true"
    )

    class Meta:
        model = Interruption
        fields = ["cluster", "type", "since", "until", "routed"]
