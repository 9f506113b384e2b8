"""One FilterSet for job lists, shared by the API and the console."""

from __future__ import annotations

import django_filters

from .models import OptimizationJob


class JobFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=OptimizationJob.State.choices)
    trigger = django_filters.ChoiceFilter(choices=OptimizationJob.Trigger.choices)
    cluster = django_filters.NumberFilter(field_name="cluster_id")
    active = django_filters.BooleanFilter(method="filter_active")

    class Meta:
        model = OptimizationJob
        fields = ["state", "trigger", "cluster", "dry_run"]

    def filter_active(self, queryset, name, value):
        states = OptimizationJob.ACTIVE_STATES
        return queryset.filter(state__in=states) if value else queryset.exclude(state__in=states)
