"""API shapes of node templates. Input serializers coerce types; the rules live in ``validation.py``."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from .models import NodeTemplate
from .services import EDITABLE_FIELDS
from .validation import MAX_VCPU


class MoneyField(serializers.DecimalField):
    """USD as a decimal string ("12.50"): numbers are refused, since a float cannot carry cents exactly."""

    default_error_messages = {"not_string": 'Send money as a decimal string, such as "12.50".'}

    def __init__(self, **kwargs):
        kwargs.setdefault("max_digits", 12)
        kwargs.setdefault("decimal_places", 2)
        kwargs.setdefault("min_value", Decimal("0.01"))
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_string")
        return super().to_internal_value(data)


class NodeTemplateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    description = serializers.CharField(max_length=2000, allow_blank=True, required=False)
    architectures = serializers.JSONField(required=False, help_text='["x86_64", "arm64"]')
    instance_families = serializers.JSONField(required=False, help_text='{"include": ["m*", "c7*"], "exclude": ["t*"]}')
    # validation.py's bounds, stated here too so that the OpenAPI schema carries them.
    min_vcpu = serializers.IntegerField(allow_null=True, required=False, min_value=1, max_value=MAX_VCPU)
    max_vcpu = serializers.IntegerField(allow_null=True, required=False, min_value=1, max_value=MAX_VCPU)
    min_memory_gib = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True, required=False)
    max_memory_gib = serializers.DecimalField(max_digits=8, decimal_places=2, allow_null=True, required=False)
    gpu = serializers.ChoiceField(choices=NodeTemplate.Gpu.choices, required=False)
    exclude_burstable = serializers.BooleanField(required=False)
    exclude_bare_metal = serializers.BooleanField(required=False)
    current_generation_only = serializers.BooleanField(required=False)
    capacity_types = serializers.JSONField(required=False, help_text='["spot", "on-demand"]')
    spot_fallback = serializers.BooleanField(required=False)
    fallback_restore_minutes = serializers.IntegerField(required=False, min_value=1, max_value=10080)
    spot_diversity = serializers.BooleanField(required=False)
    max_price_increase_pct = serializers.IntegerField(required=False, min_value=0, max_value=100)
    zones = serializers.JSONField(required=False, help_text='["us-east-1a"]; empty means every zone')
    strategy = serializers.ChoiceField(choices=NodeTemplate.Strategy.choices, required=False)
    labels = serializers.JSONField(required=False, help_text='{"team": "web"}')
    taints = serializers.JSONField(required=False, help_text='[{"key", "value", "effect"}]')
    max_hourly_budget = MoneyField(allow_null=True, required=False)
    is_default = serializers.BooleanField(required=False)


class NodeTemplateSerializer(serializers.ModelSerializer):
    min_memory_gib = serializers.DecimalField(max_digits=8, decimal_places=2, coerce_to_string=False, allow_null=True)
    max_memory_gib = serializers.DecimalField(max_digits=8, decimal_places=2, coerce_to_string=False, allow_null=True)
    max_hourly_budget = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    clusters_count = serializers.SerializerMethodField()

    class Meta:
        model = NodeTemplate
        fields = [
            "id",
            *EDITABLE_FIELDS,
            "is_default",
            "clusters_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_clusters_count(self, obj) -> int | None:
        """Clusters whose policy names this template (present on lists and single reads)."""
        return getattr(obj, "clusters_count", None)


class InstanceTypesQuerySerializer(serializers.Serializer):
    region = serializers.RegexField(
        r"^[a-z]{2}(-[a-z]+)+-\d$", max_length=32, error_messages={"invalid": "A region code such as us-east-1."}
    )


class _SpotZonePriceSerializer(serializers.Serializer):
    zone = serializers.CharField()
    price = serializers.CharField(help_text="USD/h, decimal string")
    savings_pct = serializers.FloatField(allow_null=True)


class _PreviewRowSerializer(serializers.Serializer):
    instance_type = serializers.CharField()
    family = serializers.CharField()
    arch = serializers.CharField()
    vcpu = serializers.IntegerField()
    memory_gib = serializers.FloatField()
    gpus = serializers.IntegerField()
    max_pods = serializers.IntegerField()
    allocatable_cpu_m = serializers.IntegerField()
    allocatable_memory_mib = serializers.IntegerField()
    capacity_types = serializers.ListField(child=serializers.CharField())
    on_demand_price = serializers.CharField(allow_null=True)
    spot = _SpotZonePriceSerializer(many=True)
    min_spot_price = serializers.CharField(allow_null=True)
    max_savings_pct = serializers.FloatField(allow_null=True)
    interruption_rate = serializers.FloatField(allow_null=True, help_text="Spot Advisor bucket midpoint (0-1)")
    interruption_bucket = serializers.CharField(allow_null=True, help_text='Spot Advisor bucket, such as "15-20%"')


class InstanceTypesPreviewSerializer(serializers.Serializer):
    """Schema of ``GET /templates/{id}/instance-types`` (built by ``services.matching.preview``)."""

    template_id = serializers.IntegerField()
    region = serializers.CharField()
    count = serializers.IntegerField()
    instance_types = _PreviewRowSerializer(many=True)
