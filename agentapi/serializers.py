"""Input and output serializers of the agent API."""

from __future__ import annotations

from rest_framework import serializers

from spotopt.api.values import INT32_MAX, INT32_MIN

from .models import AgentAction, ApiKey, KubeNode
from .validation import EVENT_TYPES, MAX_EVENTS, MAX_NODES, MAX_PODS


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
            "result_output",
            "created_at",
            "leased_at",
            "finished_at",
        )


class ActionResultInputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["succeeded", "failed"])
    message = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")
    output = serializers.JSONField(required=False, default=None, help_text="What the action reports (an object).")


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


# --- Agent request bodies, for the OpenAPI document. ``validation.py`` checks them (faster than serializers on a
# 100,000-pod snapshot, and naming every bad field); these describe the same rules, limits included.
class _AllocatableSerializer(serializers.Serializer):
    cpu_m = serializers.IntegerField(required=False, min_value=0, max_value=2**62)
    memory_mib = serializers.IntegerField(required=False, min_value=0, max_value=2**62)
    pods = serializers.IntegerField(required=False, min_value=0, max_value=INT32_MAX)


class _TaintSerializer(serializers.Serializer):
    key = serializers.CharField(min_length=1)
    value = serializers.CharField(required=False, allow_blank=True)
    effect = serializers.ChoiceField(choices=["NoSchedule", "PreferNoSchedule", "NoExecute"])


class SnapshotNodeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=253)
    provider_id = serializers.CharField(required=False, allow_blank=True, max_length=255)
    instance_type = serializers.CharField(required=False, allow_blank=True, max_length=64)
    zone = serializers.CharField(required=False, allow_blank=True, max_length=32)
    capacity_type = serializers.ChoiceField(choices=["spot", "on-demand"], required=False, allow_blank=True)
    labels = serializers.DictField(child=serializers.CharField(max_length=1024, allow_blank=True), required=False)
    taints = _TaintSerializer(many=True, required=False)
    unschedulable = serializers.BooleanField(required=False)
    ready = serializers.BooleanField(required=False)
    allocatable = _AllocatableSerializer(required=False)


class _PodRequestsSerializer(serializers.Serializer):
    cpu_m = serializers.IntegerField(required=False, min_value=0, max_value=2**62)
    memory_mib = serializers.IntegerField(required=False, min_value=0, max_value=2**62)


class SnapshotPodSerializer(serializers.Serializer):
    namespace = serializers.CharField(max_length=253)
    name = serializers.CharField(max_length=253)
    node = serializers.CharField(required=False, allow_blank=True, max_length=253)
    phase = serializers.ChoiceField(
        choices=["Pending", "Running", "Succeeded", "Failed", "Unknown"], required=False, allow_blank=True
    )
    requests = _PodRequestsSerializer(required=False)
    owner_kind = serializers.CharField(required=False, allow_blank=True, max_length=64)
    owner_name = serializers.CharField(required=False, allow_blank=True, max_length=253)
    daemonset = serializers.BooleanField(required=False)
    do_not_disrupt = serializers.BooleanField(required=False)
    priority = serializers.IntegerField(required=False, min_value=INT32_MIN, max_value=INT32_MAX)


class SnapshotInputSerializer(serializers.Serializer):
    """The cluster as the agent sees it (DESIGN.md §5). Node names and (namespace, name) of pods are unique."""

    agent_version = serializers.CharField(required=False, allow_blank=True, max_length=64)
    kubernetes_version = serializers.CharField(required=False, allow_blank=True, max_length=64)
    nodes = SnapshotNodeSerializer(many=True, max_length=MAX_NODES)
    pods = SnapshotPodSerializer(many=True, max_length=MAX_PODS)


class AgentEventSerializer(serializers.Serializer):
    """A node event; ``node`` or ``instance_id`` is required. Times are ISO 8601 (naive means UTC)."""

    type = serializers.ChoiceField(choices=list(EVENT_TYPES))
    node = serializers.CharField(required=False, allow_blank=True, max_length=253)
    instance_id = serializers.CharField(required=False, allow_blank=True, max_length=32)
    occurred_at = serializers.DateTimeField(required=False, allow_null=True)
    action_deadline = serializers.DateTimeField(required=False, allow_null=True)
    detail = serializers.DictField(required=False, allow_null=True)


class EventsInputSerializer(serializers.Serializer):
    """Several events at once (a single event object is accepted too)."""

    events = AgentEventSerializer(many=True, min_length=1, max_length=MAX_EVENTS)
