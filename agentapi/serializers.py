"""Input and output serializers of the agent API."""

from __future__ import annotations

from rest_framework import serializers

from .models import AgentAction, ApiKey, KubeNode


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class ApiKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = ("id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "is_active")


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(help_text="Shown once, now.")
    manifest = serializers.CharField(help_text="Kubernetes manifest that installs the agent with this key.")

    class Meta(ApiKeySerializer.Meta):
        fields = (*ApiKeySerializer.Meta.fields, "key", "manifest")


class NodeInstanceSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    instance_id = serializers.CharField()
    instance_type = serializers.CharField()
    zone = serializers.CharField()
    lifecycle = serializers.CharField()
    state = serializers.CharField()
    hourly_price = serializers.DecimalField(
        source="price", max_digits=12, decimal_places=6, allow_null=True, help_text="USD/h now (the one cost rule)."
    )


class KubeNodeSerializer(serializers.ModelSerializer):
    allocatable = serializers.SerializerMethodField()
    instance = NodeInstanceSerializer(allow_null=True)
    pod_count = serializers.IntegerField()

    class Meta:
        model = KubeNode
        fields = (
            "name",
            "provider_id",
            "ec2_instance_id",
            "instance_type",
            "zone",
            "capacity_type",
            "labels",
            "taints",
            "unschedulable",
            "ready",
            "allocatable",
            "pod_count",
            "instance",
            "updated_at",
        )

    def get_allocatable(self, node: KubeNode) -> dict:
        return {"cpu_m": node.cpu_m, "memory_mib": node.memory_mib, "pods": node.max_pods}


class AgentActionSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentAction
        fields = (
            "id",
            "type",
            "target",
            "params",
            "state",
            "attempts",
            "max_attempts",
            "deadline",
            "lease_expires_at",
            "reason",
            "result_message",
            "created_at",
            "leased_at",
            "finished_at",
        )


class ActionResultInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    message = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class AgentMessageSerializer(serializers.Serializer):
    """An action as the agent receives it."""

    id = serializers.IntegerField()
    type = serializers.CharField()
    target = serializers.CharField()
    params = serializers.DictField()
    attempt = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    deadline = serializers.DateTimeField()
    lease_expires_at = serializers.DateTimeField()
