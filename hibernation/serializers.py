"""API shapes of schedules. Input is validated by the service (``hibernation.services.clean_schedule``) from the
model's one list of editable fields; these serializers only read."""

from __future__ import annotations

from rest_framework import serializers

from . import selectors
from .models import HibernationPeriod, HibernationSchedule


class OverrideSerializer(serializers.Serializer):
    state = serializers.CharField(source="override_state")
    since = serializers.DateTimeField(source="override_since")
    until = serializers.DateTimeField(source="override_until")
    reason = serializers.CharField(source="override_reason")
    by = serializers.CharField(source="override_by")


class TransitionSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    local = serializers.CharField()
    action = serializers.ChoiceField(choices=["sleep", "pre-warm", "wake"])

    def to_representation(self, instance):
        return instance.as_json()


class ScheduleSerializer(serializers.ModelSerializer):
    cluster_name = serializers.CharField(source="cluster.name", read_only=True)
    hibernation_state = serializers.CharField(source="cluster.hibernation_state", read_only=True)
    override = serializers.SerializerMethodField()
    next_transition = serializers.SerializerMethodField()
    transition = serializers.SerializerMethodField()

    class Meta:
        model = HibernationSchedule
        fields = (
            "id",
            "cluster",
            "cluster_name",
            "hibernation_state",
            *HibernationSchedule.EDITABLE_FIELDS,
            "override",
            "next_transition",
            "transition",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields

    def get_override(self, schedule: HibernationSchedule) -> dict | None:
        if not schedule.active_override():
            return None
        return OverrideSerializer(schedule).data

    def get_next_transition(self, schedule: HibernationSchedule) -> dict | None:
        found = selectors.next_transition(schedule)
        return found.as_json() if found else None

    def get_transition(self, schedule: HibernationSchedule) -> dict | None:
        """The running sleep or wake: direction, step and when it started."""
        progress = schedule.progress or {}
        if not progress:
            return None
        return {k: progress.get(k) for k in ("direction", "step", "started_at", "errors")}


class ScheduleWriteSerializer(serializers.Serializer):
    """Documents the body of POST and PATCH (the service validates it)."""

    cluster = serializers.IntegerField(help_text="POST only.")
    name = serializers.CharField()
    time_zone = serializers.CharField(required=False, help_text="IANA zone; default the cluster's.")
    windows = serializers.JSONField(required=False)
    pre_warm_minutes = serializers.IntegerField(required=False, min_value=0, max_value=240)
    holidays = serializers.ListField(child=serializers.CharField(), required=False)
    exceptions = serializers.ListField(child=serializers.CharField(), required=False)
    keep = serializers.JSONField(required=False)
    enabled = serializers.BooleanField(required=False)


class OverrideInputSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=HibernationSchedule.Override.choices)
    until = serializers.CharField(help_text="ISO 8601 with an offset or Z.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=255)


class PreviewSerializer(serializers.Serializer):
    time_zone = serializers.CharField()
    start = serializers.CharField(source="from")
    days = serializers.IntegerField()
    transitions = TransitionSerializer(many=True)


class PeriodSerializer(serializers.ModelSerializer):
    lateness_seconds = serializers.IntegerField(read_only=True)

    class Meta:
        model = HibernationPeriod
        fields = (
            "id",
            "started_at",
            "asleep_at",
            "waking_at",
            "wake_at",
            "ready_at",
            "awake_at",
            "lateness_seconds",
            "node_count",
            "hourly_cost",
            "node_hours",
            "saving",
        )
        read_only_fields = fields
