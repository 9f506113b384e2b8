"""API shapes of jobs and recommendations. Money is a decimal string (USD per hour unless said otherwise)."""

from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from .models import JobStep, OptimizationJob

HOURS_PER_MONTH = Decimal(730)


class JobCreateSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(required=False, default=False)


class JobStepSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobStep
        fields = [
            "id",
            "kind",
            "state",
            "target",
            "params",
            "result",
            "attempts",
            "message",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class _ClusterRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    region = serializers.CharField()


class JobSummarySerializer(serializers.ModelSerializer):
    cluster = _ClusterRef(read_only=True)
    projected_saving = serializers.DecimalField(
        source="projected_hourly_saving", max_digits=14, decimal_places=6, read_only=True, allow_null=True
    )
    realized_saving = serializers.DecimalField(
        source="realized_hourly_saving", max_digits=14, decimal_places=6, read_only=True, allow_null=True
    )

    class Meta:
        model = OptimizationJob
        fields = [
            "id",
            "cluster",
            "trigger",
            "state",
            "dry_run",
            "projected_saving",
            "realized_saving",
            "current_hourly_cost",
            "planned_hourly_cost",
            "fallback",
            "started_by_label",
            "created_at",
            "approved_at",
            "started_at",
            "finished_at",
            "error",
        ]
        read_only_fields = fields


class JobSerializer(JobSummarySerializer):
    steps = JobStepSerializer(many=True, read_only=True)

    class Meta(JobSummarySerializer.Meta):
        fields = [*JobSummarySerializer.Meta.fields, "plan", "current_nodes", "notes", "steps", "cancel_requested"]
        read_only_fields = fields


class RecommendationSerializer(serializers.Serializer):
    current_hourly_cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    planned_hourly_cost = serializers.DecimalField(max_digits=14, decimal_places=6)
    saving = serializers.SerializerMethodField()
    add = serializers.SerializerMethodField()
    remove = serializers.SerializerMethodField()
    plan = serializers.JSONField()
    computed_at = serializers.DateTimeField()
    refreshing = serializers.SerializerMethodField(
        help_text="True when this plan predates the cluster's latest snapshot and a worker is planning it again."
    )

    def get_refreshing(self, obj) -> bool:
        return bool(getattr(obj, "refreshing", False))

    def get_saving(self, obj) -> dict:
        return {
            "hourly": str(obj.saving_hourly),
            "monthly": str((obj.saving_hourly * HOURS_PER_MONTH).quantize(Decimal("0.01"))),
            "pct": str(obj.saving_pct),
        }

    def get_add(self, obj) -> list[dict]:
        return [
            {k: n[k] for k in ("instance_type", "zone", "capacity_type", "price")}
            for n in obj.plan.get("nodes", [])
            if n.get("new")
        ]

    def get_remove(self, obj) -> list[str]:
        return list(obj.plan.get("remove") or [])


class NotificationSettingsSerializer(serializers.Serializer):
    """The organization's job notifications. The webhook URL is a secret: only its masked form is ever answered."""

    webhook_set = serializers.SerializerMethodField()
    webhook_url = serializers.SerializerMethodField(help_text="Masked: scheme, host and the last 4 characters.")
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    def get_webhook_set(self, obj) -> bool:
        return bool(obj.webhook_url)

    def get_webhook_url(self, obj) -> str:
        from .services.notifications import mask_webhook_url

        return mask_webhook_url(obj.webhook_url)


class NotificationSettingsUpdateSerializer(serializers.Serializer):
    webhook_url = serializers.CharField(
        allow_blank=True, max_length=2000, trim_whitespace=True, help_text='http(s) URL; "" clears it.'
    )
