"""Optimization jobs (DESIGN.md §6a): a job carries out one version-2 plan as rows (the job and its steps), advanced
by idempotent ticks; the ICE cache of offerings that lacked capacity; recommendations; webhook notifications."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from spotopt.tenancy import TenantQuerySet


class JobQuerySet(TenantQuerySet):
    tenant_field = "cluster__organization"

    def active(self):
        return self.filter(state__in=OptimizationJob.ACTIVE_STATES)


class OptimizationJob(models.Model):
    """One run of the optimizer's plan on a cluster: validate, launch, wait ready, cordon and drain, terminate."""

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule (automatic)"
        MANUAL = "manual", "Manual"
        FALLBACK_RESTORE = "fallback-restore", "Restore spot after a fallback"
        INTERRUPTION = "interruption", "Interruption"

    class State(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Awaiting approval"
        PLANNED = "planned", "Planned"
        VALIDATING = "validating", "Validating"
        LAUNCHING = "launching", "Launching"
        WAITING_READY = "waiting_ready", "Waiting for nodes to be Ready"
        DRAINING = "draining", "Draining"
        TERMINATING = "terminating", "Terminating"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        ROLLED_BACK = "rolled_back", "Rolled back"

    ACTIVE_STATES = (
        State.PENDING_APPROVAL,
        State.PLANNED,
        State.VALIDATING,
        State.LAUNCHING,
        State.WAITING_READY,
        State.DRAINING,
        State.TERMINATING,
    )
    FINAL_STATES = (State.SUCCEEDED, State.FAILED, State.CANCELLED, State.ROLLED_BACK)
    # Jobs of these triggers replace a cluster's nodes wholesale: at most one active per cluster.
    EXCLUSIVE_TRIGGERS = (Trigger.SCHEDULE, Trigger.MANUAL, Trigger.FALLBACK_RESTORE)

    cluster = models.ForeignKey("clusters.Cluster", on_delete=models.CASCADE, related_name="optimization_jobs")
    trigger = models.CharField(max_length=20, choices=Trigger.choices)
    state = models.CharField(max_length=20, choices=State.choices)
    dry_run = models.BooleanField(default=False)
    # The version-2 problem's current nodes and the plan this job carries out (set when it was planned/approved).
    plan = models.JSONField(default=dict, blank=True)
    # Facts about the plan's nodes the runner needs: current node id -> {instance_id, node_name, asg_name}.
    current_nodes = models.JSONField(default=dict, blank=True)
    current_hourly_cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    planned_hourly_cost = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    projected_hourly_saving = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    realized_hourly_saving = models.DecimalField(max_digits=14, decimal_places=6, null=True, blank=True)
    # True when capacity was short and on-demand was launched instead of spot; a fallback-restore job follows.
    fallback = models.BooleanField(default=False)
    restore_after = models.DateTimeField(null=True, blank=True)
    restored_by = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_label = models.CharField(max_length=200, blank=True, help_text='"user:<email>" or "system:<what>".')
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    # Not before this time does the next tick look at the job (validation delay, polling while waiting).
    next_check_at = models.DateTimeField(default=timezone.now)
    state_changed_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    notes = models.JSONField(default=list, blank=True)

    objects = JobQuerySet.as_manager()

    class Meta:
        db_table = "optimization_jobs"
        ordering = ("-created_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=["cluster"],
                condition=models.Q(
                    state__in=[
                        "pending_approval",
                        "planned",
                        "validating",
                        "launching",
                        "waiting_ready",
                        "draining",
                        "terminating",
                    ],
                    trigger__in=["schedule", "manual", "fallback-restore"],
                ),
                name="one_active_optimization_job_per_cluster",
            ),
            models.CheckConstraint(
                condition=models.Q(trigger__in=["schedule", "manual", "fallback-restore", "interruption"]),
                name="optimization_job_trigger_valid",
            ),
        ]
        indexes = [
            # The tick: active jobs due for a look (WHERE state IN (...) AND next_check_at <= now).
            models.Index(
                fields=["next_check_at"],
                condition=models.Q(
                    state__in=[
                        "pending_approval",
                        "planned",
                        "validating",
                        "launching",
                        "waiting_ready",
                        "draining",
                        "terminating",
                    ]
                ),
                name="optimization_job_due_idx",
            ),
            # The cluster page and the cluster's job list: newest first.
            models.Index(fields=["cluster", "-created_at"], name="optimization_job_cluster_idx"),
            # The restore sweep: finished fallback jobs not yet restored (WHERE fallback AND restored_by IS NULL).
            models.Index(
                fields=["restore_after"],
                condition=models.Q(fallback=True, restored_by__isnull=True),
                name="optimization_job_restore_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.pk} ({self.trigger}, {self.state})"

    @property
    def is_active(self) -> bool:
        return self.state in self.ACTIVE_STATES

    @property
    def is_final(self) -> bool:
        return self.state in self.FINAL_STATES


class JobStep(models.Model):
    """One idempotent step of a job: a launch (one offering), a node's cordon, drain or terminate, a rollback.

    ``result`` keeps what the step produced (instance ids, the fleet id, agent action ids) so that a repeated step
    finds the first attempt's work instead of doing it twice; AWS launches are also tagged with the step's id."""

    class Kind(models.TextChoices):
        LAUNCH = "launch", "Launch"
        WAIT_READY = "wait_ready", "Wait until Ready"
        CORDON = "cordon", "Cordon"
        DRAIN = "drain", "Drain"
        TERMINATE = "terminate", "Terminate"
        UNCORDON = "uncordon", "Uncordon"
        ROLLBACK = "rollback", "Terminate launched nodes"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    job = models.ForeignKey(OptimizationJob, on_delete=models.CASCADE, related_name="steps")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.PENDING)
    # The node the step acts on (current node id, node name) or the offering it launches.
    target = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "optimization_job_steps"
        ordering = ("job", "id")
        indexes = [models.Index(fields=["job", "kind"], name="job_step_kind_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.target} ({self.state})"

    @property
    def origin(self) -> str:
        """How the step's agent actions name their requester."""
        return f"optimization_job:{self.job_id}:step:{self.pk}"


class UnavailableOffering(models.Model):
    """The ICE cache: a (type, zone, capacity type) pool that answered "insufficient capacity" recently, kept out of
    plans until ``expires_at`` (3 minutes, as Karpenter). Per AWS account and region: capacity is the account's."""

    cloud_account = models.ForeignKey("accounts.CloudAccount", null=True, blank=True, on_delete=models.CASCADE)
    region = models.CharField(max_length=32)
    instance_type = models.CharField(max_length=64)
    zone = models.CharField(max_length=32)
    capacity_type = models.CharField(max_length=10)
    reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "optimization_unavailable_offerings"
        indexes = [models.Index(fields=["cloud_account", "region", "expires_at"], name="ice_lookup_idx")]

    def __str__(self) -> str:
        return f"{self.instance_type} {self.zone} {self.capacity_type} until {self.expires_at:%H:%M:%S}"


class Recommendation(models.Model):
    """The latest plan computed for a cluster (by the API, the console or the automatic tick), cached so that pages
    and the tick do not plan again on every read."""

    cluster = models.OneToOneField("clusters.Cluster", on_delete=models.CASCADE, related_name="recommendation")
    plan = models.JSONField(default=dict)
    current_hourly_cost = models.DecimalField(max_digits=14, decimal_places=6)
    planned_hourly_cost = models.DecimalField(max_digits=14, decimal_places=6)
    saving_hourly = models.DecimalField(max_digits=14, decimal_places=6)
    saving_pct = models.DecimalField(max_digits=7, decimal_places=2)
    snapshot_generation = models.BigIntegerField(default=0)
    #: sha256 of the optimizer problem this plan answers (``planning.problem_digest``); empty for an error
    problem_digest = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True)
    #: when the plan was computed, or last found to be the plan of the cluster's problem of that moment
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "optimization_recommendations"

    def __str__(self) -> str:
        return f"recommendation for cluster {self.cluster_id}"


class NotificationSettings(models.Model):
    """Where an organization wants to hear about jobs: a Slack-compatible incoming webhook URL."""

    organization = models.OneToOneField(
        "accounts.Organization", on_delete=models.CASCADE, related_name="notification_settings"
    )
    webhook_url = models.URLField(max_length=500, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "optimization_notification_settings"

    def __str__(self) -> str:
        return f"notifications of org {self.organization_id}"
