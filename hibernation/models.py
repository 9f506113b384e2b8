"""Hibernation schedules (the seed's ``hibernation_schedules``) and the sleep periods they produced."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet

from . import timetable


def default_keep() -> dict:
    return {"node_groups": [], "labels": {}}


class ScheduleQuerySet(TenantQuerySet):
    tenant_field = "cluster__organization"


class HibernationSchedule(models.Model):
    """A cluster's weekly sleep timetable in an IANA zone, with holidays, exceptions, a pre-warm and at most one
    manual override; and, while a transition runs or the cluster sleeps, what is needed to restore it.

    Editable fields are listed once in :data:`EDITABLE_FIELDS`; writes go through ``hibernation.services``."""

    class Override(models.TextChoices):
        AWAKE = "awake", "Keep awake"
        ASLEEP = "asleep", "Sleep"

    EDITABLE_FIELDS = (
        "name",
        "time_zone",
        "windows",
        "pre_warm_minutes",
        "holidays",
        "exceptions",
        "keep",
        "enabled",
    )

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="hibernation_schedules")
    name = models.CharField(max_length=200)
    time_zone = models.CharField(max_length=64, help_text="IANA zone; the cluster's by default.")
    windows = models.JSONField(default=list, blank=True)
    pre_warm_minutes = models.PositiveIntegerField(default=0)
    holidays = models.JSONField(default=list, blank=True, help_text='Local dates "YYYY-MM-DD" asleep all day.')
    exceptions = models.JSONField(default=list, blank=True, help_text='Local dates "YYYY-MM-DD" awake all day.')
    keep = models.JSONField(default=default_keep, blank=True, help_text="Capacity that never sleeps.")
    enabled = models.BooleanField(default=True)

    override_state = models.CharField(max_length=8, choices=Override.choices, blank=True)
    override_since = models.DateTimeField(null=True, blank=True)
    override_until = models.DateTimeField(null=True, blank=True)
    override_reason = models.CharField(max_length=255, blank=True)
    override_by = models.CharField(max_length=255, blank=True)

    # The running transition (``{"direction": "sleep"|"wake", "step": …, "actions": {…}, …}``), empty when at rest.
    progress = models.JSONField(default=dict, blank=True)
    # What waking restores: node groups' and Auto Scaling groups' sizes and workloads' replicas, written before the
    # sleep changes anything and kept until the cluster is awake again (discovery never writes here).
    restore = models.JSONField(default=dict, blank=True)

    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ScheduleQuerySet.as_manager()

    class Meta:
        db_table = "hibernation_schedules"
        ordering = ("name", "id")
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"], condition=models.Q(enabled=True), name="one_enabled_schedule_per_cluster"
            ),
            models.CheckConstraint(
                condition=models.Q(pre_warm_minutes__lte=timetable.MAX_PRE_WARM_MINUTES),
                name="schedule_pre_warm_range",
            ),
            models.CheckConstraint(
                condition=models.Q(override_state="")
                | models.Q(override_state__in=["awake", "asleep"], override_until__isnull=False),
                name="schedule_override_has_end",
            ),
        ]
        indexes = [
            # The tick reads every enabled schedule with its cluster.
            models.Index(fields=["id"], condition=models.Q(enabled=True), name="schedule_enabled_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    def active_override(self, now=None) -> timetable.Override | None:
        if not self.override_state or self.override_until is None:
            return None
        if self.override_until <= (now or timezone.now()):
            return None
        return timetable.Override(self.override_state, self.override_until, self.override_since)

    def timetable(self, *, now=None, with_override: bool = True) -> timetable.Timetable:
        """The stored values as a :class:`~hibernation.timetable.Timetable` (they were validated on save)."""
        return timetable.build(
            time_zone=self.time_zone,
            windows=self.windows,
            pre_warm_minutes=self.pre_warm_minutes,
            holidays=self.holidays,
            exceptions=self.exceptions,
            override=self.active_override(now) if with_override else None,
        )


class PeriodQuerySet(TenantQuerySet):
    tenant_field = "cluster__organization"


class HibernationPeriod(models.Model):
    """One sleep of a cluster: when capacity went to zero, when it came back, when the last node was Ready against
    the wake time, and what it saved (node-hours avoided × their hourly price)."""

    schedule = models.ForeignKey(HibernationSchedule, null=True, on_delete=models.SET_NULL, related_name="periods")
    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="hibernation_periods")
    started_at = models.DateTimeField(help_text="The sleep began (workloads scaled down).")
    asleep_at = models.DateTimeField(null=True, blank=True, help_text="Capacity reached zero.")
    waking_at = models.DateTimeField(null=True, blank=True, help_text="Capacity was asked back (pre-warm).")
    wake_at = models.DateTimeField(null=True, blank=True, help_text="When nodes were due Ready.")
    ready_at = models.DateTimeField(null=True, blank=True, help_text="The last node became Ready.")
    awake_at = models.DateTimeField(null=True, blank=True, help_text="Workloads were restored.")
    node_count = models.PositiveIntegerField(default=0, help_text="Nodes put to sleep.")
    hourly_cost = models.DecimalField(
        max_digits=14, decimal_places=6, default=0, help_text="What those nodes cost per hour (USD)."
    )
    node_hours = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    saving = models.DecimalField(max_digits=14, decimal_places=6, default=0, help_text="USD.")

    objects = PeriodQuerySet.as_manager()

    class Meta:
        db_table = "hibernation_periods"
        ordering = ("-started_at", "-id")
        indexes = [models.Index(fields=["cluster", "-started_at"], name="hibernation_period_recent_idx")]

    def __str__(self) -> str:
        return f"sleep of cluster {self.cluster_id} from {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def lateness_seconds(self) -> int | None:
        """Seconds the last node became Ready after the wake time (negative: early)."""
        if self.ready_at is None or self.wake_at is None:
            return None
        return int((self.ready_at - self.wake_at).total_seconds())
