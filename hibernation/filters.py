"""The schedule FilterSet, shared by the console list and the API list."""

from __future__ import annotations

import django_filters

from clusters.models import Cluster

from .models import HibernationSchedule


class ScheduleFilter(django_filters.FilterSet):
    cluster = django_filters.NumberFilter(field_name="cluster_id")
    enabled = django_filters.BooleanFilter()
    state = django_filters.ChoiceFilter(
        field_name="cluster__hibernation_state", choices=Cluster.HibernationState.choices
    )

    class Meta:
        model = HibernationSchedule
        fields = ("cluster", "enabled", "state")
