"""One FilterSet for the API list and the console list of node templates."""

from __future__ import annotations

import django_filters

from .models import NodeTemplate


class NodeTemplateFilter(django_filters.FilterSet):
    q = django_filters.CharFilter(field_name="name", lookup_expr="icontains", label="Name contains")
    is_default = django_filters.BooleanFilter()
    strategy = django_filters.ChoiceFilter(choices=NodeTemplate.Strategy.choices)

    class Meta:
        model = NodeTemplate
        fields = ["q", "is_default", "strategy"]
