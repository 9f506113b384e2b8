"""The cluster FilterSet, shared by the console list and the API list."""

from __future__ import annotations

import django_filters

from .models import Cluster


class ClusterFilter(django_filters.FilterSet):
    name = django_filters.CharFilter(lookup_expr="icontains")
    region = django_filters.CharFilter()
    kind = django_filters.ChoiceFilter(choices=Cluster.Kind.choices)
    source = django_filters.ChoiceFilter(choices=Cluster.Source.choices)
    cloud_account = django_filters.NumberFilter(field_name="cloud_account_id")
    missing = django_filters.BooleanFilter(field_name="missing_since", lookup_expr="isnull", exclude=True)

    class Meta:
        model = Cluster
        fields = ("name", "region", "kind", "source", "cloud_account", "missing")
