"""API shapes of the cluster policy."""

from __future__ import annotations

from rest_framework import serializers

from .models import ClusterPolicy


class ClusterPolicyInputSerializer(serializers.Serializer):
    optimization_enabled = serializers.BooleanField(required=False)
    mode = serializers.ChoiceField(choices=ClusterPolicy.Mode.choices, required=False)
    node_template = serializers.IntegerField(allow_null=True, required=False, help_text="Template id; null: default.")
    on_demand_base = serializers.FloatField(required=False, min_value=0, max_value=1)
    max_pool_share = serializers.FloatField(required=False, min_value=0, max_value=1)
    max_interruption_rate = serializers.FloatField(allow_null=True, required=False, min_value=0, max_value=1)
    headroom_pct = serializers.IntegerField(required=False, min_value=0, max_value=100)
    consolidation_policy = serializers.ChoiceField(choices=ClusterPolicy.ConsolidationPolicy.choices, required=False)
    consolidate_after = serializers.CharField(required=False, max_length=32)
    disruption_budgets = serializers.JSONField(
        required=False,
        help_text='[{"nodes": "10%", "schedule": "0 9 * * mon-fri", "duration": "8h", "reasons": ["Drifted"]}]',
    )
    maintenance_windows = serializers.JSONField(
        required=False, help_text='[{"schedule": "0 2 * * sun", "duration": "4h"}]'
    )
    on_rebalance = serializers.ChoiceField(choices=ClusterPolicy.OnRebalance.choices, required=False)
    uncordon_after_minutes = serializers.IntegerField(allow_null=True, required=False, min_value=1, max_value=10080)
    validation_delay_seconds = serializers.IntegerField(required=False, min_value=0, max_value=3600)
    ready_timeout_minutes = serializers.IntegerField(required=False, min_value=1, max_value=240)
    drain_timeout_minutes = serializers.IntegerField(required=False, min_value=1, max_value=1440)
    min_saving_pct = serializers.DecimalField(
        required=False, max_digits=5, decimal_places=2, min_value=0, max_value=100, coerce_to_string=True
    )


class _TemplateRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    is_default = serializers.BooleanField()


class ClusterPolicySerializer(serializers.ModelSerializer):
    cluster_id = serializers.IntegerField(read_only=True)
    node_template = serializers.IntegerField(source="node_template_id", allow_null=True, read_only=True)
    effective_node_template = serializers.SerializerMethodField()

    class Meta:
        model = ClusterPolicy
        fields = [
            "cluster_id",
            "optimization_enabled",
            "mode",
            "node_template",
            "effective_node_template",
            "on_demand_base",
            "max_pool_share",
            "max_interruption_rate",
            "headroom_pct",
            "consolidation_policy",
            "consolidate_after",
            "disruption_budgets",
            "maintenance_windows",
            "on_rebalance",
            "uncordon_after_minutes",
            "validation_delay_seconds",
            "ready_timeout_minutes",
            "drain_timeout_minutes",
            "min_saving_pct",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_effective_node_template(self, obj) -> dict | None:
        """The template in force: the policy's, else the organization's default (null when it has none)."""
        template = self.context.get("effective_template")
        if template is None:
            return None
        return {"id": template.pk, "name": template.name, "is_default": template.is_default}
