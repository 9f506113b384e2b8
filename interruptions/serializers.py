"""API shapes of interruption events and pool rates."""

from __future__ import annotations

from rest_framework import serializers

from .models import Interruption


class InterruptionSerializer(serializers.ModelSerializer):
    type = serializers.CharField(source="kind")
    instance_id = serializers.CharField(source="ec2_instance_id")
    cluster_name = serializers.CharField(source="cluster.name", default=None)
    outcome = serializers.JSONField()

    class Meta:
        model = Interruption
        fields = [
            "id",
            "event_id",
            "source",
            "type",
            "detail_type",
            "aws_account_id",
            "region",
            "instance_id",
            "cluster",
            "cluster_name",
            "node_name",
            "routed",
            "instance_type",
            "zone",
            "lifecycle",
            "instance_age_seconds",
            "state",
            "occurred_at",
            "action_at",
            "received_at",
            "duplicate_of",
            "outcome_summary",
            "outcome",
            "job",
            "replace_at",
        ]


class PoolRateSerializer(serializers.Serializer):
    instance_type = serializers.CharField()
    zone = serializers.CharField()
    advisor_rate = serializers.FloatField(allow_null=True)
    advisor_bucket = serializers.CharField(allow_null=True)
    interruptions = serializers.IntegerField()
    node_hours = serializers.FloatField()
    observed_rate = serializers.FloatField(allow_null=True)
    blended_rate = serializers.FloatField(allow_null=True)
    bucket = serializers.CharField(allow_null=True, help_text="The Spot Advisor bucket nearest to the blended rate.")
